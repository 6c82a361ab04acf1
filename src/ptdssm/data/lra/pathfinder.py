"""LRA Pathfinder (32x32) and Path-X (128x128): are the two circles connected by a dashed path?

Layout (``data-formats.md`` section 1.5)::

    pathfinder32/curv_contour_length_14/     (pathfinder128/... for Path-X; curv_baseline, curv_contour_length_9)
      metadata/<k>.npy                       one file per generation batch k = 0, 1, 2, ...
      imgs/<k>/sample_<i>.png                8-bit grayscale PNGs

Metadata files are **text** in the release despite the ``.npy`` name (real ``.npy`` files, as the original
generator writes, are detected from their magic bytes and read with ``allow_pickle=False``). One image per line,
space-separated: ``imgs/<k> sample_<i>.png <i> <label> ...`` (11 fields; the label is field 3). Files are taken in
numeric order of their stem (a non-numeric stem such as ``combined.npy`` is skipped, it would duplicate rows), lines
in order. Zero-byte PNGs are skipped (the release has at least one, and LRA drops them all).

Pixels are flattened row-major to ``(res*res, 1)`` in ``[0, 1]`` (S4's ``pathfinder.yaml``), ``normalize: center``
maps to ``[-1, 1]`` (S5's ``Normalize(0.5, 0.5)``), ``tokenize: true`` gives integer pixels 0..255 (vocabulary 256).
Splits: one ``torch.randperm(n)`` seeded with ``data.split_seed`` (42) cut into train / val / test of
``n - 2 int(0.1 n)`` / ``int(0.1 n)`` / ``int(0.1 n)`` (``torch.utils.data.random_split`` as S4 and S5 do:
160,000 / 20,000 / 20,000). Options: ``difficulty`` (``hard``; ``easy`` = ``curv_baseline``, ``intermediate`` =
``curv_contour_length_9``, or a folder name), ``resolution`` (32 / 128), ``normalize`` (``none``), ``tokenize``
(false), ``test_fraction`` (0.1), ``cache`` (true).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..base import TaskData, TaskInfo
from ..registry import register_task
from ._cache import cached_arrays
from ._common import apply_subsets, get_options, parse_label, random_split_indices
from ._find import DataNotFoundError, data_root, find_leaf
from .image import PixelDataset

__all__ = ["DIFFICULTIES", "read_metadata_file", "read_pathfinder_folder"]

DIFFICULTIES = {"easy": "curv_baseline", "intermediate": "curv_contour_length_9", "hard": "curv_contour_length_14"}
_NUMERIC = re.compile(r"^\d+$")


def read_metadata_file(path: str | Path) -> list[list[str]]:
    """Rows (lists of fields) of one metadata file, text or real ``.npy`` (sniffed from the magic bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\x93NUMPY"):
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path}: a .npy file that cannot be read without pickle ({exc})") from None
        arr = np.atleast_2d(arr)
        return [[str(v) for v in row] for row in arr]
    rows = []
    for line_no, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 4:
            raise ValueError(f"{path}: line {line_no}: expected at least 4 space-separated fields "
                             f"('imgs/<k> sample_<i>.png <i> <label> ...'), got {len(fields)}: {line[:80]!r}")
        rows.append(fields)
    return rows


def metadata_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """``(numeric metadata files in numeric order, skipped non-numeric ones)``."""
    files = sorted(folder.glob("metadata/*.npy"))
    numeric = sorted((p for p in files if _NUMERIC.match(p.stem)), key=lambda p: int(p.stem))
    return numeric, [p for p in files if not _NUMERIC.match(p.stem)]


