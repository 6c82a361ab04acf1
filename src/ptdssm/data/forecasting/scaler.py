r"""Per-channel standard scaling fitted on the training rows only (the benchmark's ``StandardScaler``).

``mean_c = (1/n) sum_{t in train} v_{t,c}``, ``std_c = sqrt((1/n) sum_{t in train} (v_{t,c} - mean_c)^2)`` (the
population standard deviation, as scikit-learn's ``StandardScaler``; a constant channel gets ``std_c = 1``), and every
row of every split is mapped to ``(v - mean) / std``. Validation and test values never enter the statistics, so
metrics on the scaled test split (the benchmark's reported MSE and MAE) use no information from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StandardScaler"]


@dataclass(frozen=True)
class StandardScaler:
    """Per-channel ``mean`` and ``std``, float64 ``(C,)`` each (module docstring)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> StandardScaler:
        """Statistics of the training rows ``train`` ``(T_train, C)``."""
        train = np.asarray(train, dtype=np.float64)
        if train.ndim != 2 or train.shape[0] < 1:
            raise ValueError(f"the scaler needs training rows (T, C) with T >= 1, got shape {train.shape}")
        mean = train.mean(axis=0)
        std = train.std(axis=0)
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(v - mean) / std`` of ``values`` ``(..., C)``."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def inverse(self, scaled: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
        """``scaled * std + mean`` of ``(..., C)`` values, or of ``(..., len(channels))`` values of those channels."""
        idx = slice(None) if channels is None else list(channels)
        return np.asarray(scaled, dtype=np.float64) * self.std[idx] + self.mean[idx]

    def as_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` (JSON-ready)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
