"""``ptdssm evaluate``: loss and accuracy (regression: MSE and MAE; forecasting: also RMSE; language models: also bits
per token) of a checkpoint on a split of its task."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import DEVICE_HELP

    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a split of its task (accuracy and loss), optionally under noise",
        description="Rebuild the model and data of a checkpoint (last.pt or best.pt of a run directory) and report "
                    "its loss and accuracy (regression tasks: MSE and MAE; forecasting: also RMSE, on the scaled "
                    "values; language models: also bits per token) "
                    "on a split, clean or under one noise setting.")
    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="checkpoint file, e.g. RUN/checkpoints/best.pt; required")
    p.add_argument("--split", choices=("test", "val", "train"), default="test",
                   help="split to evaluate: test, val or train (default test)")
    p.add_argument("--data-dir", metavar="D",
                   help="data folder, must exist (default: the one in the checkpoint's config)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="evaluation batch size in sequences, >= 1 (default: the checkpoint config's "
                        "data.eval_batch_size, else data.batch_size)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--noise", choices=("layer", "sinusoid", "fourier", "gaussian"),
                   help="evaluate under noise: layer (the paper's a U cos(w dt_c k) at every LTI layer input), "
                        "sinusoid, fourier (band-limited modes) or gaussian (added to the input) (default: none, "
                        "clean)")
    p.add_argument("--amplitude", type=float, default=0.1, metavar="A",
                   help="noise amplitude a, > 0, in units of the noised input (fourier and gaussian: its RMS) "
                        "(default 0.1)")
    p.add_argument("--frequency", type=float, metavar="W",
                   help="noise frequency, needed by layer and sinusoid: layer in continuous time (radians per unit "
                        "of the layer's time, k dt_c; e.g. 325.4), sinusoid in radians per sample (default: none)")
    p.add_argument("--modes", type=int, nargs="+", default=[], metavar="M",
                   help="FFT bins m in 1..L/2 of fourier noise, needed by fourier (default: none)")
    p.add_argument("--noise-seed", type=int, default=0, metavar="S", help="seed of the noise draws (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout (default: one line of text)")
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
        if "rmse" in res:  # forecasting: also RMSE (all three on the scaled values, as the benchmark reports them)
            shown += f", RMSE {res['rmse']:.4g}"
        if "bpb" in res:  # language models: bits per token (per byte with the byte tokenizer)
            shown += f", {res['bpb']:.4f} bits per token"
        print(f"{res['model']} on {res['task']} (epoch {res['epoch']}){under}: {res['split']} {shown}, "
              f"loss {res['loss']:.4f}, n = {res['n']}")
    return 0
