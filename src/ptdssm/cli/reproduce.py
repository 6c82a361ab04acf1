"""``ptdssm reproduce``: the paper's evidence (robustness table, transfer functions, conditioning) as reports."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="reproduce the paper's figures and tables into a report folder",
                              description="Reproduce the paper's evidence; everything goes to --out (default "
                                          "reports/).")
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")

    r = sub.add_parser("robustness", help="train S4D, S4-PTD, S5, S5-PTD (only C trained) and compare them under "
                                          "Fourier-mode noise")
    r.add_argument("--config", default="fashion-mnist-cpu",
                   help="fashion-mnist-cpu (default, CPU budget), scifar-paper (paper scale), or a YAML file")
    r.add_argument("--models", nargs="+", default=None, metavar="M",
                   help="registered LTI families to compare (default: s4d s4-ptd s5 s5-ptd, the paper's)")
    r.add_argument("--epochs", type=int, metavar="N", help="budget: epochs per model")
    r.add_argument("--train-subset", type=int, metavar="N", help="budget: training examples")
    r.add_argument("--test-subset", type=int, metavar="N", help="budget: test examples")
    r.add_argument("--d-model", type=int, metavar="H", help="width H (default 128, the paper's)")
    r.add_argument("--data-dir", metavar="D", help="data folder (CIFAR-10 for scifar-paper)")
    r.add_argument("--frequencies", type=float, nargs="+", metavar="W",
                   help="sweep frequencies (default: 100, the paper's 325.4 and the S4D spike of the state size)")
    r.add_argument("--amplitudes", type=float, nargs="+", default=[0.1, 0.5, 1.0], metavar="A",
                   help="noise amplitudes (default 0.1, the paper's, 0.5 and 1.0)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    r.add_argument("--fresh", action="store_true", help="retrain even if a finished run exists in --out")
    r.add_argument("--out", default="reports/robustness", metavar="DIR")
    r.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    r.set_defaults(func=run_robustness)

    for what, helptext in (("transfer", "transfer functions and sup errors against n (S4D vs S4-PTD vs S4)"),
                           ("conditioning", "kappa(V) against ||E|| for optimized versus random perturbations")):
        t = sub.add_parser(what, help=helptext)
        t.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64, 128], metavar="N")
        t.add_argument("--out", default=f"reports/{what}", metavar="DIR")
        t.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        t.set_defaults(func=run_numerics)


def run_robustness(args: argparse.Namespace) -> int:
    from ..experiments.reproduce import ROBUSTNESS_MODELS, apply_budget, reproduce_robustness

    for name in ("epochs", "train_subset", "test_subset", "d_model"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    overrides = apply_budget(list(args.set), epochs=args.epochs, train_subset=args.train_subset,
                             test_subset=args.test_subset, d_model=args.d_model)
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    summary = reproduce_robustness(args.out, config=args.config, models=args.models or ROBUSTNESS_MODELS,
                                   overrides=overrides, frequencies=args.frequencies, amplitudes=args.amplitudes,
                                   seed=args.seed, resume=not args.fresh, progress=not args.json)
    return _emit(summary, args)


def run_numerics(args: argparse.Namespace) -> int:
    from ..experiments.reproduce import reproduce_numerics

    for n in args.n:
        if n < 1:
            raise ValueError(f"--n must be >= 1, got {n}")
    summary = reproduce_numerics(args.what, args.n, args.out, progress=not args.json)
    return _emit(summary, args)


def _emit(summary: dict, args: argparse.Namespace) -> int:
    """Print the report (Markdown) or, with ``--json``, the numbers as one JSON document."""
    if args.json:
        json.dump({k: v for k, v in summary.items() if k != "markdown"}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(summary["markdown"])
        print(f"wrote {args.out}/report.md")
    return 0
