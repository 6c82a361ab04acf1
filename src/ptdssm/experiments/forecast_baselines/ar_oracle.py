r"""The least-squares AR(p) forecaster: the oracle of the AR synthetic task.

**Fit** (on the training rows of the scaled series ``z_0 .. z_{n-1}``, one channel): ordinary least squares of
``z_t = c + sum_{k=1}^{p} phi_k z_{t-k}`` over ``t = p .. n-1``. For data from an AR(p) process this is the
(conditional) maximum-likelihood estimate, consistent for the true ``phi``.

**Forecast** (from a lookback window ``x_0 .. x_{L-1}``, ``L >= p``): the recurrence rolled forward with the noise
set to its mean, ``x_hat_{L+h} = c + sum_k phi_k x_hat_{L+h-k}`` (observed values where ``L + h - k < L``). For a
Gaussian AR(p) with the true coefficients this is the conditional mean ``E[x_{L+h} | past]``, the minimum-MSE
forecast at every horizon step: no model can beat it in expectation, so its horizon MSE is the floor a learned
forecaster is measured against.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ar_forecast", "fit_ar"]


def fit_ar(series: np.ndarray, order: int) -> tuple[np.ndarray, float]:
    """Least-squares ``(phi (p,), c)`` of an AR(``order``) with intercept on ``series`` ``(n,)`` (module docstring).

    Raises:
        ValueError: ``order < 1`` or a series not longer than ``2 * order``.
    """
    z = np.asarray(series, dtype=np.float64)
    p = int(order)
    if p < 1:
        raise ValueError(f"the AR order must be >= 1, got {order}")
    if z.shape[0] <= 2 * p:
        raise ValueError(f"an AR({p}) fit needs more than {2 * p} steps, got {z.shape[0]}")
    lags = np.stack([z[p - k : z.shape[0] - k] for k in range(1, p + 1)], axis=1)  # column k-1: z_{t-k}
    design = np.concatenate([lags, np.ones((lags.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, z[p:], rcond=None)
    return coef[:p], float(coef[p])


def ar_forecast(x: np.ndarray, phi: np.ndarray, c: float, horizon: int) -> np.ndarray:
    """``x`` ``(N, L)`` -> ``(N, K)``: the AR recurrence rolled forward from each window (module docstring)."""
    p = len(phi)
    if x.shape[1] < p:
        raise ValueError(f"an AR({p}) forecast needs a lookback of at least {p}, got {x.shape[1]}")
    buf = np.concatenate([x[:, x.shape[1] - p :], np.zeros((x.shape[0], int(horizon)))], axis=1)
    rev = np.asarray(phi, dtype=np.float64)[::-1]  # rev[j] multiplies z_{t-p+j}
    for h in range(int(horizon)):
        buf[:, p + h] = c + buf[:, h : h + p] @ rev
    return buf[:, p:]
