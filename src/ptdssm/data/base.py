"""The dataset interface every task implements, and the registry of tasks by name.

A task is two functions registered under a name:

* ``info(cfg) -> TaskInfo``: static metadata (classes, sequence length, vocabulary size or input width, whether
  examples are document pairs). It must not read data: models are built from it alone (so configs can be checked
  without the data on disk).
* ``build(cfg) -> TaskData``: the train / val / test datasets, read from ``cfg.data_dir`` (or the task's default
  folder).

``cfg`` is the run's :class:`ptdssm.config.DataConfig` (``seq_len``, ``data_dir``, ``val_fraction``,
``split_seed``, ``*_subset``, and free-form ``options`` for the task).

**Examples** yielded by the datasets are tuples:

* ``(x, y)``: ``x`` is a ``(L, d_input)`` float tensor (continuous inputs) or a ``(L,)`` int64 tensor of token ids
  (0 = padding); ``y`` an int class index. ``L`` may vary between examples: :func:`collate` right-pads.
* ``(x, y, length)``: ``x`` is already padded, ``length`` is the number of real positions.
* pair tasks (``is_pair``): ``((x1, x2), y)`` or ``((x1, x2), y, (length1, length2))``.

:func:`collate` turns a list of examples into a batch dict ``{"x", "y", "lengths"}`` (plus ``"x2"`` and
``"lengths2"`` for pairs); ``lengths`` is ``None`` when every example is full length.

**Adding a task** (e.g. an LRA reader)::

    from ptdssm.data import TaskData, TaskInfo, register_task

    def listops_info(cfg):
        return TaskInfo("listops", n_classes=10, seq_len=cfg.seq_len or 2048, vocab_size=18)

    def listops_build(cfg):
        ...  # read the TSVs under cfg.data_dir
        return TaskData(listops_info(cfg), train, val, test)

    register_task("listops", info=listops_info, build=listops_build, replace=True)

and add the module to :data:`ptdssm.data.registry.TASK_MODULES` so it registers on first lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ArrayDataset", "TaskData", "TaskInfo", "collate", "seeded_split", "seeded_subset"]


class _DataConfigLike(Protocol):  # the fields of ptdssm.config.DataConfig the readers use
    task: str
    data_dir: str | None
    seq_len: int | None
    val_fraction: float
    split_seed: int
    options: dict[str, Any]


@dataclass(frozen=True)
class TaskInfo:
    """Static metadata of a task (enough to build a model).

    Attributes:
        name: registry name.
        n_classes: number of output classes.
        seq_len: (maximum) sequence length ``L``.
        vocab_size: size of the token vocabulary for token inputs (``x`` int64 ids), else ``None``.
        d_input: channels of continuous inputs (``x`` float ``(L, d_input)``), else ``None``.
        is_pair: two documents per example (retrieval).
        description: one line for listings.
        target_len: ``None`` (one class per example, from pooled features), or ``K`` for sequence-output tasks:
            ``y`` is an int64 ``(K,)`` tensor, one class per each of the last ``K`` positions (no pooling).
    """

    name: str
    n_classes: int
    seq_len: int
    vocab_size: int | None = None
    d_input: int | None = None
    is_pair: bool = False
    description: str = ""
    target_len: int | None = None

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.d_input is None):
            raise ValueError(f"task {self.name!r}: give exactly one of vocab_size and d_input")


@dataclass
class TaskData:
    """A task's datasets plus metadata.

    Attributes:
        info: :class:`TaskInfo`.
        train, val, test: map-style datasets yielding examples as described in the module docstring.
        extras: anything else a reader wants to expose (class names, vocabulary, normalization constants).
    """

    info: TaskInfo
    train: Dataset
    val: Dataset
    test: Dataset
    extras: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}  # type: ignore[arg-type]


class ArrayDataset(Dataset):
    """Examples from in-memory tensors: ``x`` ``(N, L, d)`` float or ``(N, L)`` int64, ``y`` ``(N,)`` int64."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        self.x, self.y, self.lengths = x, y.long(), lengths

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple:
        if self.lengths is None:
            return self.x[i], self.y[i]
        return self.x[i], self.y[i], self.lengths[i]


def _pad(xs: Sequence[torch.Tensor], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Right-pad ``(L_i, ...)`` tensors to ``(B, max L, ...)``; lengths tensor or ``None`` if all full."""
    L = max(x.shape[0] for x in xs)
    if all(x.shape[0] == L for x in xs):
        out = torch.stack(list(xs))
    else:
        out = xs[0].new_zeros((len(xs), L, *xs[0].shape[1:]))
        for i, x in enumerate(xs):
            out[i, : x.shape[0]] = x
    lens = torch.as_tensor(lengths, dtype=torch.long)
    return out, (None if bool((lens == out.shape[1]).all()) else lens)


def collate(batch: Sequence[tuple]) -> dict[str, torch.Tensor | None]:
    """Stack examples into ``{"x": (B, L[, d]), "y": (B,), "lengths": (B,) or None}`` (+ ``x2``/``lengths2``)."""
    if not batch:
        raise ValueError("empty batch")
    pair = isinstance(batch[0][0], (tuple, list))
    if isinstance(batch[0][1], torch.Tensor) and batch[0][1].dim() > 0:  # sequence targets (TaskInfo.target_len)
        ys = torch.stack([b[1].long() for b in batch])
    else:
        ys = torch.as_tensor([int(b[1]) for b in batch], dtype=torch.long)
    has_len = len(batch[0]) > 2

    def one(idx: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        xs = [torch.as_tensor(b[0] if idx is None else b[0][idx]) for b in batch]
        if has_len:
            lens = [int(b[2] if idx is None else b[2][idx]) for b in batch]
        else:
            lens = [x.shape[0] for x in xs]
        return _pad(xs, lens)

    if not pair:
        x, lengths = one(None)
        return {"x": x, "y": ys, "lengths": lengths}
    x1, l1 = one(0)
    x2, l2 = one(1)
    return {"x": x1, "y": ys, "lengths": l1, "x2": x2, "lengths2": l2}


def seeded_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (keep, held-out) index arrays with ``round(fraction * n)`` held out, seeded.

    Uses ``torch.Generator().manual_seed(seed)`` + ``randperm`` like S4's ``split_train_val``: the held-out part is
    the last ``round(fraction * n)`` entries of the permutation; both parts are returned sorted.
    """
    n_out = int(round(fraction * n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(perm[: n - n_out]), np.sort(perm[n - n_out :])


def seeded_subset(indices: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``indices`` of at most ``size`` entries (sorted), or all of them."""
    if size is None or size >= len(indices):
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=size, replace=False))


TaskBuilder = Callable[[Any], TaskData]
TaskInfoFn = Callable[[Any], TaskInfo]
