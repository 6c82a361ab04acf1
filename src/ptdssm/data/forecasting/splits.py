r"""Chronological train / validation / test borders of the long-horizon forecasting benchmark.

A split is a half-open row range ``[start, end)`` of the series. Validation and test ranges start ``lookback`` rows
before their border, so their first window's history is the end of the previous split and every target step of a
split lies inside it (TSLib's ``border1s`` / ``border2s``; SpaceTime's ``InformerDataset._borders``):

* ``custom`` (TSLib ``Dataset_Custom``, every set but ETT): with ``n`` rows, ``n_train = int(0.7 n)``,
  ``n_test = int(0.2 n)``, ``n_val = n - n_train - n_test``::

      train [0, n_train)
      val   [n_train - lookback, n_train + n_val)
      test  [n - n_test - lookback, n)

* ``ett-hour`` (``Dataset_ETT_hour``): 12 / 4 / 4 months of 30 days at 24 steps a day, i.e. borders 8640, 11520,
  14400; the rows after 14400 are unused. ``ett-minute`` (``Dataset_ETT_minute``): the same at 96 steps a day
  (15 minutes): 34560, 46080, 57600. ``months``: the same 12 / 4 / 4 months at any ``steps_per_day`` (e.g. 48 for a
  half-hourly series: 17280, 23040, 28800).

Windows of a range ``[a, b)`` (lookback ``L``, horizon ``H``) start at ``a .. b - L - H``: there are
``b - a - L - H + 1`` of them (:mod:`ptdssm.data.forecasting.windows`).
"""

from __future__ import annotations

from ...errors import DataError

__all__ = ["SPLITS", "Borders", "custom_borders", "month_borders", "split_borders"]

#: Split rules (module docstring); ``auto`` picks ``ett-hour`` / ``ett-minute`` for files named ``ETTh*`` /
#: ``ETTm*`` and ``custom`` otherwise.
SPLITS = ("auto", "custom", "ett-hour", "ett-minute", "months")

Borders = dict[str, tuple[int, int]]


def custom_borders(n: int, lookback: int) -> Borders:
    """TSLib's 7:1:2 borders of ``n`` rows (module docstring): ``{"train": (0, n_train), "val": ..., "test": ...}``."""
    n_train, n_test = int(n * 0.7), int(n * 0.2)
    n_val = n - n_train - n_test
    return {"train": (0, n_train), "val": (n_train - lookback, n_train + n_val), "test": (n - n_test - lookback, n)}


def month_borders(steps_per_day: int, lookback: int, months: tuple[int, int, int] = (12, 4, 4)) -> Borders:
    """ETT's borders: ``months`` (train, val, test) of 30 days at ``steps_per_day`` steps (module docstring)."""
    m = 30 * int(steps_per_day)
    a = months[0] * m
    b = a + months[1] * m
    c = b + months[2] * m
    return {"train": (0, a), "val": (a - lookback, b), "test": (b - lookback, c)}


def split_borders(rule: str, n: int, lookback: int, *, name: str = "", steps_per_day: int | None = None) -> Borders:
    """The borders of ``rule`` (one of :data:`SPLITS`) for a series of ``n`` rows.

    Args:
        rule: the split rule; ``auto`` looks at ``name`` (a file name: ``ETTh1.csv`` -> ``ett-hour``).
        n: rows in the series.
        lookback: history length ``L`` (val and test start ``L`` rows before their border).
        name: the series' file name, for ``auto``.
        steps_per_day: required by ``months``.

    Raises:
        DataError: unknown rule, ``months`` without ``steps_per_day``, or a series shorter than the rule needs.
    """
    if rule not in SPLITS:
        raise DataError(f"data.options.split must be one of {', '.join(SPLITS)}, got {rule!r}")
    if rule == "auto":
        rule = "ett-hour" if name.startswith("ETTh") else "ett-minute" if name.startswith("ETTm") else "custom"
    if rule == "custom":
        return custom_borders(n, lookback)
    if rule == "months":
        if not steps_per_day or int(steps_per_day) < 1:
            raise DataError("data.options.split 'months' needs data.options.steps_per_day (e.g. 24 for hourly data)")
        per_day = int(steps_per_day)
    else:
        per_day = 24 if rule == "ett-hour" else 96
    borders = month_borders(per_day, lookback)
    if n < borders["test"][1]:
        raise DataError(f"data.options.split {rule!r} needs {borders['test'][1]} rows (12/4/4 months of 30 days at "
                        f"{per_day} steps a day), the series has {n}; use split 'custom' (7:1:2)")
    return borders
