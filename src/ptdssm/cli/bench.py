"""``ptdssm bench [layers]``: each registered layer's speed and memory, as ratios to floors measured in the same run.

The layers are the registered families (:func:`ptdssm.layers.registry.family_names`), read when the command runs,
so a family registered at run time is benchmarked by name. Each is timed alone against the FFT floor and against
its own projections, and checked against the targets its registry entry declares (:mod:`ptdssm.bench.layers`).
``ptdssm bench --layers ...`` is short for ``ptdssm bench layers --layers ...``.

``ptdssm bench mamba``: the Mamba-1 and Mamba-2 mixers against their own Linear layers alone (same calls, same
shapes, same run), forward and forward+backward time and peak memory, the streaming cost per token after a prefill
of L, the machine's load average at start and end, and issue 10's targets; ``--profile MODEL`` prints a
``torch.profiler`` table (top ops by self CPU time) instead (:mod:`ptdssm.bench.mamba`).
"""

from __future__ import annotations

import argparse
import json
import sys

_LAYER_DEFAULTS = {"layers": None, "lengths": [1024, 4096, 16384], "batch": 16, "width": 256, "repeats": 3,
                   "threads": 2, "proj": True, "json": False}


def _add_options(b: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    # On the bare ``bench`` parser the defaults are SUPPRESSed, so that ``bench layers`` keeps its own.
    d = (lambda k: argparse.SUPPRESS) if suppress else (lambda k: _LAYER_DEFAULTS[k])  # noqa: E731
    b.add_argument("--layers", nargs="+", default=d("layers"), metavar="NAME",
                   help="registered families to run (default: all; the names are listed by ptdssm train --help); a "
                        "family that a target compares with (e.g. lru with s5) is added")
    b.add_argument("--lengths", nargs="+", type=int, default=d("lengths"), metavar="L",
                   help="sequence lengths in tokens (default: 1024 4096 16384; targets are checked at 4096, memory "
                        "growth from 4096 to 16384)")
    b.add_argument("--batch", type=int, default=d("batch"), metavar="B", help="batch size in sequences (default: 16)")
    b.add_argument("--width", type=int, default=d("width"), metavar="H", help="channels d_model (default: 256)")
    b.add_argument("--repeats", type=int, default=d("repeats"), metavar="N",
                   help="timed calls per case after one warm-up call; the least time is kept (default: 3)")
    b.add_argument("--threads", type=int, default=d("threads"), metavar="N",
                   help="torch threads in every case (default: 2)")
    b.add_argument("--no-proj", dest="proj", action="store_false", default=d("proj"),
                   help="skip the own-projections floor (default: measure it)")
    b.add_argument("--json", action="store_true", default=d("json"),
                   help="print one JSON document on stdout instead of the tables (default: tables)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: layers against floors measured in the same run",
                              description="Benchmarks (see benchmarks/README.md in the repo). Without WHAT: the "
                                          "layers benchmark.")
    _add_options(p, suppress=True)
    p.set_defaults(func=run, what="layers")
    sub = p.add_subparsers(dest="what", required=False, metavar="WHAT")
    b = sub.add_parser("layers", help="each layer's time and memory against the FFT floor and its own projections",
                       description="Forward and forward+backward time, tokens/s and peak memory of each registered "
                                   "layer alone, as ratios to an rfft+irfft of (B, H, 2L) and to the layer's own "
                                   "projections (its Linear/Conv1d calls replayed, plus the FFT convolutions the "
                                   "family declares), measured in the same run; then the targets the families "
                                   "declare, at L = 4096, and the memory growth from L = 4096 to 16384.")
    _add_options(b)
    b.set_defaults(func=run)
    m = sub.add_parser("mamba", help="Mamba-1 / Mamba-2 blocks against their own Linear layers (issue 10)",
                       description="Mamba-1 / Mamba-2 blocks: forward and forward+backward time and peak memory as "
                                   "ratios to their own Linear layers measured in the same run, the streaming cost "
                                   "per token after a prefill of L, and issue 10's targets.")
    m.add_argument("--models", nargs="+", default=["mamba", "mamba2"], choices=["mamba", "mamba2"],
                   metavar="MODEL", help="mamba and/or mamba2 (default: both)")
    m.add_argument("--lengths", nargs="+", type=int, default=[1024, 4096], metavar="L",
                   help="sequence lengths in tokens (default: 1024 4096; add 16384 with --modes fwd for the long "
                        "forward)")
    m.add_argument("--batch", type=int, default=8, metavar="B", help="batch size in sequences (default: 8)")
    m.add_argument("--width", type=int, default=256, metavar="D", help="channels d_model (default: 256)")
    m.add_argument("--d-state", type=int, default=16, metavar="N", help="SSM state size (default: 16)")
    m.add_argument("--expand", type=int, default=2, metavar="E",
                   help="inner channels per model channel (default: 2)")
    m.add_argument("--headdim", type=int, default=64, metavar="P",
                   help="Mamba-2 channels per head, capped at expand * width (default: 64)")
    m.add_argument("--modes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"], metavar="MODE",
                   help="fwd (no-grad forward) and/or fwdbwd (forward and backward) (default: both)")
    m.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads in every case (default: 1; on a shared machine more threads oversubscribe)")
    m.add_argument("--repeats", type=int, default=3, metavar="N",
                   help="timed calls per case after one warm-up call; the least time is kept (default: 3)")
    m.add_argument("--stream-steps", type=int, default=64, metavar="T",
                   help="step() calls timed per prefill length (default: 64)")
    m.add_argument("--no-stream", dest="stream", action="store_false",
                   help="skip the streaming rows (default: run them)")
    m.add_argument("--no-floor", dest="floor", action="store_false",
                   help="skip the FFT floor cases (default: run them)")
    m.add_argument("--profile", choices=["mamba", "mamba2"], default=None, metavar="MODEL",
                   help="instead of the benchmark, print torch.profiler's top ops (self CPU time) of MODEL, mamba "
                        "or mamba2, at each length and mode, in this process (default: off)")
    m.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout instead of the tables (default: tables)")
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

    for key, value in _LAYER_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    for name in ("batch", "width", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    res = run_benchmark(args.layers, args.lengths, B=args.batch, H=args.width, repeats=args.repeats,
                        threads=args.threads, proj=args.proj, progress=not args.json)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_table(res))
    return 0
