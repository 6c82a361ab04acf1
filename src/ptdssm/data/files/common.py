"""What the file-backed tasks share: options, locating files, label maps, the stratified split, normalization, and
turning parsed series into :class:`~ptdssm.data.base.TaskData`.

A reader hands over one :class:`RawSplit` per file split: ``series`` (a list of float64 ``(L_i, D)`` arrays, NaN =
missing value), raw labels, and ``where`` (a ``file:line`` or ``file[index]`` per example for error messages).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import DataError
from ..base import ArrayDataset, TaskData, TaskInfo, get_options, seeded_split, seeded_subset

__all__ = ["COMMON_OPTIONS", "RawSplit", "assemble", "label_kind", "map_labels", "normalize_series", "options",
           "stratified_split", "trim_trailing_nan"]

DATA_DIR_ENV = "PTDSSM_DATA_DIR"
#: Options every file task takes (``data.options``), with their defaults.
COMMON_OPTIONS: dict[str, Any] = {"path": None, "train": None, "val": None, "test": None, "normalize": "none",
                                  "stratify": True, "missing": "error", "target": "auto"}
_CHOICES = {"normalize": ("none", "series", "global"), "missing": ("error", "zero"),
            "target": ("auto", "class", "regression")}


@dataclass
class RawSplit:
    """One split as parsed: ``series`` float64 ``(L_i, D)`` arrays, ``labels`` (strings, ints or float rows)."""

    series: list[np.ndarray]
    labels: list[Any]
    where: list[str]
    y: np.ndarray | None = field(default=None)  # filled by map_labels: int64 (N,) or float32 (N, C)


def options(cfg: Any, task: str, extra: dict[str, Any]) -> dict[str, Any]:
    """``data.options`` merged over the defaults; unknown keys and bad choices raise :class:`DataError`."""
    defaults = {**COMMON_OPTIONS, **extra}
    given = dict(getattr(cfg, "options", None) or {})
    o = get_options(cfg, task, defaults)
    if getattr(cfg, "normalize", False) and "normalize" not in given:
        o["normalize"] = "global"  # data.normalize: true means the training split's mean and std
    for key, valid in _CHOICES.items():
        if o[key] not in valid:
            raise DataError(f"data.options.{key} for task {task!r} must be one of {', '.join(valid)}, "
                            f"got {o[key]!r}")
    return o


def base_dir(cfg: Any, o: dict[str, Any]) -> Path | None:
    """``data.options.path``, else ``data.data_dir``, else ``$PTDSSM_DATA_DIR`` (``None`` if none is set)."""
    for cand in (o.get("path"), getattr(cfg, "data_dir", None), os.environ.get(DATA_DIR_ENV)):
        if cand:
            p = Path(str(cand)).expanduser()
            if not p.is_absolute() and o.get("path") and getattr(cfg, "data_dir", None) and cand == o["path"]:
                p = Path(cfg.data_dir).expanduser() / p
            return p
    return None


def explicit_files(cfg: Any, o: dict[str, Any], task: str) -> dict[str, Path] | None:
    """``data.options.train`` / ``val`` / ``test`` (relative to ``data.data_dir`` when given), or ``None``."""
    named = {k: o[k] for k in ("train", "val", "test") if o.get(k)}
    if not named:
        return None
    if "train" not in named or "test" not in named:
        raise DataError(f"task {task!r}: data.options.train and data.options.test go together (got "
                        f"{', '.join(sorted(named))})")
    root = Path(cfg.data_dir).expanduser() if getattr(cfg, "data_dir", None) else None
    out = {}
    for k, v in named.items():
        p = Path(str(v)).expanduser()
        p = root / p if root is not None and not p.is_absolute() else p
        if not p.is_file():
            raise DataError(f"task {task!r}: data.options.{k} file {p} does not exist")
        out[k] = p
    return out


def need_dir(cfg: Any, o: dict[str, Any], task: str, what: str) -> Path:
    """The folder (or file) to read, with a one-line error naming what was expected when there is none."""
    d = base_dir(cfg, o)
    if d is None:
        raise DataError(f"task {task!r} reads {what}: pass --data-dir D (data.data_dir), data.options.path, "
                        f"or data.options.train/test, or set ${DATA_DIR_ENV}")
    if not d.exists():
        raise DataError(f"task {task!r}: {d} does not exist (expected {what})")
    return d


def trim_trailing_nan(s: np.ndarray) -> np.ndarray:
    """Drop trailing time steps where every channel is NaN (padding of variable-length series)."""
    real = ~np.isnan(s).all(axis=1)
    n = int(np.flatnonzero(real)[-1]) + 1 if real.any() else 0
    return s[:n]


def label_kind(labels: list[Any], target: str, where: str) -> str:
    """``"class"`` or ``"regression"`` for raw labels; ``target: auto`` takes floats as regression targets."""
    if target != "auto":
        return target
    if labels and isinstance(labels[0], (float, np.floating, np.ndarray)):
        return "regression"
    return "class"


def _sort_key(v: Any) -> tuple:
    return (0, float(v), "") if isinstance(v, (int, np.integer, float, np.floating)) else (1, 0.0, str(v))


def map_labels(splits: dict[str, RawSplit], kind: str, classes: list[Any] | None = None) -> list[Any] | None:
    """Fill ``split.y``: class ids ``0 .. C-1`` (``classes`` order, else sorted distinct labels of all splits) or
    float32 ``(N, C)`` regression targets. Returns the class list (``None`` for regression)."""
    if kind == "regression":
        for sp in splits.values():
            try:
                y = np.asarray(sp.labels, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{sp.where[0] if sp.where else '?'}: regression targets must be numbers "
                                f"({exc})") from exc
            y = y.reshape(len(sp.labels), -1)
            bad = np.flatnonzero(~np.isfinite(y).all(axis=1))
            if len(bad):
                raise DataError(f"{sp.where[int(bad[0])]}: regression target is NaN or inf")
            sp.y = y.astype(np.float32)
        return None
    if classes is None:
        classes = sorted({_hashable(v) for sp in splits.values() for v in sp.labels}, key=_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    for sp in splits.values():
        ids = np.empty(len(sp.labels), dtype=np.int64)
        for i, v in enumerate(sp.labels):
            key = _hashable(v)
            if key not in index:
                raise DataError(f"{sp.where[i]}: unknown label {v!r} (labels: {', '.join(map(str, classes))})")
            ids[i] = index[key]
        sp.y = ids
    return list(classes)


def _hashable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held-out) sorted index arrays with ``round(fraction * n)`` held out, per class in proportion.

    Class ``c`` with ``n_c`` examples contributes ``floor(fraction * n_c)`` plus one for the classes with the
    largest remainders (ties: lower class id first) until the total is reached; which examples is a
    ``numpy.random.default_rng(seed)`` permutation per class, classes in ascending order.
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_out = int(round(fraction * n))
    classes, counts = np.unique(labels, return_counts=True)
    quota = fraction * counts
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n_out - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(n), held_idx)
    return keep, held_idx


def normalize_series(series: list[np.ndarray], mode: str, stats: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> list[np.ndarray]:
    """``series``: z-normalize each series per channel over its observed values (std 0 -> divide by 1);
    ``global``: ``(x - mean) / std`` with ``stats`` per channel; ``none``: unchanged."""
    if mode == "none":
        return series
    out = []
    for s in series:
        if mode == "series":
            mu = np.nanmean(s, axis=0) if len(s) else 0.0
            sd = np.nanstd(s, axis=0) if len(s) else 1.0
        else:
            assert stats is not None
            mu, sd = stats
        sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        out.append((s - np.nan_to_num(mu)) / sd)
    return out


def global_stats(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (ddof 0) over every observed value of ``series``."""
    allv = np.concatenate([s for s in series if len(s)], axis=0)
    return np.nanmean(allv, axis=0), np.nanstd(allv, axis=0)


