"""``ptdssm baselines``: forecasting baselines measured in the same protocol as ``ptdssm train`` on a forecasting
task (same splits, train-only scaling, windows and metrics): naive, seasonal naive, DLinear (closed-form least
squares) and least-squares AR(p), the oracle of ``forecast-ar`` (:mod:`ptdssm.experiments.forecast_baselines`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..experiments.forecast_baselines.protocol import METHODS

    p = subparsers.add_parser(
        "baselines", help="forecasting baselines (seasonal naive, DLinear, AR) in the training protocol",
        description="Evaluate forecasting baselines on a forecasting task's test split in the protocol of "
                    "ptdssm train (same chronological split, scaler fitted on train, stride-1 windows, MSE/MAE/RMSE "
                    "on the scaled values): naive (last value), seasonal-naive (the last season), dlinear "
                    "(moving-average trend/remainder and two linear maps lookback->horizon shared by the channels, "
                    "fitted by closed-form ridge least squares on the training windows, ridge chosen by "
                    "validation MSE) and ar (least-squares AR(p) rolled forward; on forecast-ar with its true order "
                    "it is the oracle). Example: ptdssm baselines --task forecast-vic-elec --option horizon=336")
    p.add_argument("--task", metavar="T",
                   help="forecasting task: forecast-vic-elec, forecast-ecl-mean, forecast-ar, forecast-csv, ... "
                        "(default: the data section of --config)")
    p.add_argument("--config", metavar="FILE",
                   help="take the data section (task, options, subsets) from this config file or packaged recipe "
                        "name, e.g. forecast-vic-elec-s4d (default: none)")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a task option (data.options), e.g. --option horizon=336 --option lookback=96 "
                        "(repeatable; default: the task's)")
    p.add_argument("--data-dir", metavar="D", help="data folder, must exist (default: the task's own sources)")
    p.add_argument("--methods", default=",".join(METHODS), metavar="LIST",
                   help=f"comma-separated baselines among {', '.join(METHODS)} (default: all)")
    p.add_argument("--season", type=int, metavar="M",
                   help="season of seasonal-naive in steps, e.g. 48 half-hourly, 24 hourly (default: the task's "
                        "steps per day when known: forecast-vic-elec 48, forecast-ecl-mean 24; else skipped)")
    p.add_argument("--ar-order", type=int, metavar="P",
                   help="order of the least-squares AR baseline (default: the true order on forecast-ar; "
                        "else ar is skipped)")
    p.add_argument("--kernel", type=int, default=25, metavar="K",
                   help="DLinear moving-average kernel, odd (default 25, the paper's)")
    p.add_argument("--out", metavar="FILE", help="also write the results as JSON to FILE (default: none)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (default: a table)")
    p.set_defaults(func=run)


def _data_config(args: argparse.Namespace) -> Any:
    from ..config import DataConfig, load_config
    from ..config.files import available_configs
    from .data import _parse_options

    if args.config is None and args.task is None:
        raise ValueError("give --task T or --config FILE")
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file() and args.config in available_configs():
            path = available_configs()[args.config]
        cfg = load_config(path).data
        if args.task is not None:
            cfg.task = args.task
    else:
        cfg = DataConfig(task=args.task)
    cfg.options = {**cfg.options, **_parse_options(args.options)}
    if args.data_dir is not None:
        cfg.data_dir = args.data_dir
    cfg.validate()
    return cfg


def run(args: argparse.Namespace) -> int:
    from .._checks import ensure_writable_file
    from ..data import build_task
    from ..experiments.forecast_baselines import run_baselines
    from ..experiments.forecast_baselines.protocol import METHODS

    if args.out is not None:  # before any data is read
        ensure_writable_file(args.out, "--out")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"--methods: unknown baseline {bad[0] if bad else ''!r}; expected some of: "
                         f"{', '.join(METHODS)}")
    for key in ("season", "ar_order", "kernel"):
        v = getattr(args, key)
        if v is not None and v < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {v}")
    cfg = _data_config(args)
    data = build_task(cfg)
    if data.info.head != "forecast":
        raise ValueError(f"--task {data.info.name!r} is not a forecasting task (head {data.info.head!r})")
    rows = run_baselines(data, methods, season=args.season, ar_order=args.ar_order, kernel=args.kernel)
    doc = {"task": data.info.name, "lookback": data.info.seq_len, "horizon": data.info.target_len,
           "options": {k: v for k, v in data.extras.get("options", {}).items()}, "sizes": data.sizes(),
           "file": data.extras.get("file"), "split": "test (scaled)", "baselines": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"{data.info.name}: lookback {doc['lookback']}, horizon {doc['horizon']}, test windows "
          f"{doc['sizes']['test']} (scaled values)")
    print(f"{'method':16s} {'MSE':>8s} {'MAE':>8s} {'RMSE':>8s} {'time s':>8s}  fit")
    for r in rows:
        if "skipped" in r:
            print(f"{r['method']:16s} skipped: {r['skipped']}")
        else:
            print(f"{r['method']:16s} {r['mse']:8.4f} {r['mae']:8.4f} {r['rmse']:8.4f} {r['time_s']:8.2f}  {r['fit']}")
    return 0
