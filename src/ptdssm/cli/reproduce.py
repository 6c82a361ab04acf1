"""``ptdssm reproduce``: the paper's evidence (robustness table, transfer functions, conditioning) as reports."""

from __future__ import annotations

import argparse
import json
import sys

_BUDGET_KEYS = {"epochs": ("train", "epochs"), "train_subset": ("data", "train_subset"),
                "test_subset": ("data", "test_subset"), "d_model": ("model", "d_model")}


def _config_defaults() -> dict[str, str]:
    """Per budget flag, what the packaged robustness configs use, e.g. ``"fashion-mnist-cpu 64, scifar-paper 128"``
    (read from the YAML files, so the help states the defaults actually used)."""
    from importlib import resources

    import yaml

    folder = resources.files("ptdssm") / "configs" / "robustness"
    docs = {name: yaml.safe_load((folder / f"{name}.yaml").read_text()) or {}
            for name in ("fashion-mnist-cpu", "scifar-paper")}
    out = {}
    for flag, (section, key) in _BUDGET_KEYS.items():
        values = [f"{name} {(doc.get(section) or {}).get(key) or 'all'}" for name, doc in docs.items()]
        out[flag] = "default: the config's, " + ", ".join(values)
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="reproduce the paper's figures and tables into a report folder",
                              description="Reproduce the paper's evidence: robustness to Fourier-mode noise, "
                                          "transfer functions, eigenvector conditioning. Each writes report.md, "
                                          "results.json and figures to its --out (default reports/WHAT).")
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    budget = _config_defaults()

    r = sub.add_parser("robustness", help="train S4D, S4-PTD, S5, S5-PTD (only C trained) and compare them under "
                                          "Fourier-mode noise",
                       description="Train the paper's robustness model (A, B and dt frozen) for each compared "
                                   "model with the same data and budget (and seeds), then sweep each under layer "
                                   "noise at its own spike, the S4D spike of its state size, the paper's w = 325.4 "
                                   "and the controls w = 30 and 100; report.md compares each PTD model with its "
                                   "diagonal baseline and shows every validation curve. Finished runs and sweeps in "
                                   "--out are reused, an interrupted run resumes.")
    r.add_argument("--config", default="fashion-mnist-cpu",
                   help="fashion-mnist-cpu (CPU budget, ~50 min on 2 cores), scifar-paper (the paper's scale, "
                        "needs --data-dir with CIFAR-10), or a YAML file (default fashion-mnist-cpu)")
    r.add_argument("--models", nargs="+", default=None, metavar="M",
                   help="registered LTI families to compare, each FAMILY[@INIT][:K]: @INIT picks the init, e.g. "
                        "s4-ptd@ptd-paper-pairs (the paper's PTD objective, conjugate pairs), s4-ptd@ptd-response; "
                        ":K trains K seeds (--seed .. --seed+K-1), e.g. s4d:3 (default: s4d s4-ptd s5 s5-ptd, the "
                        "paper's, one seed each; ptd is the default PTD)")
    r.add_argument("--epochs", type=int, metavar="N", help=f"budget: epochs per model, >= 1 ({budget['epochs']})")
    r.add_argument("--train-subset", type=int, metavar="N",
                   help=f"budget: training sequences, >= 1 ({budget['train_subset']})")
    r.add_argument("--test-subset", type=int, metavar="N",
                   help=f"budget: test sequences, >= 1 ({budget['test_subset']})")
    r.add_argument("--d-model", type=int, metavar="H", help=f"width H, >= 1 ({budget['d_model']})")
    r.add_argument("--data-dir", metavar="D",
                   help="data folder, must exist (default: the task's own; CIFAR-10 for scifar-paper)")
    r.add_argument("--frequencies", type=float, nargs="+", metavar="W",
                   help="layer-noise frequencies, continuous (default: the controls 30 and 100, the paper's 325.4 "
                        "and the S4D spike of the state size, 1303.3 for N = 64); each model is also swept at its "
                        "own spike")
    r.add_argument("--amplitudes", type=float, nargs="+", default=[0.1, 0.5, 1.0], metavar="A",
                   help="noise amplitudes, > 0 (default 0.1, the paper's, 0.5 and 1.0)")
    r.add_argument("--seed", type=int, default=0,
                   help="first training seed of every model (FAMILY:K trains K from here), and the noise seed "
                        "(default 0)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every model, e.g. --set optim.lr=3e-3 (repeatable; default: none)")
    r.add_argument("--fresh", action="store_true",
                   help="delete the compared models' run folders in --out and retrain them (default: reuse finished "
                        "runs and sweeps, resume an interrupted run)")
    r.add_argument("--out", default="reports/robustness", metavar="DIR",
                   help="report folder, created if missing and checked writable before any training (default "
                        "reports/robustness)")
    r.add_argument("--json", action="store_true", help="print one JSON document on stdout (default: the report)")
    r.set_defaults(func=run_robustness)

    for what, helptext, desc in (
            ("transfer", "transfer functions and sup errors against n (S4D vs S4-PTD vs S4)",
             "Transfer functions of S4, S4D and S4-PTD for each n: sup and L2 errors (weak vs strong "
             "convergence), with figures."),
            ("conditioning", "kappa(V) against ||E|| for optimized versus random perturbations",
             "Eigenvector condition numbers of exact eig, PTD and random perturbations for each n, and kappa "
             "against ||E|| at n = 32, with figures.")):
        t = sub.add_parser(what, help=helptext, description=desc)
        t.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64, 128], metavar="N",
                       help=f"state sizes, integers in 1..{_max_n()} (default 8 16 32 64 128)")
        t.add_argument("--out", default=f"reports/{what}", metavar="DIR",
                       help=f"report folder, created if missing (default reports/{what})")
        t.add_argument("--json", action="store_true",
                       help="print one JSON document on stdout (default: the report)")
        t.set_defaults(func=run_numerics)


def _max_n() -> int:
    from ..experiments.numerics import MAX_N

    return MAX_N


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
