"""Image classification as sequence classification: MNIST-format IDX files, Fashion-MNIST, sMNIST/psMNIST, digits.

* :func:`read_idx` reads one IDX file (gzip or raw, detected from the content), checking the magic number, the
  dimensions and the size.
* ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` installs the four IDX files under
  ``/usr/share/datasets/fashion-mnist``; ``data_dir`` replaces it (only ``data_dir`` and ``data_dir/fashion-mnist``
  are searched then: no silent fallback), ``$PTDSSM_DATA_DIR`` is searched before it.
* ``mnist`` / ``psmnist``: the same reader on MNIST files the user has (``data_dir``, also ``MNIST/raw/`` below it).
  ``psmnist`` (or ``data.permute: true``) applies the bit-reversal permutation (S4's ``bitreversal_permutation``).
* ``digits``: scikit-learn's 1,797 8x8 digits (length 64), for runs of seconds.

Sequences are row-major pixels in ``[0, 1]`` (no normalization unless ``data.normalize``, which standardizes with the
training split's mean and std): length 784 (28x28) or, with ``data.seq_len: 1024``, the image zero-padded by 2 pixels
on each side to 32x32. Examples are ``(x, y)`` with ``x`` float32 ``(L, 1)``. Validation is a seeded random
``data.val_fraction`` of the training files (``torch.Generator().manual_seed(data.split_seed)``, as S4 does).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .base import TaskData, TaskInfo, get_options, seeded_split, seeded_subset
from .registry import register_task

__all__ = [
    "FASHION_MNIST_DIR",
    "IDXFormatError",
    "ImageSequenceDataset",
    "bitreversal_permutation",
    "find_idx_files",
    "load_idx_pair",
    "read_idx",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_ENV = "PTDSSM_DATA_DIR"

# IDX type codes -> big-endian numpy dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated, or not the kind expected."""


def read_idx(path: str | Path, *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an MNIST-format IDX file (gzip-compressed or raw).

    Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then one big-endian int32 per
    dimension, then the data row-major.

    Args:
        path: file path; compression is detected from the first bytes, not the name.
        expect_ndim: if given, the number of dimensions the file must have (3 for images, 1 for labels).

    Returns:
        the array, e.g. uint8 ``(N, 28, 28)`` for images or ``(N,)`` for labels (native byte order).

    Raises:
        FileNotFoundError: no such file.
        IDXFormatError: bad magic number, unexpected dimensions, or a size that does not match the header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IDXFormatError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise IDXFormatError(f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x00000803 for images or "
                             f"0x00000801 for labels)")
    if expect_ndim is not None and ndim != expect_ndim:
        raise IDXFormatError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim} "
                             f"(magic 0x{int.from_bytes(raw[:4], 'big'):08x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(f"{path}: IDX header says shape {dims} ({expected} data bytes) but the file has "
                             f"{len(raw) - header} data bytes")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _candidates(name: str) -> list[str]:
    base = name  # e.g. train-images-idx3-ubyte
    dotted = base.replace("-idx", ".idx")  # the other common spelling: train-images.idx3-ubyte
    return [base, base + ".gz", dotted, dotted + ".gz"]


def find_idx_files(roots: list[Path], split: str) -> tuple[Path, Path]:
    """Locate ``(images, labels)`` IDX files of ``split`` ("train" or "test") under the first root that has both.

    Each root is searched directly and in ``raw/``, ``MNIST/raw/`` and ``FashionMNIST/raw/`` (torchvision's layouts);
    names may end in ``.gz`` and use ``-idx`` or ``.idx``.

    Raises:
        FileNotFoundError: listing every folder searched and the file names expected.
    """
    prefix = _SPLIT_PREFIX[split]
    img_names = _candidates(f"{prefix}-images-idx3-ubyte")
    lab_names = _candidates(f"{prefix}-labels-idx1-ubyte")
    searched: list[str] = []
    for root in roots:
        for folder in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
            searched.append(str(folder))
            if not folder.is_dir():
                continue
            img = next((folder / n for n in img_names if (folder / n).is_file()), None)
            lab = next((folder / n for n in lab_names if (folder / n).is_file()), None)
            if img is not None and lab is not None:
                return img, lab
    raise FileNotFoundError(
        f"MNIST-format {split} files not found: expected {prefix}-images-idx3-ubyte[.gz] and "
        f"{prefix}-labels-idx1-ubyte[.gz]; searched: {', '.join(searched) or '(no folder given)'}")


