"""``ptdssm robustness``: sweep a checkpoint's accuracy over noise frequencies and amplitudes."""

from __future__ import annotations

import argparse
import json
import sys

from .._checks import ensure_writable_dir
from ..experiments.noise import NOISE_KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import DEVICE_HELP

    p = subparsers.add_parser(
        "robustness", help="accuracy of a checkpoint under noise, over a frequency x amplitude grid",
        description="Evaluate a checkpoint clean and under noise over a grid of frequencies and amplitudes; write "
                    "robustness.{json,csv,md}, accuracy.png and layer_transfer.png (each LTI layer's |K(w)| with "
                    "the noise frequencies marked) to --out. The default layer-noise grid includes the model's own "
                    "S4D spike frequencies and the paper's w = 325.4.")
    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="checkpoint file, e.g. RUN/checkpoints/best.pt; required")
    p.add_argument("--kind", choices=NOISE_KINDS, default="layer",
                   help="layer: the paper's a U cos(w dt_c k) at every LTI layer input (w continuous); sinusoid: "
                        "added to the input (w in radians per sample); fourier: one band-limited Fourier mode "
                        "added to the input (w an FFT bin in 1..L/2); gaussian: white-noise control, no frequency "
                        "(default layer)")
    p.add_argument("--frequencies", type=float, nargs="+", metavar="W",
                   help="frequencies in the unit of --kind (default: a grid; layer: 10, 30, 100, 325.4, 1000, 3000 "
                        "and the model's spikes; sinusoid: pi/64 to pi; fourier: bins L/128 to L/2)")
    p.add_argument("--amplitudes", type=float, nargs="+", metavar="A",
                   help="amplitudes, > 0, in units of the noised input (default 0.1 0.5 1.0)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test",
                   help="split to evaluate: test, val or train (default test)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="evaluate a seeded subset of N examples, >= 1 (default: the whole split)")
    p.add_argument("--seed", type=int, default=0, help="noise seed, the same for every setting (default 0)")
    p.add_argument("--data-dir", metavar="D",
                   help="data folder, must exist (default: the one in the checkpoint's config)")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="evaluation batch size in sequences, >= 1 (default: the checkpoint config's)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--out", default="reports/robustness-sweep", metavar="DIR",
                   help="report folder, created if missing and checked writable before the sweep (default "
                        "reports/robustness-sweep)")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the figures (default: write accuracy.png and layer_transfer.png)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout (default: the Markdown table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.robustness import robustness_sweep, sweep_markdown, write_sweep_report

    for name in ("subset", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for a in args.amplitudes or ():
        if not a > 0:
            raise ValueError(f"--amplitudes must be > 0, got {a}")
    for w in args.frequencies or ():
        if not w >= 0:
            raise ValueError(f"--frequencies must be >= 0, got {w}")
    ensure_writable_dir(args.out, "--out")  # before the sweep, not after it
    res = robustness_sweep(args.checkpoint, kind=args.kind, frequencies=args.frequencies,
                           amplitudes=args.amplitudes, split=args.split, data_dir=args.data_dir,
                           batch_size=args.batch_size, subset=args.subset, seed=args.seed, device=args.device,
                           progress=not args.json)
    files = write_sweep_report(res, args.out, plots=not args.no_plots)
    public = {k: v for k, v in res.items() if not k.startswith("_")}
    if args.json:
        json.dump({**public, "files": files}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(sweep_markdown(public))
        print("wrote " + ", ".join(files))
    return 0
