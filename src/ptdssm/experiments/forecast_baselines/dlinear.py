r"""DLinear (Zeng et al. 2023, "Are Transformers Effective for Time Series Forecasting?"), fitted in closed form.

The lookback window ``x`` ``(L,)`` of one channel is split by a moving average into a trend and a remainder,
``t = M x`` and ``s = x - t = (I - M) x``, where ``M`` ``(L, L)`` averages ``kernel`` neighbours (25 in the paper) of
``x`` padded at both ends with ``(kernel - 1) / 2`` copies of its first and last value (DLinear's ``moving_avg``). Two
linear maps take them to the horizon: ``y_hat = W_s^T s + W_t^T t + b``, ``W_s, W_t`` ``(L, K)``. As in the paper's
default (``individual=False``) the maps are shared by all channels, each channel forecast from its own history
(channel independence; with ``MS`` features only the target's history is used).

**Fit.** The paper trains this model with Adam on the MSE. Its training loss is quadratic in ``(W_s, W_t, b)``, so
here it is minimized exactly: with ``z = [s; t; 1] = T [x; 1]`` the ridge normal equations
``(Z^T Z + lambda D) w = Z^T y`` (``D`` = identity on the weights, 0 on the bias) are solved from the sufficient
statistics ``A = sum [x;1][x;1]^T``, ``B = sum [x;1] y^T`` of the training windows (``Z^T Z = T A T^T``). The ridge
term is needed (``s + t = x``: the two maps are not separately identifiable) and kept small; ``lambda`` is chosen from
:data:`RIDGE_GRID` (relative to the mean diagonal of ``Z^T Z``) by the validation MSE, computed from the
validation statistics without another pass (``sum ||y - X w||^2 = sum y^2 - 2 tr(w^T B) + tr(w^T A w)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["RIDGE_GRID", "DLinear", "NormalEquations", "fit_dlinear", "moving_average_matrix"]

#: ``lambda`` candidates, relative to the mean diagonal of ``Z^T Z`` (module docstring).
RIDGE_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def moving_average_matrix(length: int, kernel: int) -> np.ndarray:
    """``M`` ``(L, L)``: ``(M x)_t = (1/k) sum_{i=0}^{k-1} x_{clip(t + i - (k-1)/2, 0, L-1)}`` (edge-replicated)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"the moving-average kernel must be odd and >= 1, got {kernel}")
    half = (kernel - 1) // 2
    M = np.zeros((length, length))
    for t in range(length):
        for i in range(kernel):
            M[t, min(max(t + i - half, 0), length - 1)] += 1.0 / kernel
    return M


@dataclass
class NormalEquations:
    """Sums over windows of one-channel data: ``A = sum [x;1][x;1]^T`` ``(L+1, L+1)``, ``B = sum [x;1] y^T``
    ``(L+1, K)``, ``yy = sum ||y||^2`` and the number of target scalars ``n``."""

    A: np.ndarray
    B: np.ndarray
    yy: float = 0.0
    n: int = 0

    @classmethod
    def of(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> NormalEquations:
        """Accumulate ``(x (N, L), y (N, K))`` chunks in float64."""
        eq: NormalEquations | None = None
        for x, y in chunks:
            xa = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
            if eq is None:
                eq = cls(np.zeros((xa.shape[1],) * 2), np.zeros((xa.shape[1], y.shape[1])))
            eq.A += xa.T @ xa
            eq.B += xa.T @ y
            eq.yy += float(np.sum(y * y))
            eq.n += int(y.size)
        if eq is None:
            raise ValueError("no windows to fit")
        return eq

    def sse(self, w: np.ndarray) -> float:
        """``sum ||y - [x;1] w||^2`` for weights ``w`` ``(L+1, K)`` in the ``[x; 1]`` basis."""
        return float(self.yy - 2.0 * np.sum(w * self.B) + np.sum(w * (self.A @ w)))


@dataclass
class DLinear:
    """A fitted DLinear: ``W_s``, ``W_t`` ``(L, K)``, ``b`` ``(K,)``, the kernel and the chosen ridge."""

    W_s: np.ndarray
    W_t: np.ndarray
    b: np.ndarray
    kernel: int
    ridge: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(N, L)`` -> ``(N, K)``: ``s W_s + t W_t + b`` with ``t = x M^T``, ``s = x - t``."""
        t = x @ moving_average_matrix(x.shape[1], self.kernel).T
        return (x - t) @ self.W_s + t @ self.W_t + self.b

    def x_basis(self, L: int) -> np.ndarray:
        """The same map as one ``(L+1, K)`` matrix on ``[x; 1]``."""
        M = moving_average_matrix(L, self.kernel)
        return np.concatenate([(np.eye(L) - M).T @ self.W_s + M.T @ self.W_t, self.b[None, :]], axis=0)


def fit_dlinear(train: NormalEquations, val: NormalEquations | None, kernel: int = 25,
                grid: tuple[float, ...] = RIDGE_GRID) -> tuple[DLinear, dict[str, float]]:
    """Closed-form DLinear (module docstring); ``lambda`` by validation MSE (the smallest of ``grid`` without
    ``val``). Returns the model and ``{"ridge", "val_mse"}``."""
    L = train.A.shape[0] - 1
    M = moving_average_matrix(L, kernel)
    T = np.zeros((2 * L + 1, L + 1))
    T[:L, :L], T[L : 2 * L, :L], T[2 * L, L] = np.eye(L) - M, M, 1.0
    G, R = T @ train.A @ T.T, T @ train.B
    D = np.ones(2 * L + 1)
    D[-1] = 0.0
    scale = float(np.mean(np.diag(G)[: 2 * L]))
    best: tuple[float, float, np.ndarray] | None = None
    for r in grid if val is not None else grid[:1]:
        w = np.linalg.solve(G + r * scale * np.diag(D), R)
        score = val.sse(T.T @ w) / val.n if val is not None else float("nan")
        if best is None or score < best[0]:
            best = (score, r, w)
    score, r, w = best  # type: ignore[misc]
    model = DLinear(w[:L], w[L : 2 * L], w[2 * L], kernel, r)
    return model, {"ridge": r, "val_mse": score}