def load_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images/labels pair: uint8 ``(N, rows, cols)`` and int64 ``(N,)`` with labels 0..9."""
    x = read_idx(images, expect_ndim=3)
    y = read_idx(labels, expect_ndim=1)
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise IDXFormatError(f"{images} / {labels}: expected uint8 data (type 0x08), got {x.dtype} / {y.dtype}")
    if x.shape[0] != y.shape[0]:
        raise IDXFormatError(f"{images} has {x.shape[0]} images but {labels} has {y.shape[0]} labels")
    if y.size and int(y.max()) > 9:
        raise IDXFormatError(f"{labels}: label {int(y.max())} out of range 0..9")
    return x, y.astype(np.int64)


def bitreversal_permutation(n: int) -> np.ndarray:
    """Bit-reversal permutation of ``range(n)``: the bit reversal of ``range(2**ceil(log2 n))`` kept where ``< n``.

    For n = 784 this is the psMNIST permutation of S4 (``src/utils/permutations.py``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    bits = max(1, int(np.ceil(np.log2(n))))
    idx = np.arange(2**bits)
    rev = np.zeros_like(idx)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    return rev[rev < n]


class ImageSequenceDataset(Dataset):
    """uint8 images ``(N, L)`` (already flattened) served as float ``(L, 1)`` sequences.

    ``x = (pixel/255 - mean) / std``, optionally permuted; indices select a subset of the stored images.
    """

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray, *, scale: float,
                 mean: float = 0.0, std: float = 1.0, permutation: np.ndarray | None = None) -> None:
        self.pixels = torch.from_numpy(np.ascontiguousarray(pixels))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.indices = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        self.scale, self.mean, self.std = float(scale), float(mean), float(std)
        self.permutation = None if permutation is None else torch.from_numpy(permutation.astype(np.int64))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(self.indices[i])
        x = self.pixels[j].float().mul_(1.0 / self.scale)
        if self.mean != 0.0 or self.std != 1.0:
            x = (x - self.mean) / self.std
        if self.permutation is not None:
            x = x[self.permutation]
        return x.unsqueeze(-1), self.labels[j]


def _layout(images: np.ndarray, seq_len: int) -> np.ndarray:
    """``(N, 28, 28)`` uint8 -> ``(N, seq_len)`` row-major, zero-padding to 32x32 for 1024."""
    n, h, w = images.shape
    if seq_len == h * w:
        return images.reshape(n, h * w)
    side = int(round(np.sqrt(seq_len)))
    if side * side != seq_len or side < max(h, w):
        raise ValueError(f"data.seq_len {seq_len} is not {h * w} (row-major {h}x{w}) or a square >= {h}x{w} "
                         f"(zero-padded, e.g. 1024 = 32x32)")
    top, left = (side - h) // 2, (side - w) // 2
    out = np.zeros((n, side, side), dtype=images.dtype)
    out[:, top : top + h, left : left + w] = images
    return out.reshape(n, seq_len)


def _image_task_data(info: TaskInfo, cfg: Any, train: tuple[np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray] | None, *, scale: float, permute: bool,
                     test_fraction: float = 0.0) -> TaskData:
    """Build a TaskData from uint8 image arrays; if ``test`` is None a seeded ``test_fraction`` of train is held out."""
    seq_len = info.seq_len
    xtr, ytr = train
    if test is None:
        keep, held = seeded_split(len(ytr), test_fraction, cfg.split_seed + 1)
        xte, yte = xtr[held], ytr[held]
        xtr, ytr = xtr[keep], ytr[keep]
    else:
        xte, yte = test
    ptr = _layout(xtr, seq_len) if xtr.ndim == 3 else xtr
    pte = _layout(xte, seq_len) if xte.ndim == 3 else xte
    tr_idx, va_idx = seeded_split(len(ytr), cfg.val_fraction, cfg.split_seed)
    tr_idx = seeded_subset(tr_idx, cfg.train_subset, cfg.split_seed)
    va_idx = seeded_subset(va_idx, cfg.val_subset, cfg.split_seed)
    te_idx = seeded_subset(np.arange(len(yte)), cfg.test_subset, cfg.split_seed)
    mean, std = 0.0, 1.0
    if cfg.normalize:
        vals = ptr[tr_idx].astype(np.float64) / scale
        mean, std = float(vals.mean()), float(vals.std() + 1e-8)
    perm = bitreversal_permutation(seq_len) if permute else None
    kw = {"scale": scale, "mean": mean, "std": std, "permutation": perm}
    return TaskData(
        info,
        train=ImageSequenceDataset(ptr, ytr, tr_idx, **kw),
        val=ImageSequenceDataset(ptr, ytr, va_idx, **kw),
        test=ImageSequenceDataset(pte, yte, te_idx, **kw),
        extras={"mean": mean, "std": std, "permuted": permute},
    )