def read_pathfinder_folder(folder: str | Path, resolution: int) -> dict[str, Any]:
    """Read every image listed in the metadata: ``{"pixels": uint8 (N, res*res), "labels", "skipped_empty",
    "skipped_meta"}``. Missing PNGs, bad labels or wrong image sizes are errors naming the file."""
    folder = Path(folder)
    numeric, skipped_meta = metadata_files(folder)
    if not numeric:
        raise DataNotFoundError(f"{folder}: no metadata/<k>.npy files (expected numerically named metadata files)")
    entries: list[tuple[Path, int]] = []
    for mf in numeric:
        for line_no, row in enumerate(read_metadata_file(mf), start=1):
            label = parse_label(row[3], (0, 1), f"{mf}: row {line_no}")
            entries.append((folder / row[0] / row[1], label))
    missing = [p for p, _ in entries if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        raise DataNotFoundError(f"{folder}: {len(missing)} image(s) listed in the metadata are missing, e.g. {shown}")
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    empty: list[str] = []
    for p, label in entries:
        if p.stat().st_size == 0:
            empty.append(str(p))
            continue
        try:
            with Image.open(p) as im:
                a = np.asarray(im.convert("L"), dtype=np.uint8)
        except OSError as exc:
            raise ValueError(f"{p}: not a readable image ({exc})") from None
        if a.shape != (resolution, resolution):
            raise ValueError(f"{p}: image is {a.shape[1]}x{a.shape[0]}, expected {resolution}x{resolution}")
        pixels.append(a.reshape(-1))
        labels.append(label)
    arr = np.stack(pixels) if pixels else np.zeros((0, resolution * resolution), np.uint8)
    return {"pixels": arr, "labels": np.asarray(labels, dtype=np.int64), "skipped_empty": empty,
            "skipped_meta": [str(p) for p in skipped_meta]}


def _make(name: str, resolution: int, desc: str) -> None:
    defaults = {"difficulty": "hard", "resolution": resolution, "normalize": "none", "tokenize": False,
                "test_fraction": 0.1, "cache": True}

    def info(cfg: Any) -> TaskInfo:
        opts = get_options(cfg, name, defaults)
        res = int(opts["resolution"])
        if opts["normalize"] not in ("none", "center"):
            raise ValueError(f"data.options.normalize must be 'none' or 'center', got {opts['normalize']!r}")
        if cfg.seq_len not in (None, res * res):
            raise ValueError(f"data.seq_len for {name} must be {res * res} ({res}x{res}), got {cfg.seq_len}")
        if opts["tokenize"]:
            return TaskInfo(name, n_classes=2, seq_len=res * res, vocab_size=256, description=desc)
        return TaskInfo(name, n_classes=2, seq_len=res * res, d_input=1, description=desc)

    def build(cfg: Any) -> TaskData:
        inf = info(cfg)
        opts = get_options(cfg, name, defaults)
        res = int(opts["resolution"])
        diff = DIFFICULTIES.get(opts["difficulty"], opts["difficulty"])
        root = data_root(cfg.data_dir, name)
        hint = (f"Pathfinder is in the LRA release (lra_release.gz -> lra_release/pathfinder{res}/{diff}); or "
                f"generate one offline with `ptdssm data generate pathfinder --resolution {res} --out DIR`")
        folder = find_leaf(root, f"pathfinder{res}/{diff}", ["metadata/*.npy", "imgs"], task=name, hint=hint)
        numeric, skipped_meta = metadata_files(folder)
        extras: dict[str, Any] = {"skipped_meta": [str(p) for p in skipped_meta]}

        def build_arrays() -> dict[str, np.ndarray]:
            d = read_pathfinder_folder(folder, res)
            return {"pixels": d["pixels"], "labels": d["labels"], "skipped_empty": np.asarray(d["skipped_empty"],
                                                                                              dtype=str)}

        # The metadata files (not 200,000 PNGs) make the fingerprint; the folder path and resolution are in the key.
        arrays = cached_arrays(name, {"folder": str(folder.resolve()), "resolution": res}, build_arrays,
                               sources=numeric, enabled=bool(opts["cache"]))
        n = len(arrays["labels"])
        n_val, n_test = int(cfg.val_fraction * n), int(float(opts["test_fraction"]) * n)
        tr, va, te = random_split_indices(n, [n - n_val - n_test, n_val, n_test], cfg.split_seed)
        tr, va, te = apply_subsets(cfg, tr, va, te)
        mean, std = (0.5, 0.5) if opts["normalize"] == "center" else (0.0, 1.0)
        kw = {"tokenize": bool(opts["tokenize"]), "mean": mean, "std": std}
        extras.update({"folder": str(folder), "skipped_empty": [str(s) for s in arrays["skipped_empty"]]})
        return TaskData(inf, PixelDataset(arrays["pixels"], arrays["labels"], tr, **kw),
                        PixelDataset(arrays["pixels"], arrays["labels"], va, **kw),
                        PixelDataset(arrays["pixels"], arrays["labels"], te, **kw), extras=extras)

    register_task(name, info=info, build=build, replace=True, description=desc)


_make("pathfinder", 32, "LRA Pathfinder 32x32 (pathfinder32/curv_contour_length_14), length 1024")
_make("pathx", 128, "LRA Path-X 128x128 (pathfinder128/curv_contour_length_14), length 16384")
