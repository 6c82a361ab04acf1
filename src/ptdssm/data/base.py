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
  (0 = padding); ``y`` the target (see the table below). ``L`` may vary between examples: :func:`collate`
  right-pads.
* ``(x, y, length)``: ``x`` is already padded, ``length`` is the number of real positions.
* pair tasks (``is_pair``): ``((x1, x2), y)`` or ``((x1, x2), y, (length1, length2))``.

:func:`collate` turns a list of examples into a batch dict ``{"x", "y", "lengths"}`` (plus ``"x2"`` and
``"lengths2"`` for pairs); ``lengths`` is ``None`` when every example is full length.

**Targets** depend on :attr:`TaskInfo.head` and :attr:`TaskInfo.loss` (``C`` = ``n_classes``, ``K`` =
``target_len``):

============  ======  ==============================  ==================================  ==============
head          loss    example ``y``                   batch ``y`` (collate)               model output
============  ======  ==============================  ==================================  ==============
pooled        ce      int                             int64 ``(B,)``                      ``(B, C)``
pooled        mse     float tensor ``(C,)``           float32 ``(B, C)``                  ``(B, C)``
last-k        ce      int64 ``(K,)``                  int64 ``(B, K)``                    ``(B, K, C)``
token / lm    ce      int64 ``(L,)``, -100 unscored   int64 ``(B, L)`` padded with -100   ``(B, L, C)``
token         mse     float ``(L, C)``, NaN unscored  float32 ``(B, L, C)`` padded NaN    ``(B, L, C)``
forecast      mse     float ``(K, C)``                float32 ``(B, K, C)``               ``(B, K, C)``
============  ======  ==============================  ==================================  ==============

A ``forecast`` task (:mod:`ptdssm.data.forecasting`) yields ``x`` float ``(L, d_input)``, the lookback window
(``L`` = ``seq_len``), and ``y`` its next ``K`` = ``target_len`` steps (the horizon) of the ``C`` target channels.

:data:`IGNORE_INDEX` (-100) is the class target of positions that are not scored (``torch.nn.CrossEntropyLoss``'s
default ``ignore_index``). For ``lm`` tasks the dataset yields ``y`` = ``x`` shifted left by one (last position
-100).

**Adding a task** (e.g. an LRA reader)::

    from ptdssm.data import TaskData, TaskInfo, register_task

    def listops_info(cfg):
        return TaskInfo("listops", n_classes=10, seq_len=cfg.seq_len or 2048, vocab_size=18)

    def listops_build(cfg):
        ...  # read the TSVs under cfg.data_dir
        return TaskData(listops_info(cfg), train, val, test)

    register_task("listops", info=listops_info, build=listops_build, replace=True)

A library reader adds its module to :data:`ptdssm.data.registry.TASK_MODULES` so it registers on first lookup.
A user's task needs no library edit: ``ptdssm train --task my_module:my_task`` imports ``my_module``, or a package
declares a ``ptdssm.tasks`` entry point (see :mod:`ptdssm.data.registry`). Labelled series in ``.ts``, ``.npz`` /
``.npy`` or CSV files need no code at all: tasks ``ucr``, ``arrays``, ``csv`` (:mod:`ptdssm.data.files.tasks`);
forecasting series (a lookback window in, a horizon out) are the ``forecast-*`` tasks of
:mod:`ptdssm.data.forecasting`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["BYTE_VOCAB_SIZE", "HEADS", "IGNORE_INDEX", "LOSSES", "TOKENIZERS", "ArrayDataset", "TaskData", "TaskInfo",
           "collate", "collate_targets", "decode_bytes", "decode_utf8", "encode_bytes", "read_utf8", "seeded_split",
           "seeded_subset"]

