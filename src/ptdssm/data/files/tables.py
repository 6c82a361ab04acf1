"""Readers of labelled series stored as NumPy arrays (``.npz`` / ``.npy``) and as CSV.

**Arrays** (task ``arrays``), one of these layouts in the folder (``--data-dir`` or ``data.options.path``):

* ``data.npz`` (or ``data.options.path`` naming any ``.npz`` file) with ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` and optionally ``x_val``, ``y_val``;
* ``train.npz`` / ``test.npz`` [/ ``val.npz``] (or ``data.options.train`` / ``test`` / ``val`` files), each with
  ``x`` and ``y``;
* ``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy`` [, ``x_val.npy``, ``y_val.npy``].

``x`` is ``(N, L)`` (univariate) or ``(N, L, D)``, numeric; NaN is a missing value and trailing time steps that are
NaN in every channel are padding (variable length). Optional ``lengths_<split>`` (or ``lengths``) int arrays give
the real length of each series instead. ``y`` is ``(N,)`` labels (integers, strings or booleans: classes; floats:
regression targets unless ``data.options.target: class``) or ``(N, C)`` floats (``C`` regression outputs).
Object (ragged) arrays are refused: pad with NaN. :func:`npz_shapes` reads array shapes from the ``.npy`` headers
inside the archive without loading the data; ``.npy`` files are memory-mapped.

**CSV** (task ``csv``): ``train.csv`` / ``test.csv`` [/ ``val.csv``] in the folder, or ``data.options.train`` /
``test`` / ``val``. One row per series: the label, then the values (``label_column: last`` puts the label at the end).
Rows may differ in length (variable-length series); empty fields, ``?`` and ``nan`` are missing values (trailing ones
are padding). Univariate only (use ``.ts`` or ``.npz`` for several channels). A first row whose value fields are not
all numbers is a header (``header: auto``; or ``true`` / ``false``). Labels that all parse as integers are
integer classes, other numbers are regression targets (``target: auto``), anything else is a string class.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..base import read_utf8
from .common import RawSplit, is_int_text, parse_float, trim_trailing_nan

__all__ = ["find_array_files", "npz_shapes", "read_array_split", "read_csv_split"]

SPLITS = ("train", "val", "test")


def npz_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an ``.npz`` file, read from the headers only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:  # a format this numpy writes but has no public header reader for: load the array
                        with np.load(path, allow_pickle=False) as z:
                            a = z[name[:-4]]
                        shape, dtype = a.shape, a.dtype
                out[name[:-4]] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    return out


def find_array_files(folder: Path, explicit: dict[str, Path] | None) -> dict[str, tuple[Path, str, str | None]]:
    """``{split: (file, x key, lengths key or None)}``; the y key is the x key with ``x`` -> ``y``."""
    if explicit:
        bad = [str(p) for p in explicit.values() if p.suffix != ".npz"]
        if bad:
            raise DataError(f"data.options.train/val/test of task 'arrays' must be .npz files with x and y: {bad[0]}")
        return {k: (p, "x", "lengths") for k, p in explicit.items()}
    single = folder if folder.is_file() else folder / "data.npz"
    if single.is_file():
        return {k: (single, f"x_{k}", f"lengths_{k}") for k in SPLITS}
    if folder.is_dir() and (folder / "train.npz").is_file():
        return {k: (folder / f"{k}.npz", "x", "lengths") for k in SPLITS if (folder / f"{k}.npz").is_file()}
    if folder.is_dir() and (folder / "x_train.npy").is_file():
        return {k: (folder / f"x_{k}.npy", "x", "lengths") for k in SPLITS if (folder / f"x_{k}.npy").is_file()}
    raise DataError(f"{folder}: no data.npz, train.npz/test.npz or x_train.npy/y_train.npy (task 'arrays')")


def _load(path: Path, key: str, split: str) -> np.ndarray | None:
    """One array: from a ``.npy`` file (memory-mapped; ``key`` selects x/y/lengths by file name) or an archive."""
    try:
        if path.suffix == ".npy":
            kind = key.split("_")[0]
            p = path.with_name(f"{kind}_{split}.npy")
            return np.load(p, mmap_mode="r", allow_pickle=False) if p.is_file() else None
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z[key]) if key in z.files else None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: {key} is an object (ragged) array; pad the series with NaN to one length "
                            f"(trailing NaN = padding) or give lengths") from None
        raise DataError(f"{path}: cannot read {key} ({exc})") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable NumPy file ({exc})") from None


def array_meta(path: Path, xkey: str, split: str) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape of x, y array) of a split without reading x (npz headers, mmap for .npy)."""
    if path.suffix == ".npy":
        x = _load(path, "x", split)
        shape = tuple(x.shape) if x is not None else ()
    else:
        shapes = npz_shapes(path)
        if xkey not in shapes:
            raise DataError(f"{path}: no array {xkey!r} (has {', '.join(sorted(shapes)) or 'none'})")
        shape = shapes[xkey][0]
        if shapes[xkey][1].kind == "O":
            raise DataError(f"{path}: {xkey} is an object (ragged) array; pad the series with NaN to one length "
                            f"(trailing NaN = padding) or give lengths")
    ykey = "y" + xkey[1:]
    y = _load(path, ykey, split)
    if y is None:
        raise DataError(f"{path}: no array {ykey!r} to go with {xkey!r}")
    return shape, np.asarray(y)


