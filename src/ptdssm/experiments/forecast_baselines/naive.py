r"""The naive forecasts: repeat the last value, or the last season.

For a lookback window ``x_0 .. x_{L-1}`` of one channel and horizon steps ``h = 0 .. K-1`` (step ``L + h``):

* **naive**: ``y_hat_h = x_{L-1}``;
* **seasonal naive** with season ``m`` (e.g. 48 for half-hourly data with a daily cycle, 24 for hourly):
  ``y_hat_h = x_{L - m + (h mod m)}``, the value one (or more) whole seasons before step ``L + h``, the latest one
  observed (Hyndman and Athanasopoulos, *Forecasting: Principles and Practice*, sec. 5.2). Needs ``L >= m``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["naive_forecast", "seasonal_naive_forecast"]


def naive_forecast(x: np.ndarray, horizon: int) -> np.ndarray:
    """``x`` ``(N, L, C)`` -> ``(N, K, C)``: every step repeats ``x[:, L-1]``."""
    return np.repeat(x[:, -1:, :], int(horizon), axis=1)


def seasonal_naive_forecast(x: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``x`` ``(N, L, C)`` -> ``(N, K, C)`` with ``y_hat[:, h] = x[:, L - m + (h mod m)]`` (module docstring).

    Raises:
        ValueError: ``season < 1`` or a lookback shorter than the season (naming both).
    """
    L, m = x.shape[1], int(season)
    if m < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    if L < m:
        raise ValueError(f"seasonal naive needs a lookback of at least one season: lookback {L} < season {m}")
    idx = L - m + np.arange(int(horizon)) % m
    return x[:, idx, :]