#: Class target of unscored positions (``torch.nn.functional.cross_entropy``'s default ``ignore_index``).
IGNORE_INDEX = -100
#: Output heads a task can ask for (:attr:`TaskInfo.head`).
HEADS = ("pooled", "last-k", "token", "lm", "forecast")
#: Losses a task can ask for (:attr:`TaskInfo.loss`).
LOSSES = ("cross-entropy", "mse")
#: Tokenizers of the library's text tasks (:attr:`TaskInfo.tokenizer`): ``"bytes"``, token id = byte value + 1.
TOKENIZERS = ("bytes",)
#: Vocabulary of the ``"bytes"`` tokenizer: 0 = padding, 1 .. 256 = bytes 0 .. 255.
BYTE_VOCAB_SIZE = 257


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
        target_len: ``K`` for ``head="last-k"`` (one class per each of the last ``K`` real positions) and for
            ``head="forecast"`` (the horizon), else ``None``. Required iff the head is one of those two.
        head: ``"pooled"`` (one output per example from pooled features), ``"last-k"`` (outputs at the last
            ``target_len`` real positions), ``"token"`` (one output per position), ``"lm"`` (next-token prediction:
            logits over ``vocab_size``, head tied to the embedding; needs ``vocab_size``), ``"forecast"`` (the
            next ``target_len`` steps after a lookback window of ``seq_len``; needs ``d_input`` and loss ``mse``).
        loss: ``"cross-entropy"`` or ``"mse"`` (regression; ``n_classes`` is then the number of regression
            outputs; only with the ``pooled``, ``token`` or ``forecast`` head).
        tokenizer: how text maps to token ids, for tasks read from text (``None``: not text, or the task's own
            vocabulary). ``"bytes"`` (the library's one, :data:`TOKENIZERS`): byte-level, token id = byte value + 1
            (0 is padding), ``vocab_size`` 257 (:data:`BYTE_VOCAB_SIZE`); decode with :func:`decode_bytes`. A
            plug-in task may name its own; only ``"bytes"`` is checked (its ``vocab_size``).

    The dataclass is rebuilt from ``dataclasses.asdict`` output (checkpoints store it): ``TaskInfo(**asdict(info))``.
    """

    name: str
    n_classes: int
    seq_len: int
    vocab_size: int | None = None
    d_input: int | None = None
    is_pair: bool = False
    description: str = ""
    target_len: int | None = None
    head: str = "pooled"
    loss: str = "cross-entropy"
    tokenizer: str | None = None  # a later field: a checkpoint's stored task_info without it loads as None

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        if (self.vocab_size is None) == (self.d_input is None):
            raise ValueError(f"{where}: give exactly one of vocab_size and d_input")
        if self.head not in HEADS:
            raise ValueError(f"{where}: head {self.head!r} is not one of {', '.join(HEADS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"{where}: loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        if (self.target_len is not None) != (self.head in ("last-k", "forecast")):
            raise ValueError(f"{where}: target_len is required with heads 'last-k' and 'forecast' and only then "
                             f"(head {self.head!r}, target_len {self.target_len!r})")
        if self.target_len is not None and int(self.target_len) < 1:
            raise ValueError(f"{where}: target_len must be >= 1, got {self.target_len}")
        if self.head == "lm" and self.vocab_size is None:
            raise ValueError(f"{where}: head 'lm' needs token inputs (vocab_size)")
        if self.loss == "mse" and self.head not in ("pooled", "token", "forecast"):
            raise ValueError(f"{where}: loss 'mse' needs head 'pooled', 'token' or 'forecast', got {self.head!r}")
        if self.head == "forecast" and (self.loss != "mse" or self.d_input is None):
            raise ValueError(f"{where}: head 'forecast' needs continuous inputs (d_input) and loss 'mse'")
        if int(self.n_classes) < 1:
            raise ValueError(f"{where}: n_classes must be >= 1, got {self.n_classes}")
        if self.tokenizer is not None and (not isinstance(self.tokenizer, str) or not self.tokenizer):
            raise ValueError(f"{where}: tokenizer must be a non-empty string or None, got {self.tokenizer!r}")
        if self.tokenizer == "bytes" and self.vocab_size != BYTE_VOCAB_SIZE:
            raise ValueError(f"{where}: tokenizer 'bytes' needs vocab_size {BYTE_VOCAB_SIZE} (256 bytes + padding), "
                             f"got {self.vocab_size}")


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
    """Examples from in-memory tensors: ``x`` ``(N, L, d)`` float or ``(N, L)`` int64; ``y`` ``(N, ...)``.

    Integer ``y`` is stored as int64 (class targets), floating ``y`` as float32 (regression targets).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        self.x, self.lengths = x, lengths
        self.y = y.float() if y.is_floating_point() else y.long()

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple:
        if self.lengths is None:
            return self.x[i], self.y[i]
        return self.x[i], self.y[i], self.lengths[i]


def _pad_to(xs: Sequence[torch.Tensor], fill: float | int = 0) -> torch.Tensor:
    """Right-pad ``(L_i, ...)`` tensors along dim 0 to ``(B, max L, ...)`` with ``fill``."""
    L = max(x.shape[0] for x in xs)
    if all(x.shape[0] == L for x in xs):
        return torch.stack(list(xs))
    out = xs[0].new_full((len(xs), L, *xs[0].shape[1:]), fill)
    for i, x in enumerate(xs):
        out[i, : x.shape[0]] = x
    return out


def _pad(xs: Sequence[torch.Tensor], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Right-pad ``(L_i, ...)`` tensors to ``(B, max L, ...)`` with zeros; lengths tensor or ``None`` if all full."""
    out = _pad_to(xs, 0)
    lens = torch.as_tensor(lengths, dtype=torch.long)
    return out, (None if bool((lens == out.shape[1]).all()) else lens)


def collate_targets(ys: Sequence[Any]) -> torch.Tensor:
    """Batch the targets of a list of examples (the table of the module docstring).

    * python int / 0-d integer tensor -> int64 ``(B,)``; python float / 0-d float tensor -> float32 ``(B, 1)``;
    * 1-d integer ``(K,)`` or ``(L_i,)`` -> int64 ``(B, max L)`` right-padded with :data:`IGNORE_INDEX`;
    * 1-d float ``(C,)`` -> float32 ``(B, C)`` (pooled regression);
    * 2-d float ``(L_i, C)`` -> float32 ``(B, max L, C)`` right-padded with NaN (per-position regression).
    """
    y0 = ys[0]
    if not isinstance(y0, torch.Tensor) or y0.dim() == 0:
        if isinstance(y0, float) or (isinstance(y0, torch.Tensor) and y0.is_floating_point()):
            return torch.as_tensor([float(y) for y in ys], dtype=torch.float32).unsqueeze(1)
        return torch.as_tensor([int(y) for y in ys], dtype=torch.long)
    if y0.is_floating_point():
        ts = [torch.as_tensor(y).float() for y in ys]
        return torch.stack(ts) if y0.dim() == 1 else _pad_to(ts, float("nan"))
    return _pad_to([torch.as_tensor(y).long() for y in ys], IGNORE_INDEX)


def collate(batch: Sequence[tuple]) -> dict[str, torch.Tensor | None]:
    """Stack examples into ``{"x": (B, L[, d]), "y", "lengths": (B,) or None}`` (+ ``x2``/``lengths2``).

    ``x`` is right-padded with zeros; ``y`` follows :func:`collate_targets` (the table of the module docstring).
    """
    if not batch:
        raise ValueError("empty batch")
    pair = isinstance(batch[0][0], (tuple, list))
    ys = collate_targets([b[1] for b in batch])
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


def encode_bytes(text: str | bytes) -> torch.Tensor:
    """Token ids of the ``"bytes"`` tokenizer: int64 ``(len,)``, UTF-8 byte value + 1."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).astype(np.int64) + 1)


def decode_bytes(ids: Sequence[int] | torch.Tensor | np.ndarray) -> str:
    """Text of ``"bytes"`` token ids: padding (0) and out-of-range ids dropped, invalid UTF-8 replaced."""
    arr = np.asarray(ids.detach().cpu() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64).reshape(-1)
    arr = arr[(arr >= 1) & (arr <= 256)] - 1
    return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


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



def get_options(cfg: Any, task: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """``cfg.options`` (``data.options``) merged over ``defaults``; an unknown option is a
    :class:`~ptdssm.errors.DataError` naming it and the valid ones. Every reader checks its options here."""
    from ..errors import DataError

    given = dict(getattr(cfg, "options", None) or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = f"valid options: {', '.join(sorted(defaults))}" if defaults else "it takes no options"
        raise DataError(f"unknown option(s) data.options.{', data.options.'.join(unknown)} for task {task!r}; "
                        f"{valid}")
    return {**defaults, **given}

def decode_utf8(raw: bytes, path: str | os.PathLike[str]) -> str:
    """UTF-8 text of a file's bytes; a one-line :class:`~ptdssm.errors.DataError` naming the file, the line and the
    first bad byte otherwise. Every reader of text files decodes here."""
    from ..errors import DataError

    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}, offset "
                        f"{exc.start}); a damaged file, or another encoding (convert it, e.g. iconv -f latin1 -t "
                        f"utf-8)") from None


def read_utf8(path: str | os.PathLike[str]) -> str:
    """The text of the file ``path``, read with :func:`decode_utf8`."""
    return decode_utf8(Path(path).read_bytes(), path)


TaskBuilder = Callable[[Any], TaskData]
TaskInfoFn = Callable[[Any], TaskInfo]
