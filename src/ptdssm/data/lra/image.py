"""LRA Image: CIFAR-10 in grayscale as sequences of 1,024 pixels (the official ``cifar-10-batches-py/`` release).

Format (``data-formats.md`` section 1.4): ``data_batch_1..5`` and ``test_batch`` are pickled dicts with ``data``
(uint8 ``(10000, 3072)``: the red plane, then green, then blue, each row-major 32x32) and ``labels``. They are
unpickled with a restricted unpickler that only accepts numpy arrays and plain containers.

Grayscale is Pillow's ``convert("L")`` (ITU-R 601-2 luma, as torchvision's ``Grayscale`` used by S4 and
``tf.image.rgb_to_grayscale`` in LRA up to rounding), flattened row-major to ``(1024, 1)`` and normalized with S4's
LRA constants ``(x / 255 - 122.6 / 255) / (61.0 / 255)``. ``tokenize: true`` gives the original LRA's integer
pixels 0..255 (vocabulary 256) instead; ``normalize: false`` gives ``x / 255``.

Splits: the last ``data.val_fraction`` (10%) of a ``torch.randperm(50000)`` seeded with ``data.split_seed`` (42) is
validation, as S4's ``split_train_val`` (45,000 / 5,000); ``test_batch`` is the test set (10,000).
Options: ``tokenize`` (false), ``normalize`` (true), ``cache`` (true).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..base import TaskData, TaskInfo, seeded_split
from ..registry import register_task
from ._cache import cached_arrays
from ._common import apply_subsets, get_options
from ._find import DataNotFoundError, data_root, find_leaf

__all__ = ["CIFAR_GRAY_MEAN", "CIFAR_GRAY_STD", "PixelDataset", "read_cifar_batch", "rgb_to_gray"]

#: S4's LRA-Image normalization constants (on [0, 1] pixels).
CIFAR_GRAY_MEAN = 122.6 / 255.0
CIFAR_GRAY_STD = 61.0 / 255.0

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
_DEFAULTS = {"tokenize": False, "normalize": True, "cache": True}
_HINT = ("CIFAR-10 is not in the LRA release: download cifar-10-python.tar.gz "
         "(https://www.cs.toronto.edu/~kriz/cifar.html) and unpack it under the data folder")


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy array reconstruction and builtin containers: a batch file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"), ("_codecs", "encode"),
                ("copyreg", "_reconstructor"), ("builtins", "object")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data uint8 (N, 3072), labels int64 (N,))`` of one CIFAR-10 python batch file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-10 batch file not found: {path}")
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a {type(d).__name__}, expected a dict)")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path}: CIFAR-10 batch lacks the keys 'data' and 'labels' (has {sorted(d)})")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}")
    return data, labels


def rgb_to_gray(data: np.ndarray) -> np.ndarray:
    """CIFAR rows ``(N, 3072)`` (planar RGB) -> grayscale ``(N, 1024)`` uint8 with Pillow's ``convert("L")``."""
    n = data.shape[0]
    if n == 0:
        return np.zeros((0, 1024), np.uint8)
    rgb = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1).reshape(n * 32, 32, 3)
    gray = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))
    return gray.reshape(n, 1024)


class PixelDataset(Dataset):
    """Grayscale pixel sequences: ``(x, y)`` with ``x`` float32 ``(L, 1)`` (scaled/normalized) or int64 ``(L,)``."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, indices: np.ndarray, *, tokenize: bool = False,
                 mean: float = 0.0, std: float = 1.0) -> None:
        self.pixels, self.labels, self.indices = pixels, np.asarray(labels, dtype=np.int64), indices
        self.tokenize, self.mean, self.std = tokenize, mean, std

    def __len__(self) -> int:
        return int(len(self.indices))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = int(self.indices[i])
        p = torch.from_numpy(np.array(self.pixels[j], copy=True).reshape(-1))
        y = int(self.labels[j])
        if self.tokenize:
            return p.long(), y
        return ((p.float() / 255.0 - self.mean) / self.std).unsqueeze(-1), y


def _info(cfg: Any) -> TaskInfo:
    opts = get_options(cfg, "image", _DEFAULTS)
    seq_len = cfg.seq_len or 1024
    if seq_len != 1024:
        raise ValueError(f"data.seq_len for image must be 1024 (32x32 grayscale), got {seq_len}")
    desc = "LRA Image: grayscale CIFAR-10 (cifar-10-batches-py/), length 1024"
    if opts["tokenize"]:
        return TaskInfo("image", n_classes=10, seq_len=1024, vocab_size=256, description=desc)
    return TaskInfo("image", n_classes=10, seq_len=1024, d_input=1, description=desc)


def _build(cfg: Any) -> TaskData:
    info = _info(cfg)
    opts = get_options(cfg, "image", _DEFAULTS)
    root = data_root(cfg.data_dir, "image")
    folder = find_leaf(root, "cifar-10-batches-py", [*TRAIN_FILES, TEST_FILE], task="image", hint=_HINT)
    files = [folder / f for f in (*TRAIN_FILES, TEST_FILE)]

    def build() -> dict[str, np.ndarray]:
        parts = [read_cifar_batch(p) for p in files]
        xtr = np.concatenate([p[0] for p in parts[:-1]])
        ytr = np.concatenate([p[1] for p in parts[:-1]])
        return {"train_x": rgb_to_gray(xtr), "train_y": ytr, "test_x": rgb_to_gray(parts[-1][0]),
                "test_y": parts[-1][1]}

    arrays = cached_arrays("image", {"gray": "PIL-L"}, build, sources=files, enabled=bool(opts["cache"]))
    tr_idx, va_idx = seeded_split(len(arrays["train_y"]), cfg.val_fraction, cfg.split_seed)
    tr_idx, va_idx, te_idx = apply_subsets(cfg, tr_idx, va_idx, np.arange(len(arrays["test_y"])))
    mean, std = (CIFAR_GRAY_MEAN, CIFAR_GRAY_STD) if opts["normalize"] else (0.0, 1.0)
    kw = {"tokenize": bool(opts["tokenize"]), "mean": mean, "std": std}
    return TaskData(info, PixelDataset(arrays["train_x"], arrays["train_y"], tr_idx, **kw),
                    PixelDataset(arrays["train_x"], arrays["train_y"], va_idx, **kw),
                    PixelDataset(arrays["test_x"], arrays["test_y"], te_idx, **kw),
                    extras={"mean": mean, "std": std, "folder": str(folder)})


register_task("image", info=_info, build=_build, replace=True,
              description="LRA Image: grayscale CIFAR-10, length 1024, LRA normalization")
