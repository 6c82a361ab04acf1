"""``ptdssm bench [layers]``: layer speed and memory as ratios to the FFT floor.

The layers are the registered families (:func:`ptdssm.layers.registry.family_names`), read when the command runs,
so a family registered at run time is benchmarked by name. ``ptdssm bench --layers ...`` is short for
``ptdssm bench layers --layers ...``.

``ptdssm bench mamba``: the Mamba-1 and Mamba-2 mixers against their own Linear layers alone (same shapes, same
run), forward and forward+backward time and peak memory, the streaming cost per token after a prefill of L, the
machine's load average at start and end, and issue 10's targets; ``--profile MODEL`` prints a ``torch.profiler``
table (top ops by self CPU time) instead.
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
    m = sub.add_parser("mamba", help="Mamba-1 / Mamba-2 blocks: fwd and fwd+bwd time and peak memory as ratios to "
                                     "their own Linear layers measured in the same run, and the streaming cost per "
                                     "token after a prefill of L")
    m.add_argument("--models", nargs="+", default=["mamba", "mamba2"], choices=["mamba", "mamba2"])
    m.add_argument("--lengths", nargs="+", type=int, default=[1024, 4096], metavar="L",
                   help="sequence lengths (default 1024 4096; add 16384 with --modes fwd for the long forward)")
    m.add_argument("--batch", type=int, default=8, metavar="B")
    m.add_argument("--width", type=int, default=256, metavar="D", help="d_model")
    m.add_argument("--d-state", type=int, default=16, metavar="N")
    m.add_argument("--expand", type=int, default=2)
    m.add_argument("--headdim", type=int, default=64, help="Mamba-2 head size (capped at expand * width)")
    m.add_argument("--modes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"])
    m.add_argument("--threads", type=int, default=1, help="torch.set_num_threads in every case (default 1: "
                                                          "on a shared box more threads oversubscribe)")
    m.add_argument("--repeats", type=int, default=3)
    m.add_argument("--stream-steps", type=int, default=64, metavar="T", help="step() calls timed per prefill")
    m.add_argument("--no-stream", dest="stream", action="store_false", help="skip the streaming rows")
    m.add_argument("--no-floor", dest="floor", action="store_false", help="skip the FFT floor cases")
    m.add_argument("--profile", choices=["mamba", "mamba2"], default=None, metavar="MODEL",
                   help="instead of the benchmark, print torch.profiler's top ops (self CPU time) of MODEL at each "
                        "length and mode, in this process")
    m.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    m.set_defaults(func=run_mamba)


def run_mamba(args: argparse.Namespace) -> int:
    from ..bench import format_mamba_table, profile_mamba, run_mamba_benchmark

    if args.profile is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        for L in args.lengths:
            for mode in args.modes:
                print(f"## {args.profile} L={L} {mode} (B={args.batch}, D={args.width}, threads={args.threads})")
                print(profile_mamba(args.profile, args.batch, args.width, L, mode, threads=args.threads,
                                    d_state=args.d_state, expand=args.expand, headdim=args.headdim), flush=True)
        return 0
    res = run_mamba_benchmark(args.lengths, models=args.models, modes=args.modes, B=args.batch, H=args.width,
                              d_state=args.d_state, expand=args.expand, headdim=args.headdim, repeats=args.repeats,
                              threads=args.threads, stream=args.stream, stream_steps=args.stream_steps,
                              floor=args.floor, progress=not args.json)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_mamba_table(res))
    return 0


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
