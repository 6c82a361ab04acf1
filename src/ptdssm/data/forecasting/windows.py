r"""Sliding windows over a split: ``lookback`` steps of history in, the next ``horizon`` steps out.

For a split ``[a, b)`` of the scaled series ``z`` ``(T, C)``, window ``i`` starts at ``s = a + i`` (``i = 0 .. n - 1``,
``n = b - a - L - H + 1``, stride 1 as in the benchmark; a larger ``stride`` keeps every ``stride``-th start) and is
the example::

    x = z[s : s + L, inputs]          (L, C_in)   the lookback window
    y = z[s + L : s + L + H, targets] (H, C_out)  the horizon

(TSLib's ``seq_x`` and ``seq_y`` with ``label_len = 0``.) The windows are views of one float32 tensor: a split costs no
memory beyond the series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import DataError

__all__ = ["ForecastWindows", "n_windows"]


def n_windows(start: int, end: int, lookback: int, horizon: int) -> int:
    """Number of windows of the split ``[start, end)``: ``end - start - lookback - horizon + 1`` (may be <= 0)."""
    return end - start - lookback - horizon + 1


class ForecastWindows(Dataset):
    """The windows of one split (module docstring).

    Args:
        series: the scaled series ``(T, C)`` (float32 tensor or array; shared by the splits).
        start, end: the split's rows ``[start, end)``.
        lookback, horizon: ``L`` and ``H``.
        inputs, targets: channel indices of ``x`` and ``y``.
        stride: keep every ``stride``-th window start.
        keep: indices of the windows to keep (a subset, after ``stride``), or ``None``.
        split: the split's name, for messages.
        names: the series' channel names (for plots and reports).
        scaler: the :class:`~ptdssm.data.forecasting.scaler.StandardScaler` of the series (to undo the scaling).

    Raises:
        DataError: the split is shorter than ``lookback + horizon`` (no window fits).
    """

    def __init__(self, series: torch.Tensor | np.ndarray, start: int, end: int, lookback: int, horizon: int,
                 inputs: Sequence[int], targets: Sequence[int], *, stride: int = 1,
                 keep: np.ndarray | None = None, split: str = "train", names: Sequence[str] | None = None,
                 scaler: Any = None) -> None:
        self.series = torch.as_tensor(series, dtype=torch.float32)
        self.start, self.end, self.lookback, self.horizon = int(start), int(end), int(lookback), int(horizon)
        self.inputs, self.targets = list(inputs), list(targets)
        self.split, self.scaler = split, scaler
        self.names = list(names) if names is not None else [f"ch{c}" for c in range(self.series.shape[1])]
        n = n_windows(self.start, self.end, self.lookback, self.horizon)
        if n < 1:
            raise DataError(f"the {split} split has {self.end - self.start} steps (rows {self.start}..{self.end}), "
                            f"fewer than lookback + horizon = {self.lookback} + {self.horizon}: no window fits; "
                            f"lower data.options.lookback or data.options.horizon")
        starts = np.arange(self.start, self.start + n, int(stride), dtype=np.int64)
        self.starts = starts if keep is None else starts[np.asarray(keep, dtype=np.int64)]
        self._x = self.series[:, self.inputs]
        self._y = self.series[:, self.targets]

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i])
        L = self.lookback
        return self._x[s : s + L], self._y[s + L : s + L + self.horizon]

    def arrays(self, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """float64 ``x (N, L, C_in)`` and ``y (N, H, C_out)`` of the windows ``index`` (default all)."""
        starts = self.starts if index is None else self.starts[index]
        z = self.series.double().numpy()
        L, H = self.lookback, self.horizon
        rows_x = starts[:, None] + np.arange(L)[None, :]
        rows_y = starts[:, None] + L + np.arange(H)[None, :]
        return z[rows_x][:, :, self.inputs], z[rows_y][:, :, self.targets]
