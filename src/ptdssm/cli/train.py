"""``ptdssm train``: train a model from a packaged recipe (``--task T --model M``) or a config file.

``--model`` accepts every family of the registry (:func:`ptdssm.layers.registry.family_names`, read when the
arguments are parsed, so a family registered before :func:`ptdssm.cli.main` runs, or by a ``ptdssm.families`` entry
point, is a valid choice) and ``module:name``, a family your own module registers (imported by the family registry
when the config is loaded); ``--task`` is a registered task name or ``module:task`` (resolved by the data registry).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .._checks import ensure_writable_dir
from ..config import Config, apply_overrides, available_configs, load_config, load_recipe

DEFAULT_MODEL = "s5-ptd"


class _FamilyNames:
    """The registry's model names, looked up only when argparse checks a value or formats the help (importing the
    layers at parser-build time would make every verb, even ``ptdssm analyze``, pay for torch)."""

    def _names(self) -> list[str]:
        from ..layers.registry import family_names

        return list(family_names())

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and ":" in name:  # module:name, resolved (or refused, exit 2) with the config
            return True
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model and evaluate it on the test split (run directory with metrics, checkpoints)",
        description="Train a model from a packaged recipe (--task T --model M) or a YAML config (--config FILE), "
                    "evaluate it on the test split, and write the run directory (config.yaml, metrics.jsonl/csv, "
                    "checkpoints/last.pt every epoch and every train.checkpoint_every steps, best.pt, "
                    "results.json). --resume continues exactly where last.pt left off, also mid-epoch. "
                    "Under torchrun it runs DDP: data.batch_size is the global batch, split over the processes.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE",
                     help="YAML config file (sections model, data, optim, train); no default: give --config or "
                          "--task")
    src.add_argument("--task", metavar="T",
                     help="task name (fashion-mnist, mnist, digits, ...) or module:task (a task your module "
                          "registers); uses the packaged recipe for task and model, else the generic default "
                          "recipe; no default: give --task or --config")
    p.add_argument("--model", metavar="M", choices=_FamilyNames(), default=None,
                   help=f"model family with --task: %(choices)s, or module:name for a family your module "
                        f"registers (default {DEFAULT_MODEL})")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="training epochs, >= 1 (config key train.epochs; default: the recipe's)")
    p.add_argument("--out", metavar="DIR",
                   help="run directory, created if missing and checked writable before any work (config key "
                        "train.out; default runs/<task>-<model>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from checkpoints/last.pt, with its config.yaml if no config "
                        "is given (default: off; without it a folder that holds a run is refused)")
    p.add_argument("--data-dir", metavar="D",
                   help="data folder, must exist (config key data.data_dir; default: $PTDSSM_DATA_DIR, else the "
                        "task's own, e.g. /usr/share/datasets/fashion-mnist)")
    p.add_argument("--seed", type=int, help="random seed (config key train.seed; default: the recipe's, 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=3e-3 --set model.d_model=64 (repeatable; "
                        "default: none)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: a bar on stderr)")
    p.add_argument("--json", action="store_true",
                   help="print the final results as one JSON document on stdout (default: log lines on stderr only)")
    p.add_argument("--list", action="store_true", help="list the packaged configs and exit (default: off)")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> Config:
    """The run config from the arguments: base file, then --set overrides, then the explicit flags."""
    if args.model is not None and args.config is not None:
        raise ValueError("--model goes with --task; with --config set model.name in the file or via --set")
    if args.config is not None:
        cfg = load_config(Path(args.config), list(args.overrides))
    elif args.task is not None:
        cfg = load_recipe(args.task, args.model or DEFAULT_MODEL, list(args.overrides))
    elif args.resume and args.out is not None:
        path = Path(args.out) / "config.yaml"
        if not path.is_file():
            raise ValueError(f"--resume: {path} not found; pass --config or --task too")
        cfg = load_config(path, list(args.overrides))
    else:
        raise ValueError("give --config FILE or --task T [--model M] (or --resume --out DIR)")
    flags = {"train.epochs": args.epochs, "train.out": args.out, "data.data_dir": args.data_dir,
             "train.seed": args.seed}
    if args.no_progress:
        flags["train.progress"] = False
    flags = {k: v for k, v in flags.items() if v is not None}
    return apply_overrides(cfg, flags) if flags else cfg


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, path in available_configs().items():
            print(f"{name:32s} {path.parent.name}/{path.name}")
        return 0
    from ..experiments.train import train

    if args.out is not None:  # before the config is resolved (the layer check may run a PTD solve)
        ensure_writable_dir(args.out, "--out")
    cfg = resolve_config(args)
    result = train(cfg, resume=args.resume)
    if args.json and int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 prints
        json.dump({"out": str(result.out_dir), **result.results}, sys.stdout)
        sys.stdout.write("\n")
    return 0