def _check_missing(sp: RawSplit, mode: str) -> None:
    if mode != "error":
        return
    for s, w in zip(sp.series, sp.where, strict=True):
        if np.isnan(s).any():
            t = int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
            raise DataError(f"{w}: missing value (NaN or '?') at time step {t}; pass data.options.missing=zero "
                            f"to replace missing values by 0 after normalization")


def _pad(series: list[np.ndarray], seq_len: int | None, d: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    lens = [min(len(s), seq_len) if seq_len else len(s) for s in series]
    truncated = sum(1 for s in series if seq_len and len(s) > seq_len)
    L = max(lens, default=0)
    x = np.zeros((len(series), L, d), dtype=np.float32)
    for i, (s, n) in enumerate(zip(series, lens, strict=True)):
        x[i, :n] = np.nan_to_num(s[:n], nan=0.0)
    lt = torch.as_tensor(lens, dtype=torch.long)
    return torch.from_numpy(x), (None if bool((lt == L).all()) else lt), truncated


def _split_val(cfg: Any, o: dict[str, Any], splits: dict[str, RawSplit], kind: str) -> dict[str, RawSplit]:
    if "val" in splits:
        return splits
    tr = splits["train"]
    assert tr.y is not None
    if kind == "class" and o["stratify"]:
        keep, held = stratified_split(tr.y, cfg.val_fraction, cfg.split_seed)
    else:
        keep, held = seeded_split(len(tr.y), cfg.val_fraction, cfg.split_seed)

    def part(idx: np.ndarray) -> RawSplit:
        return RawSplit([tr.series[i] for i in idx], [tr.labels[i] for i in idx], [tr.where[i] for i in idx],
                        tr.y[idx])

    return {"train": part(keep), "val": part(held), "test": splits["test"]}


def assemble(cfg: Any, o: dict[str, Any], info: TaskInfo, splits: dict[str, RawSplit], kind: str,
             classes: list[Any] | None, extras: dict[str, Any]) -> TaskData:
    """Check missing values, split off validation, take subsets, normalize, pad: the :class:`TaskData`.

    ``splits`` holds ``train`` and ``test`` (and ``val`` if the files give one) with ``y`` filled by
    :func:`map_labels`. Validation, when not given, is ``data.val_fraction`` of train (stratified by class unless
    ``stratify: false`` or regression; seed ``data.split_seed``).
    """
    for sp in splits.values():
        _check_missing(sp, o["missing"])
    splits = _split_val(cfg, o, splits, kind)
    subset = {"train": cfg.train_subset, "val": cfg.val_subset, "test": cfg.test_subset}
    for k, sp in splits.items():
        idx = seeded_subset(np.arange(len(sp.series)), subset[k], cfg.split_seed)
        if len(idx) < len(sp.series):
            assert sp.y is not None
            splits[k] = RawSplit([sp.series[i] for i in idx], [sp.labels[i] for i in idx],
                                 [sp.where[i] for i in idx], sp.y[idx])
    stats = global_stats(splits["train"].series) if o["normalize"] == "global" else None
    if stats is not None:
        extras["normalization"] = {"mean": stats[0].tolist(), "std": stats[1].tolist()}
    d = info.d_input or 1
    sets, truncated = {}, 0
    for k, sp in splits.items():
        x, lengths, t = _pad(normalize_series(sp.series, o["normalize"], stats), cfg.seq_len, d)
        truncated += t
        assert sp.y is not None
        sets[k] = ArrayDataset(x, torch.from_numpy(sp.y), lengths)
    if truncated:
        extras["truncated"] = truncated
    if classes is not None:
        extras["classes"] = classes
    lens = [len(s) for sp in splits.values() for s in sp.series]
    extras["length_range"] = [min(lens, default=0), max(lens, default=0)]
    return TaskData(info, sets["train"], sets["val"], sets["test"], extras=extras)


def make_info(cfg: Any, name: str, *, kind: str, n_out: int, seq_len: int, d_input: int,
              description: str) -> TaskInfo:
    """The :class:`TaskInfo` of a file task (pooled head; cross-entropy or MSE)."""
    if n_out < 1 or (kind == "class" and n_out < 2):
        raise DataError(f"task {name!r}: found {n_out} distinct label(s) in {description}; a classification "
                        f"task needs at least 2")
    return TaskInfo(name, n_classes=int(n_out), seq_len=int(cfg.seq_len or max(seq_len, 1)), d_input=int(d_input),
                    description=description, loss="mse" if kind == "regression" else "cross-entropy")


def is_int_text(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def parse_float(s: str) -> float:
    """A value field: a number, or ``?`` / ``nan`` / empty-after-strip for missing (NaN)."""
    t = s.strip()
    if t in ("?", "") or t.lower() == "nan":
        return math.nan
    return float(t)
