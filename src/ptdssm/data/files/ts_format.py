"""Reader of the UCR/UEA time-series archive's ``.ts`` format (sktime's format, Bagnall et al.).

A file is a header of ``@`` tags, then ``@data`` and one line per case; ``#`` lines are comments, blank lines are
skipped, tags are case-insensitive::

    @problemName GunPoint
    @timeStamps false
    @missing false
    @univariate true
    @dimensions 1                  (optional; else 1 if univariate, else taken from the first case)
    @equalLength true
    @seriesLength 150              (with @equalLength true)
    @classLabel true 1 2           (the labels, in class-id order; or "@classLabel false")
    @targetLabel true              (regression archives: the last field is a number)
    @data
    -0.64,-0.64,-0.65,...:1        (dimension 1 : dimension 2 : ... : label)

Each dimension is comma-separated values; ``?`` (or ``NaN``) is a missing value. Trailing time steps missing in
every dimension are padding (variable length). Cases may have different lengths when ``@equalLength false``;
within one case every dimension has the same length. ``@timeStamps true`` (``(t, v)`` tuples) is not supported.
Every malformed case raises :class:`ptdssm.errors.DataError` naming ``file:line``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..base import read_utf8
from .common import trim_trailing_nan

__all__ = ["TsFile", "TsHeader", "read_ts", "read_ts_header"]


@dataclass
class TsHeader:
    """The header tags of a ``.ts`` file (``labels``: the ``@classLabel`` list, ``None`` without one)."""

    path: Path
    problem: str = ""
    timestamps: bool = False
    missing: bool = False
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    labels: list[str] | None = None
    target: bool = False
    data_line: int = 0  # line number of @data (1-based)


@dataclass
class TsFile:
    """A parsed ``.ts`` file: ``series`` float64 ``(L_i, D)`` (NaN = missing), raw ``labels``, ``lines``."""

    header: TsHeader
    series: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def _bool(value: str, path: Path, lineno: int, tag: str) -> bool:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise DataError(f"{path}:{lineno}: {tag} expects true or false, got {value.strip()!r}")
    return v == "true"


def _int(value: str, path: Path, lineno: int, tag: str) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise DataError(f"{path}:{lineno}: {tag} expects an integer, got {value.strip()!r}") from None
    if n < 1:
        raise DataError(f"{path}:{lineno}: {tag} must be >= 1, got {n}")
    return n


def _header_tag(h: TsHeader, tag: str, rest: str, lineno: int) -> None:
    path = h.path
    if tag == "@problemname":
        h.problem = rest.strip()
    elif tag == "@timestamps":
        h.timestamps = _bool(rest, path, lineno, tag)
    elif tag == "@missing":
        h.missing = _bool(rest, path, lineno, tag)
    elif tag == "@univariate":
        h.univariate = _bool(rest, path, lineno, tag)
    elif tag == "@dimensions":
        h.dimensions = _int(rest, path, lineno, tag)
    elif tag == "@equallength":
        h.equal_length = _bool(rest, path, lineno, tag)
    elif tag == "@serieslength":
        h.series_length = _int(rest, path, lineno, tag)
    elif tag == "@classlabel":
        parts = rest.split()
        if not parts or not _bool(parts[0], path, lineno, tag):
            h.labels = None
        else:
            if len(parts) < 2:
                raise DataError(f"{path}:{lineno}: @classLabel true lists no labels")
            h.labels = parts[1:]
    elif tag == "@targetlabel":
        h.target = _bool(rest, path, lineno, tag)
    else:
        raise DataError(f"{path}:{lineno}: unknown header tag {tag!r}")


def _lines(path: Path):
    """``(line number, line)`` of a ``.ts`` file; a damaged byte is one error naming the file and line."""
    yield from enumerate(io.StringIO(read_utf8(path), newline=None), start=1)


def read_ts_header(path: str | Path) -> TsHeader:
    """Read the header only (up to ``@data``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: .ts file not found")
    h = TsHeader(path)
    for lineno, raw in _lines(path):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataError(f"{path}:{lineno}: data before @data (header lines start with '@')")
        tag, _, rest = line.partition(" ")
        tag = tag.lower()
        if tag == "@data":
            h.data_line = lineno
            break
        _header_tag(h, tag, rest, lineno)
    if not h.data_line:
        raise DataError(f"{path}: no @data line (is it a .ts file?)")
    if h.timestamps:
        raise DataError(f"{path}: @timeStamps true is not supported (store values without time stamps)")
    if h.labels is not None and h.target:
        raise DataError(f"{path}: both @classLabel true and @targetLabel true")
    if h.dimensions is None and h.univariate:
        h.dimensions = 1
    if h.univariate and h.dimensions != 1:
        raise DataError(f"{path}: @univariate true but @dimensions {h.dimensions}")
    if h.equal_length and h.series_length is None:
        h.equal_length = None  # length not declared: take it from the data
    return h


def _parse_dim(text: str, path: Path, lineno: int, k: int) -> np.ndarray:
    vals = text.split(",")
    out = np.empty(len(vals), dtype=np.float64)
    for i, v in enumerate(vals):
        t = v.strip()
        if t == "?" or t.lower() == "nan":
            out[i] = np.nan
            continue
        try:
            out[i] = float(t)
        except ValueError:
            what = "empty value (truncated line?)" if not t else f"value {t!r} is not a number"
            raise DataError(f"{path}:{lineno}: dimension {k + 1}, value {i + 1}: {what}") from None
    return out


def _parse_case(h: TsHeader, line: str, lineno: int, n_dims: int | None) -> tuple[np.ndarray, str]:
    path = h.path
    fields = line.split(":")
    has_label = h.labels is not None or h.target
    dims = fields[:-1] if has_label else fields
    label = fields[-1].strip() if has_label else ""
    if n_dims is not None and len(dims) != n_dims:
        raise DataError(f"{path}:{lineno}: {len(dims)} dimension(s){' and a label' if has_label else ''}, "
                        f"expected {n_dims} (fields are 'dim1:...:dim{n_dims}{':label' if has_label else ''}')")
    if has_label and not label:
        raise DataError(f"{path}:{lineno}: missing label after the last ':'")
    parsed = [_parse_dim(d, path, lineno, k) for k, d in enumerate(dims)]
    lens = {len(p) for p in parsed}
    if len(lens) != 1:
        raise DataError(f"{path}:{lineno}: dimensions have different lengths {[len(p) for p in parsed]}")
    s = trim_trailing_nan(np.stack(parsed, axis=1))
    if len(s) == 0:
        raise DataError(f"{path}:{lineno}: a case with no observed value")
    if h.equal_length and h.series_length is not None and len(parsed[0]) != h.series_length:
        raise DataError(f"{path}:{lineno}: {len(parsed[0])} values per dimension, but @seriesLength is "
                        f"{h.series_length} (truncated line?)")
    if h.labels is not None and label not in h.labels:
        raise DataError(f"{path}:{lineno}: unknown label {label!r} (@classLabel: {' '.join(h.labels)})")
    return s, label


def read_ts(path: str | Path) -> TsFile:
    """Parse a ``.ts`` file (see the module docstring); every case becomes a float64 ``(L_i, D)`` array."""
    h = read_ts_header(path)
    out = TsFile(h)
    n_dims = h.dimensions
    for lineno, raw in _lines(h.path):
        if lineno <= h.data_line:
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        s, label = _parse_case(h, line, lineno, n_dims)
        if n_dims is None:
            n_dims = s.shape[1]
            h.dimensions = n_dims
        out.series.append(s)
        out.labels.append(label)
        out.lines.append(lineno)
    if not out.series:
        raise DataError(f"{h.path}: no cases after @data (line {h.data_line})")
    return out
