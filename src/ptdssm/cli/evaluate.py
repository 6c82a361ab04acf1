"""``ptdssm evaluate``: accuracy and loss of a checkpoint on a split of its task."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint (accuracy and loss on a split)",
        description="Rebuild the model and data of a checkpoint (last.pt or best.pt of a run directory) and report "
                    "its accuracy and loss on a split.")
    p.add_argument("--checkpoint", required=True, metavar="C", help="checkpoint file, e.g. RUN/checkpoints/best.pt")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="split (default test)")
    p.add_argument("--data-dir", metavar="D", help="data folder (overrides the one in the checkpoint's config)")
    p.add_argument("--batch-size", type=int, metavar="N", help="evaluation batch size")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:k] (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.evaluate import evaluate_checkpoint

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    res = evaluate_checkpoint(args.checkpoint, split=args.split, data_dir=args.data_dir,
                              batch_size=args.batch_size, device=args.device)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{res['model']} on {res['task']} (epoch {res['epoch']}): {res['split']} accuracy {res['acc']:.4f}, "
              f"loss {res['loss']:.4f}, n = {res['n']}")
    return 0