def _roots(cfg: Any, default: Path | None, sub: str) -> list[Path]:
    """Folders to search: ``data_dir`` and ``data_dir/sub`` when a data folder is given (and nothing else: a folder
    without the files is an error, never a silent fallback); else ``$PTDSSM_DATA_DIR/sub``,
    ``$PTDSSM_DATA_DIR``, then the default folder."""
    if cfg.data_dir:
        d = Path(cfg.data_dir).expanduser()
        return [d, d / sub]
    roots: list[Path] = []
    env = os.environ.get(_ENV)
    if env:
        roots += [Path(env) / sub, Path(env)]
    if default is not None:
        roots.append(default)
    return roots


def _idx_task(name: str, default_dir: Path | None, sub: str, description: str, force_permute: bool) -> None:
    def info(cfg: Any) -> TaskInfo:
        get_options(cfg, name, {})  # no options: any data.options key is an error naming it
        return TaskInfo(name, n_classes=10, seq_len=cfg.seq_len or 784, d_input=1, description=description)

    def build(cfg: Any) -> TaskData:
        inf = info(cfg)
        if inf.seq_len != 784:
            _layout(np.zeros((1, 28, 28), np.uint8), inf.seq_len)  # validate the layout before reading
        roots = _roots(cfg, default_dir, sub)
        try:
            files = {split: find_idx_files(roots, split) for split in ("train", "test")}
        except FileNotFoundError as exc:
            hint = f" (without --data-dir, task {name!r} reads {default_dir})" if cfg.data_dir and default_dir else ""
            raise type(exc)(f"{exc}{hint}") from None
        train, test = (load_idx_pair(*files[split]) for split in ("train", "test"))
        data = _image_task_data(inf, cfg, train, test, scale=255.0, permute=force_permute or cfg.permute)
        data.extras["folder"] = str(files["train"][0].parent)
        return data

    register_task(name, info=info, build=build, description=description)


_idx_task("fashion-mnist", FASHION_MNIST_DIR, "fashion-mnist",
          "sequential Fashion-MNIST (Debian dataset-fashion-mnist), 784 or 1024 pixels", False)
_idx_task("mnist", None, "mnist", "sequential MNIST from your IDX files (data_dir); psMNIST with data.permute", False)
_idx_task("psmnist", None, "mnist", "permuted sequential MNIST (bit-reversal permutation) from your IDX files", True)


_DIGITS_OPTIONS = {"test_fraction": 0.2}


def _digits_info(cfg: Any) -> TaskInfo:
    get_options(cfg, "digits", _DIGITS_OPTIONS)
    return TaskInfo("digits", n_classes=10, seq_len=cfg.seq_len or 64, d_input=1,
                    description="scikit-learn 8x8 digits (1,797 images), length 64")


def _digits_build(cfg: Any) -> TaskData:
    info = _digits_info(cfg)
    if info.seq_len != 64:
        raise ValueError(f"data.seq_len for digits must be 64 (8x8 row-major), got {info.seq_len}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ValueError("the digits task needs scikit-learn: pip install 'ptdssm[digits]'") from None
    d = load_digits()
    pixels = d.data.astype(np.uint8)  # (1797, 64), gray levels 0..16
    labels = d.target.astype(np.int64)
    test_fraction = float(get_options(cfg, "digits", _DIGITS_OPTIONS)["test_fraction"])
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"data.options.test_fraction for task 'digits' must be in (0, 1), got {test_fraction}")
    return _image_task_data(info, cfg, (pixels, labels), None, scale=16.0, permute=cfg.permute,
                            test_fraction=test_fraction)


register_task("digits", info=_digits_info, build=_digits_build,
              description="scikit-learn 8x8 digits (1,797 images), length 64")
