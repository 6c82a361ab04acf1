"""``ptdssm bench [layers]``: layer speed and memory as ratios to the FFT floor.

The layers are the registered families (:func:`ptdssm.layers.registry.family_names`), read when the command runs,
so a family registered at run time is benchmarked by name. ``ptdssm bench --layers ...`` is short for
``ptdssm bench layers --layers ...``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _add_options(b: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    # On the bare ``bench`` parser the defaults are SUPPRESSed, so that ``bench layers`` keeps its own.
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)  # noqa: E731
    b.add_argument("--layers", nargs="+", default=d(None), metavar="NAME",
                   help="registered families to run (default all; see `ptdssm train --help` for the names)")
    b.add_argument("--lengths", nargs="+", type=int, default=d([1024, 4096, 16384]), metavar="L")
    b.add_argument("--batch", type=int, default=d(16), metavar="B")
    b.add_argument("--width", type=int, default=d(256), metavar="H")
    b.add_argument("--repeats", type=int, default=d(3))
    b.add_argument("--threads", type=int, default=d(2))
    b.add_argument("--json", action="store_true", default=d(False), help="print one JSON document on stdout")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks (see benchmarks/ in the repo).")
    _add_options(p, suppress=True)
    p.set_defaults(func=run, what="layers")
    sub = p.add_subparsers(dest="what", required=False, metavar="WHAT")
    b = sub.add_parser("layers", help="forward / forward+backward time, tokens/s and peak memory of each layer, "
                                      "with ratios to an rfft+irfft of (B, H, 2L) measured in the same run")
    _add_options(b)
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import format_table, run_benchmark

    defaults = {"layers": None, "lengths": [1024, 4096, 16384], "batch": 16, "width": 256, "repeats": 3,
                "threads": 2, "json": False}
    for key, value in defaults.items():
        if not hasattr(args, key):
            setattr(args, key, value)
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
