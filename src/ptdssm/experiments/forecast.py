"""Forecasting runs: the figure of a few test forecasts that training writes to the run directory.

A forecasting model maps a lookback window ``x`` ``(B, L, C_in)`` to the horizon ``(B, K, C_out)`` (the generic
:class:`~ptdssm.models.SequenceModel` forecast path, or a family's own forecaster). :func:`forecast_panels` runs it
on ``n`` evenly spaced windows of a split and undoes the training-split scaling, so the figure is in the series'
units (e.g. MW); the metrics stay on the scaled values, as the benchmark reports them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["forecast_panels", "write_forecast_plot"]


@torch.no_grad()
def forecast_panels(model: nn.Module, dataset: Any, device: torch.device | str = "cpu", n: int = 3) -> list[dict]:
    """History, truth and prediction of the last target channel (the ``target`` column) for ``n`` evenly spaced
    windows of ``dataset`` (a :class:`~ptdssm.data.forecasting.ForecastWindows`), in the series' units.

    Returns:
        ``n`` mappings ``{"history" (L,), "truth" (K,), "prediction" (K,), "title", "ylabel"}`` for
        :func:`ptdssm.plots.plot_forecasts`.
    """
    count = len(dataset)
    idx = sorted({int(round(v)) for v in np.linspace(0, count - 1, min(n, count))})
    xs, ys = zip(*(dataset[i] for i in idx), strict=True)
    x = torch.stack(xs).to(device)
    was_training = model.training
    model.eval()
    pred = model(x).float().cpu().numpy()
    model.train(was_training)
    chan = dataset.targets[-1]  # series channel of the target column
    col_out = len(dataset.targets) - 1
    col_in = dataset.inputs.index(chan) if chan in dataset.inputs else None
    scaler = dataset.scaler

    def unscale(v: np.ndarray) -> np.ndarray:
        return scaler.inverse(v[:, None], [chan])[:, 0] if scaler is not None else v

    panels = []
    for j, i in enumerate(idx):
        start = int(dataset.starts[i])
        hist = xs[j][:, col_in].numpy() if col_in is not None else np.full(dataset.lookback, np.nan)
        panels.append({"history": unscale(hist), "truth": unscale(ys[j][:, col_out].numpy()),
                       "prediction": unscale(pred[j, :, col_out]),
                       "title": f"{dataset.split} window {i} (series rows {start}..{start + dataset.lookback - 1} "
                                f"-> next {dataset.horizon})",
                       "ylabel": dataset.names[chan]})
    return panels


def write_forecast_plot(model: nn.Module, dataset: Any, path: str | os.PathLike[str], *,
                        device: torch.device | str = "cpu", n: int = 3, title: str = "") -> str:
    """:func:`forecast_panels` drawn by :func:`ptdssm.plots.plot_forecasts` into ``path``; returns the path."""
    from ..plots import plot_forecasts

    plot_forecasts(forecast_panels(model, dataset, device, n), path, title=title)
    return os.fspath(path)