def read_array_split(path: Path, xkey: str, lkey: str | None, split: str) -> RawSplit:
    """Read one split of the ``arrays`` task into a :class:`RawSplit` (see the module docstring)."""
    x = _load(path, xkey, split)
    shape, y = array_meta(path, xkey, split)
    name = f"{path}[{xkey}]" if path.suffix != ".npy" else str(path.with_name(f"x_{split}.npy"))
    if x is None:
        raise DataError(f"{path}: no array {xkey!r}")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: x must be numeric, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise DataError(f"{name}: x must be (N, L) or (N, L, D), got shape {tuple(x.shape)}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise DataError(f"{name}: x has {len(x)} series but y has shape {tuple(y.shape)} (expected ({len(x)},) or "
                        f"({len(x)}, C))")
    lengths = _load(path, lkey, split) if lkey else None
    if lengths is not None and (lengths.shape != (len(x),) or (lengths < 1).any() or (lengths > x.shape[1]).any()):
        raise DataError(f"{path}: {lkey} must be ({len(x)},) ints in 1..{x.shape[1]}")
    series, where = [], []
    for i in range(len(x)):
        s = np.asarray(x[i], dtype=np.float64)
        s = s[: int(lengths[i])] if lengths is not None else trim_trailing_nan(s)
        if np.isinf(s).any():
            raise DataError(f"{name}[{i}]: holds inf")
        if len(s) == 0:
            raise DataError(f"{name}[{i}]: a series with no observed value")
        series.append(s)
        where.append(f"{name}[{i}]")
    labels: list[Any] = list(y) if y.ndim == 2 else y.tolist()
    if y.ndim == 2 or y.dtype.kind == "f":
        labels = [np.asarray(v, dtype=np.float64) if y.ndim == 2 else float(v) for v in labels]
    return RawSplit(series, labels, where)


def _label(text: str) -> Any:
    t = text.strip()
    if is_int_text(t):
        return int(t)
    try:
        return float(t)
    except ValueError:
        return t


def read_csv_split(path: Path, *, label_column: str = "first", header: Any = "auto",
                   delimiter: str = ",") -> RawSplit:
    """Read one split of the ``csv`` task (see the module docstring) into a :class:`RawSplit`."""
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    series, labels, where = [], [], []
    text = read_utf8(path)  # a damaged byte: one line naming the file and line
    for lineno, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        lab, vals = (row[0], row[1:]) if label_column == "first" else (row[-1], row[:-1])
        if lineno == 1 and header is not False:
            numeric = all(_is_value(v) for v in vals)
            if header is True or (header == "auto" and not numeric):
                continue
        if not lab.strip():
            raise DataError(f"{path}:{lineno}: empty label ({label_column} column)")
        try:
            s = np.array([parse_float(v) for v in vals], dtype=np.float64)[:, None]
        except ValueError:
            bad = next(v for v in vals if not _is_value(v))
            raise DataError(f"{path}:{lineno}: value {bad.strip()!r} is not a number") from None
        s = trim_trailing_nan(s)
        if len(s) == 0:
            raise DataError(f"{path}:{lineno}: a row with a label but no values")
        if np.isinf(s).any():
            raise DataError(f"{path}:{lineno}: holds inf")
        series.append(s)
        labels.append(_label(lab))
        where.append(f"{path}:{lineno}")
    if not series:
        raise DataError(f"{path}: no rows")
    kinds = {type(v) for v in labels}
    if str in kinds and len(kinds) > 1:  # mixed: all labels are class names
        labels = [str(v) for v in labels]
    elif float in kinds:
        labels = [float(v) for v in labels]
    return RawSplit(series, labels, where)


def _is_value(v: str) -> bool:
    try:
        parse_float(v)
    except ValueError:
        return False
    return True
