"""The ``ptdssm`` command line. Each verb lives in its own module with a ``register(subparsers)`` function.

Conventions: ``--json`` prints exactly one JSON document on stdout (progress and logs go to stderr); a bad argument
or config value exits with status 2 and a one-line message naming it, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Help of every verb's ``--device`` (all of them resolve it with ptdssm.experiments.distributed.resolve_device).
DEVICE_HELP = ("auto (CUDA when PyTorch sees a GPU, else the CPU), cpu, cuda or cuda:k; CUDA asked for on a machine "
               "without it is refused before anything loads (default auto)")

# Verb modules, imported lazily so that ``ptdssm analyze`` does not pay for torch-heavy imports of other verbs.
_VERBS = ("analyze", "train", "evaluate", "data", "robustness", "reproduce", "bench", "generate",
          "baselines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptdssm", description="Robust state-space sequence models for PyTorch: S4, S4D, S5 and their PTD "
                                   "variants, Mamba and more. Run ptdssm VERB --help for each verb.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"ptdssm {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in _VERBS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ptdssm {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ptdssm {args.verb}: interrupted", file=sys.stderr)
        return 130
