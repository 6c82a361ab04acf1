"""``ptdssm bench layers``: layer speed and memory as ratios to the FFT floor."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..bench import LAYERS

    p = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks (see benchmarks/ in the repo).")
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    b = sub.add_parser("layers", help="forward / forward+backward time, tokens/s and peak memory of each layer, "
                                      "with ratios to an rfft+irfft of (B, H, 2L) measured in the same run")
    b.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS), metavar="NAME",
                   help=f"layers to run (default all: {' '.join(LAYERS)})")
    b.add_argument("--lengths", nargs="+", type=int, default=[1024, 4096, 16384], metavar="L")
    b.add_argument("--batch", type=int, default=16, metavar="B")
    b.add_argument("--width", type=int, default=256, metavar="H")
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import format_table, run_benchmark

    for name in ("batch", "width", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    res = run_benchmark(args.layers, args.lengths, B=args.batch, H=args.width, repeats=args.repeats,
                        threads=args.threads, progress=not args.json)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_table(res))
    return 0
