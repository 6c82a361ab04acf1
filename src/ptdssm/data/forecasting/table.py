"""The Informer/TSLib CSV layout: a date column, then one numeric column per channel, one row per time step.

The long-horizon benchmark files (``ETTh1.csv`` ... ``ETTm2.csv``, ``electricity.csv``, ``traffic.csv``,
``weather.csv``, ``exchange_rate.csv``, ``national_illness.csv``) share it::

    date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT
    2016-07-01 00:00:00,5.827,2.009,1.599,0.462,4.203,1.340,30.531

**Features** (the benchmark's ``--features``; ``target`` is a column name, ``OT`` by default):

* ``M``: every channel in, every channel out (``C_in = C_out`` = the number of channels);
* ``S``: the target channel in and out (univariate, ``C_in = C_out = 1``);
* ``MS``: every channel in, the target channel out (``C_out = 1``).

Channels are ordered as TSLib's ``Dataset_Custom`` orders them: the file's columns without the date and the target,
then the target last (for the ETT files, whose target ``OT`` is already last, the file's order).

Every cell must be a finite number: an empty cell, ``NaN``/``inf`` or text is a :class:`~ptdssm.errors.DataError`
naming the file, the line and the column (the benchmark files have no gaps; fill or drop them before training).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..base import decode_utf8

__all__ = ["FEATURES", "SeriesTable", "parse_series_csv", "read_series_csv", "select_features"]

#: The benchmark's feature modes (module docstring).
FEATURES = ("M", "S", "MS")


@dataclass(frozen=True)
class SeriesTable:
    """A multichannel series read from a CSV.

    Attributes:
        values: float64 ``(T, C)``, one row per time step.
        columns: the ``C`` channel names, in ``values``' column order.
        dates: the ``T`` date strings (``None`` when the file has no date column).
        source: where it was read from (for messages).
    """

    values: np.ndarray
    columns: tuple[str, ...]
    dates: tuple[str, ...] | None
    source: str

    def __len__(self) -> int:
        return int(self.values.shape[0])


def parse_series_csv(text: str, source: str, *, date_column: str | None = "date",
                     columns: list[str] | None = None, delimiter: str = ",") -> SeriesTable:
    """Parse CSV ``text`` (header row first) into a :class:`SeriesTable`.

    Args:
        text: the file's text.
        source: file name used in messages (``source:line``).
        date_column: the date column's name (``None``: the file has none; every column is a channel).
        columns: the channel columns to keep, in this order (default: every column but the date).
        delimiter: the field separator.

    Raises:
        DataError: empty file, no date column, a missing channel column, a row of the wrong width, or a cell that
            is not a finite number (file, line and column named).
    """
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, None)
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{source}: empty file (expected a header row such as date,<channels>...)")
    header = [h.strip() for h in header]
    if date_column is not None and date_column not in header:
        raise DataError(f"{source}: no date column {date_column!r} (columns: {', '.join(header)}); set "
                        f"data.options.date_column")
    chans = [h for h in header if h != date_column] if columns is None else list(columns)
    missing = [c for c in chans if c not in header]
    if missing:
        raise DataError(f"{source}: no column {missing[0]!r} (columns: {', '.join(header)})")
    if not chans:
        raise DataError(f"{source}: no channel columns besides {date_column!r}")
    idx = [header.index(c) for c in chans]
    date_idx = header.index(date_column) if date_column is not None else None
    cells: list[list[str]] = []
    dates: list[str] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{source}:{line}: {len(row)} fields, the header has {len(header)}")
        cells.append([row[i] for i in idx])
        if date_idx is not None:
            dates.append(row[date_idx])
    if not cells:
        raise DataError(f"{source}: no data rows after the header")
    values = _to_float(cells, chans, source)
    return SeriesTable(values, tuple(chans), tuple(dates) if date_idx is not None else None, source)


def _to_float(cells: list[list[str]], chans: list[str], source: str) -> np.ndarray:
    """``(T, C)`` float64 of the cells; the first bad cell is named (line = row + 2: header, 1-based)."""
    try:
        values = np.asarray(cells, dtype=np.float64)
    except ValueError:
        for r, row in enumerate(cells):
            for c, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "an empty cell" if not cell.strip() else f"{cell!r}, not a number"
                    raise DataError(f"{source}:{r + 2}: column {chans[c]!r} holds {what}") from None
        raise
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{source}:{r + 2}: column {chans[c]!r} holds {cells[r][c]!r} (NaN or inf); fill or drop "
                        f"missing values first")
    return values


def read_series_csv(path: str | Path, *, date_column: str | None = "date", columns: list[str] | None = None,
                    delimiter: str = ",", option: str = "data.options.path") -> SeriesTable:
    """Read the CSV file ``path`` with :func:`parse_series_csv`; a missing file is a one-line
    :class:`~ptdssm.errors.DataError` naming ``option`` (the config key that gave the path)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{option}: {p} does not exist" if not p.exists() else f"{option}: {p} is not a file")
    return parse_series_csv(decode_utf8(p.read_bytes(), p), str(p), date_column=date_column, columns=columns,
                            delimiter=delimiter)


def select_features(table: SeriesTable, features: str, target: str) -> tuple[np.ndarray, list[str], list[int],
                                                                                list[int]]:
    """The channels of a feature mode (module docstring).

    Returns:
        ``(values (T, C), names, input_indices, target_indices)``: the channels used, reordered with the target
        last (``S``: the target alone), and which of them are the model's inputs and its targets.

    Raises:
        DataError: unknown ``features``, or ``target`` is not a column.
    """
    if features not in FEATURES:
        raise DataError(f"data.options.features must be one of {', '.join(FEATURES)}, got {features!r}")
    if target not in table.columns:
        raise DataError(f"data.options.target {target!r} is not a column of {table.source} (columns: "
                        f"{', '.join(table.columns)})")
    names = [c for c in table.columns if c != target] + [target] if features != "S" else [target]
    order = [table.columns.index(c) for c in names]
    values = table.values[:, order]
    last = len(names) - 1
    inputs = [last] if features == "S" else list(range(len(names)))
    targets = list(range(len(names))) if features == "M" else [last]
    return values, names, inputs, targets
