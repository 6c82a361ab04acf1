"""The file-backed tasks ``ucr``, ``arrays`` and ``csv``: train on your own labelled series with no code.

Where the files are: ``data.options.train`` / ``test`` [/ ``val``] (relative to ``--data-dir`` when given), else
``data.options.path`` (a folder or a file), else ``--data-dir`` (``data.data_dir``), else ``$PTDSSM_DATA_DIR``:

* ``ucr``: ``<Name>_TRAIN.ts`` and ``<Name>_TEST.ts`` in the folder or in ``<folder>/<Name>/`` (the archive's
  layout); ``data.options.name`` picks ``<Name>`` when the folder holds several. ``path`` may name the
  ``_TRAIN.ts`` file itself. Format: :mod:`ptdssm.data.files.ts_format`.
* ``arrays``: ``data.npz``, ``train.npz``/``test.npz`` or ``x_train.npy``... (:mod:`ptdssm.data.files.tables`).
* ``csv``: ``train.csv``/``test.csv`` (:mod:`ptdssm.data.files.tables`); options ``label_column`` (``first`` |
  ``last``), ``header`` (``auto`` | true | false), ``delimiter`` (``,``).

Options shared by the three (``data.options``): ``normalize`` (``none`` | ``series``: z-normalize each series per
channel | ``global``: the training split's per-channel mean and std; ``data.normalize: true`` means ``global``),
``missing`` (``error``: a missing value is a :class:`~ptdssm.errors.DataError` naming the file and line | ``zero``:
replaced by 0 after normalization), ``stratify`` (true: the validation split keeps the class proportions),
``target`` (``auto`` | ``class`` | ``regression``). Validation is ``data.val_fraction`` of train, seeded by
``data.split_seed``, unless a validation file is given. Class labels (numbers or strings) map to ``0 .. C-1`` in
sorted order (``.ts``: the ``@classLabel`` order); ``TaskData.extras["classes"]`` lists them by class id.
Regression targets give ``TaskInfo(loss="mse", n_classes=C)`` outputs. Series longer than ``data.seq_len`` (when
set) are cut to it.

``info(cfg)`` reads as little as it can: the ``.ts`` header (the whole file only for variable-length series or
undeclared dimensions), the ``.npz`` array headers and ``y`` arrays (``.npy`` files memory-mapped); CSV has no
header to read, so ``info`` parses the files (parsed files are cached per process by path, size and mtime).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..base import TaskData, TaskInfo
from ..registry import register_task
from .common import (
    RawSplit,
    assemble,
    explicit_files,
    label_kind,
    make_info,
    map_labels,
    need_dir,
    options,
)
from .tables import array_meta, find_array_files, read_array_split, read_csv_split
from .ts_format import TsFile, read_ts, read_ts_header

__all__ = ["find_ts_files"]

_UCR_OPTIONS = {"name": None}
_CSV_OPTIONS = {"label_column": "first", "header": "auto", "delimiter": ","}


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=16)
def _read_ts_cached(stamp: tuple[str, int, int]) -> TsFile:
    return read_ts(stamp[0])


@lru_cache(maxsize=16)
def _read_csv_cached(stamp: tuple[str, int, int], label_column: str, header: Any, delimiter: str) -> RawSplit:
    return read_csv_split(Path(stamp[0]), label_column=label_column, header=header, delimiter=delimiter)


def _copy(sp: RawSplit) -> RawSplit:
    return RawSplit(list(sp.series), list(sp.labels), list(sp.where))


# ------------------------------------------------------------------------------------------------------------- ucr

def find_ts_files(cfg: Any, o: dict[str, Any]) -> dict[str, Path]:
    """``{"train", "test"[, "val"]}`` ``.ts`` paths for the ``ucr`` task (module docstring)."""
    explicit = explicit_files(cfg, o, "ucr")
    if explicit:
        return explicit
    d = need_dir(cfg, o, "ucr", "<Name>_TRAIN.ts and <Name>_TEST.ts")
    if d.is_file():
        train = d
    else:
        name = o.get("name")
        pats = [f"{name}_TRAIN.ts", f"{name}/{name}_TRAIN.ts"] if name else ["*_TRAIN.ts", "*/*_TRAIN.ts"]
        found: list[Path] = []
        for pat in pats:
            found = sorted(d.glob(pat))
            if found:
                break
        if not found:
            raise DataError(f"task 'ucr': no {pats[0]} in {d} (nor in {d}/<Name>/)")
        if len(found) > 1:
            names = ", ".join(p.name[: -len("_TRAIN.ts")] for p in found)
            raise DataError(f"task 'ucr': several problems in {d} ({names}); pick one with data.options.name")
        train = found[0]
    if not train.name.endswith("_TRAIN.ts"):
        raise DataError(f"task 'ucr': {train} is not a <Name>_TRAIN.ts file")
    test = train.with_name(train.name[: -len("_TRAIN.ts")] + "_TEST.ts")
    if not test.is_file():
        raise DataError(f"task 'ucr': {test} is missing (found {train.name})")
    return {"train": train, "test": test}


def _ucr_kind(h: Any, o: dict[str, Any]) -> str:
    if o["target"] != "auto":
        return o["target"]
    if h.labels is None and not h.target:
        raise DataError(f"{h.path}: no labels (@classLabel false and no @targetLabel true)")
    return "regression" if h.target else "class"


def ucr_info(cfg: Any) -> TaskInfo:
    o = options(cfg, "ucr", _UCR_OPTIONS)
    files = find_ts_files(cfg, o)
    h = read_ts_header(files["train"])
    kind = _ucr_kind(h, o)
    if h.dimensions is None or (not h.equal_length and not cfg.seq_len):
        parsed = [_read_ts_cached(_stamp(p)) for p in files.values()]
        dims, L = parsed[0].header.dimensions or 1, max(len(s) for f in parsed for s in f.series)
    else:
        dims, L = h.dimensions, int(h.series_length or cfg.seq_len)
    n_out = 1 if kind == "regression" else len(h.labels or [])
    if kind == "class" and h.labels is None:
        labels = {lab for p in files.values() for lab in _read_ts_cached(_stamp(p)).labels}
        n_out = len(labels)
    return make_info(cfg, "ucr", kind=kind, n_out=n_out, seq_len=L, d_input=dims,
                     description=f"UCR/UEA .ts {h.problem or files['train'].stem} ({files['train']})")


def ucr_build(cfg: Any) -> TaskData:
    o = options(cfg, "ucr", _UCR_OPTIONS)
    info = ucr_info(cfg)
    files = find_ts_files(cfg, o)
    parsed = {k: _read_ts_cached(_stamp(p)) for k, p in files.items()}
    dims = {k: f.header.dimensions for k, f in parsed.items()}
    if len(set(dims.values())) != 1:
        raise DataError(f"task 'ucr': the files have different numbers of dimensions {dims}")
    splits = {k: RawSplit(list(f.series), list(f.labels), [f"{f.header.path}:{n}" for n in f.lines])
              for k, f in parsed.items()}
    kind = "regression" if info.loss == "mse" else "class"
    h = parsed["train"].header
    if kind == "regression":
        for sp in splits.values():
            sp.labels = [_number(v, w) for v, w in zip(sp.labels, sp.where, strict=True)]
    classes = map_labels(splits, kind, h.labels if kind == "class" else None)
    extras = {"format": "ucr", "folder": str(files["train"].parent), "files": {k: str(p) for k, p in files.items()},
              "problem": h.problem}
    return assemble(cfg, o, info, splits, kind, classes, extras)


def _number(v: str, where: str) -> float:
    try:
        return float(v)
    except ValueError:
        raise DataError(f"{where}: regression target {v!r} is not a number") from None


# ---------------------------------------------------------------------------------------------------------- arrays

def _array_files(cfg: Any, o: dict[str, Any]) -> dict[str, tuple[Path, str, str | None]]:
    explicit = explicit_files(cfg, o, "arrays")
    folder = Path(".") if explicit else need_dir(cfg, o, "arrays", "data.npz, train.npz/test.npz or x_*.npy")
    files = find_array_files(folder, explicit)
    for k in ("train", "test"):
        if k not in files:
            raise DataError(f"task 'arrays': no {k} split in {folder} (layouts: data.npz with x_{k}/y_{k}, "
                            f"{k}.npz, x_{k}.npy)")
    if files["train"][0].suffix == ".npz" and files["train"][1] == "x_train":  # data.npz: val only if present
        from .tables import npz_shapes

        if "x_val" not in npz_shapes(files["train"][0]):
            files.pop("val", None)
    return files


def arrays_info(cfg: Any) -> TaskInfo:
    o = options(cfg, "arrays", {})
    files = _array_files(cfg, o)
    metas = {k: array_meta(path, xkey, k) for k, (path, xkey, _) in files.items()}
    shape, ytr = metas["train"]
    if len(shape) not in (2, 3):
        raise DataError(f"{files['train'][0]}: x_train must be (N, L) or (N, L, D), got shape {shape}")
    kind = o["target"] if o["target"] != "auto" else ("regression" if ytr.dtype.kind == "f" else "class")
    if kind == "regression":
        n_out = 1 if ytr.ndim == 1 else int(ytr.shape[1])
    else:
        if ytr.ndim != 1:
            raise DataError(f"{files['train'][0]}: class labels y must be (N,), got shape {tuple(ytr.shape)}")
        n_out = len({v.item() if hasattr(v, "item") else v for _, y in metas.values() for v in y.tolist()})
    L = max(int(m[0][1]) for m in metas.values() if len(m[0]) >= 2)
    d = int(shape[2]) if len(shape) == 3 else 1
    return make_info(cfg, "arrays", kind=kind, n_out=n_out, seq_len=L, d_input=d,
                     description=f"labelled arrays ({files['train'][0]})")


def arrays_build(cfg: Any) -> TaskData:
    o = options(cfg, "arrays", {})
    info = arrays_info(cfg)
    files = _array_files(cfg, o)
    splits = {k: read_array_split(path, xkey, lkey, k) for k, (path, xkey, lkey) in files.items()}
    dims = {k: sp.series[0].shape[1] for k, sp in splits.items()}
    if len(set(dims.values())) != 1:
        raise DataError(f"task 'arrays': the splits have different numbers of channels {dims}")
    kind = "regression" if info.loss == "mse" else "class"
    classes = map_labels(splits, kind)
    first = files["train"][0]
    extras = {"format": "arrays", "folder": str(first.parent), "files": {k: str(v[0]) for k, v in files.items()}}
    return assemble(cfg, o, info, splits, kind, classes, extras)


# ------------------------------------------------------------------------------------------------------------- csv

def _csv_files(cfg: Any, o: dict[str, Any]) -> dict[str, Path]:
    explicit = explicit_files(cfg, o, "csv")
    if explicit:
        return explicit
    d = need_dir(cfg, o, "csv", "train.csv and test.csv")
    if not d.is_dir():
        raise DataError(f"task 'csv': {d} is not a folder (give train.csv/test.csv there, or data.options.train/test)")
    files = {k: d / f"{k}.csv" for k in ("train", "val", "test") if (d / f"{k}.csv").is_file()}
    for k in ("train", "test"):
        if k not in files:
            raise DataError(f"task 'csv': {d / f'{k}.csv'} is missing")
    return files


def _csv_splits(cfg: Any, o: dict[str, Any]) -> tuple[dict[str, Path], dict[str, RawSplit]]:
    if o["label_column"] not in ("first", "last"):
        raise DataError(f"data.options.label_column for task 'csv' must be first or last, got {o['label_column']!r}")
    if o["header"] not in ("auto", True, False):
        raise DataError(f"data.options.header for task 'csv' must be auto, true or false, got {o['header']!r}")
    files = _csv_files(cfg, o)
    splits = {k: _copy(_read_csv_cached(_stamp(p), o["label_column"], o["header"], str(o["delimiter"])))
              for k, p in files.items()}
    return files, splits


def csv_info(cfg: Any) -> TaskInfo:
    o = options(cfg, "csv", _CSV_OPTIONS)
    files, splits = _csv_splits(cfg, o)
    labels = [v for sp in splits.values() for v in sp.labels]
    kind = label_kind(labels, o["target"], str(files["train"]))
    n_out = 1 if kind == "regression" else len(set(labels))
    L = max(len(s) for sp in splits.values() for s in sp.series)
    return make_info(cfg, "csv", kind=kind, n_out=n_out, seq_len=L, d_input=1,
                     description=f"labelled CSV series ({files['train']})")


def csv_build(cfg: Any) -> TaskData:
    o = options(cfg, "csv", _CSV_OPTIONS)
    info = csv_info(cfg)
    files, splits = _csv_splits(cfg, o)
    kind = "regression" if info.loss == "mse" else "class"
    classes = map_labels(splits, kind)
    extras = {"format": "csv", "folder": str(files["train"].parent), "files": {k: str(p) for k, p in files.items()}}
    return assemble(cfg, o, info, splits, kind, classes, extras)


register_task("ucr", info=ucr_info, build=ucr_build, replace=True,
              description="UCR/UEA .ts time series (--data-dir with <Name>_TRAIN.ts, <Name>_TEST.ts)")
register_task("arrays", info=arrays_info, build=arrays_build, replace=True,
              description="labelled series from .npz/.npy (x_train, y_train, x_test, y_test)")
register_task("csv", info=csv_info, build=csv_build, replace=True,
              description="labelled series from train.csv/test.csv (label, then values, per row)")
