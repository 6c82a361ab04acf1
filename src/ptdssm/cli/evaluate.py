"""``ptdssm evaluate``: loss and accuracy (regression: MSE and MAE) of a checkpoint on a split of its task."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint (accuracy and loss on a split)",
        description="Rebuild the model and data of a checkpoint (last.pt or best.pt of a run directory) and report "
                    "its loss and accuracy (regression tasks: MSE and MAE) on a split.")
    p.add_argument("--checkpoint", required=True, metavar="C", help="checkpoint file, e.g. RUN/checkpoints/best.pt")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="split (default test)")
    p.add_argument("--data-dir", metavar="D", help="data folder (overrides the one in the checkpoint's config)")
    p.add_argument("--batch-size", type=int, metavar="N", help="evaluation batch size")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:k] (default auto)")
    p.add_argument("--noise", choices=("layer", "sinusoid", "fourier", "gaussian"),
                   help="evaluate under noise: layer (the paper's a U cos(w dt_c k) at every LTI layer input), "
                        "sinusoid, fourier (band-limited modes) or gaussian (added to the input)")
    p.add_argument("--amplitude", type=float, default=0.1, metavar="A", help="noise amplitude (default 0.1)")
    p.add_argument("--frequency", type=float, metavar="W",
                   help="layer: continuous frequency (e.g. 325.4); sinusoid: radians per sample")
    p.add_argument("--modes", type=int, nargs="+", default=[], metavar="M", help="FFT bins for fourier noise")
    p.add_argument("--noise-seed", type=int, default=0, metavar="S")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.evaluate import evaluate_checkpoint

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    noise = None
    if args.noise is not None:
        from ..experiments.noise import NoiseSpec

        noise = NoiseSpec(args.noise, amplitude=args.amplitude, frequency=args.frequency, modes=tuple(args.modes),
                          seed=args.noise_seed)
    res = evaluate_checkpoint(args.checkpoint, split=args.split, data_dir=args.data_dir,
                              batch_size=args.batch_size, device=args.device, noise=noise)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
    else:
        under = f" under {noise.describe()} noise" if noise is not None else ""
        shown = (f"accuracy {res['acc']:.4f}" if "acc" in res else f"MSE {res['mse']:.4g}, MAE {res['mae']:.4g}")
        print(f"{res['model']} on {res['task']} (epoch {res['epoch']}){under}: {res['split']} {shown}, "
              f"loss {res['loss']:.4f}, n = {res['n']}")
    return 0
