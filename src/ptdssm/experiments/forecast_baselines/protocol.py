"""Baselines measured in the forecasting protocol: the same task data (splits, train-only scaling, windows) and
the same metrics (MSE, MAE, RMSE over every scaled test scalar) as :func:`ptdssm.experiments.train.train` reports.

=================  =====================================================================  =====================
method             forecast                                                               fitted on
=================  =====================================================================  =====================
``naive``          the last value (:mod:`.naive`)                                         nothing
``seasonal-naive`` the last season, ``season`` steps (:mod:`.naive`)                      nothing
``dlinear``        trend/remainder + two linear maps, shared by channels (:mod:`.dlinear`) train (closed form),
                                                                                          ridge by val MSE
``ar``             least-squares AR(p) rolled forward (:mod:`.ar_oracle`); on             train rows
                   ``forecast-ar`` with the true order it is the oracle
=================  =====================================================================  =====================

Every method forecasts each target channel from that channel's own history (its column among the inputs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .ar_oracle import ar_forecast, fit_ar
from .dlinear import NormalEquations, fit_dlinear
from .naive import naive_forecast, seasonal_naive_forecast

__all__ = ["METHODS", "ar_oracle", "evaluate_forecaster", "run_baselines"]

#: The baselines :func:`run_baselines` knows (module docstring).
METHODS = ("naive", "seasonal-naive", "dlinear", "ar")

Forecaster = Callable[[np.ndarray, int], np.ndarray]  # (x (N, L) of one channel, channel) -> (N, K)


def _columns(ds: Any) -> list[tuple[int, int]]:
    """``(input column, target column)`` of each target channel (the channel's own history)."""
    out = []
    for k, c in enumerate(ds.targets):
        if c not in ds.inputs:
            raise ValueError(f"target channel {ds.names[c]!r} is not among the inputs: the baselines forecast each "
                             f"channel from its own history")
        out.append((ds.inputs.index(c), k))
    return out


def _chunks(ds: Any, size: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for lo in range(0, len(ds), size):
        yield ds.arrays(np.arange(lo, min(lo + size, len(ds))))


def _channel_chunks(ds: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One-channel ``(x (N, L), y (N, K))`` chunks over every window and target channel."""
    cols = _columns(ds)
    for x, y in _chunks(ds):
        for j, k in cols:
            yield x[:, :, j], y[:, :, k]


def evaluate_forecaster(ds: Any, forecast: Forecaster) -> dict[str, Any]:
    """``{"mse", "mae", "rmse", "n"}`` of ``forecast`` on every window of ``ds`` (a
    :class:`~ptdssm.data.forecasting.ForecastWindows`): means over all ``N * K * C_out`` scaled target scalars."""
    sq = ab = 0.0
    n = 0
    cols = _columns(ds)
    for x, y in _chunks(ds):
        for j, k in cols:
            err = forecast(x[:, :, j], ds.targets[k]) - y[:, :, k]
            sq += float(np.sum(err * err))
            ab += float(np.sum(np.abs(err)))
            n += int(err.size)
    mse = sq / n if n else float("nan")
    return {"mse": mse, "mae": ab / n if n else float("nan"), "rmse": float(np.sqrt(mse)), "n": n}


def _ar_fits(data: Any, order: int) -> dict[int, tuple[np.ndarray, float]]:
    tr = data.train
    z = tr.series.double().numpy()
    return {c: fit_ar(z[tr.start : tr.end, c], order) for c in tr.targets}


def ar_oracle(data: Any, order: int | None = None) -> dict[str, Any]:
    """Test metrics of the least-squares AR(``order``) forecaster (:mod:`.ar_oracle`) on a task's data; ``order``
    defaults to the true order of ``forecast-ar`` (``len(extras["phi"])``). Adds ``"phi"``: the fitted
    coefficients of each target channel."""
    if order is None:
        if "phi" not in data.extras:
            raise ValueError("give the AR order (the task is not forecast-ar, whose true order is known)")
        order = len(data.extras["phi"])
    fits = _ar_fits(data, int(order))
    horizon = data.test.horizon
    out = evaluate_forecaster(data.test, lambda x, c: ar_forecast(x, fits[c][0], fits[c][1], horizon))
    return {**out, "order": int(order), "phi": {data.test.names[c]: f[0].tolist() for c, f in fits.items()}}


def _one(method: str, data: Any, season: int | None, ar_order: int | None, kernel: int) -> dict[str, Any]:
    test, K = data.test, data.test.horizon
    if method == "naive":
        return {**evaluate_forecaster(test, lambda x, c: naive_forecast(x[:, :, None], K)[:, :, 0]), "fit": "none"}
    if method == "seasonal-naive":
        if season is None:
            return {"skipped": "no season known for this task: pass --season"}
        f = lambda x, c: seasonal_naive_forecast(x[:, :, None], K, season)[:, :, 0]  # noqa: E731
        return {**evaluate_forecaster(test, f), "fit": "none", "season": int(season)}
    if method == "dlinear":
        model, info = fit_dlinear(NormalEquations.of(_channel_chunks(data.train)),
                                  NormalEquations.of(_channel_chunks(data.val)), kernel=kernel)
        return {**evaluate_forecaster(test, lambda x, c: model.predict(x)), "kernel": kernel,
                "fit": f"closed-form ridge least squares on train, ridge {info['ridge']:g} (relative) by val MSE",
                "val_mse": info["val_mse"]}
    if method == "ar":
        if ar_order is None and "phi" not in data.extras:
            return {"skipped": "pass --ar-order (the AR order is known only for forecast-ar)"}
        res = ar_oracle(data, ar_order)
        return {**res, "fit": f"least-squares AR({res['order']}) on the train rows"}
    raise ValueError(f"unknown baseline {method!r}; expected one of: {', '.join(METHODS)}")


def run_baselines(data: Any, methods: Sequence[str] = METHODS, *, season: int | None = None,
                  ar_order: int | None = None, kernel: int = 25) -> list[dict[str, Any]]:
    """Test metrics of each baseline on a forecasting task's data (``build_task`` output), with wall times.

    Args:
        data: the task's :class:`~ptdssm.data.TaskData` (its splits are
            :class:`~ptdssm.data.forecasting.ForecastWindows`).
        methods: names from :data:`METHODS`.
        season: the seasonal-naive season (default: the task's steps per day, when known).
        ar_order: the AR order (default: the true order on ``forecast-ar``; else ``ar`` is skipped).
        kernel: DLinear's moving-average kernel (odd).

    Returns:
        One row per method: ``{"method", "mse", "mae", "rmse", "n", "fit", "time_s", ...}`` or ``{"method",
        "skipped"}``.
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown baseline {bad[0]!r}; expected one of: {', '.join(METHODS)}")
    season = season if season is not None else data.extras.get("steps_per_day")
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        row = _one(m, data, season, ar_order, kernel)
        rows.append({"method": m, **row, **({} if "skipped" in row else
                                             {"time_s": round(time.perf_counter() - t0, 3)})})
    return rows
