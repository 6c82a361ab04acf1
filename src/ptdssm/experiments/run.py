"""The objects of a training run: :class:`Run` (what :func:`~ptdssm.experiments.train.setup` builds, fixed for the
run), :class:`TrainState` (what changes, all of it saved in ``last.pt``), and :class:`EpochBatchSampler` (the data
order, a function of the seed and the epoch only, that a mid-epoch resume starts ``k`` batches in).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..config import Config
from .metrics_log import MetricsLog
from .objective import Objective

__all__ = ["EpochBatchSampler", "Run", "TrainState"]


class EpochBatchSampler(Sampler[list[int]]):
    """This process's part of each global batch of an epoch; the order is a function of ``seed`` and the epoch only,
    and a mid-epoch resume starts ``skip`` batches in.

    Epoch ``e`` shuffles ``range(n)`` with ``torch.randperm(n, generator=manual_seed(seed + e))`` (as
    ``DistributedSampler`` does), keeps the first ``n - n % world`` indices, and cuts them into global batches of
    ``batch_size`` (``data.batch_size``); the last one may be smaller (under torchrun, one smaller than ``world`` is
    dropped). Process ``rank`` takes positions ``rank, rank + world, ...`` of each global batch: ``batch_size //
    world`` examples, one more on the first ``batch_size % world`` processes. With one process this is plain
    shuffled batching; when ``world`` divides ``batch_size`` it equals ``DistributedSampler`` with per-process
    batches of ``batch_size // world``. :meth:`weight` is the factor on this process's mean loss that makes every
    sequence of the global batch count equally after DDP averages the gradients over processes.
    """

    def __init__(self, n: int, batch_size: int, *, world: int = 1, rank: int = 0, seed: int = 0) -> None:
        if batch_size < world:
            raise ValueError(f"batch_size ({batch_size}) must be at least the number of processes ({world})")
        self.n, self.batch_size, self.world, self.rank, self.seed = int(n), int(batch_size), world, rank, seed
        self.epoch = self.skip = 0
        total = self.n - self.n % world
        self.sizes = [min(batch_size, total - start) for start in range(0, total, batch_size)]
        if world > 1 and self.sizes and self.sizes[-1] < world:
            self.sizes.pop()

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Order of epoch ``epoch``, starting after ``skip`` global batches."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        for i in range(self.skip, len(self.sizes)):
            start = i * self.batch_size
            yield perm[start + self.rank : start + self.sizes[i] : self.world]

    def __len__(self) -> int:
        return max(0, len(self.sizes) - self.skip)

    def weight(self, step: int) -> float:
        """``world * b / size`` for global batch ``step`` of the epoch (``b``: this process's share of its ``size``
        examples); 1.0 whenever the processes' shares are equal."""
        size = self.sizes[step]
        share = len(range(self.rank, size, self.world))
        return 1.0 if share * self.world == size else self.world * share / size


@dataclass
class Run:
    """Everything :func:`setup` builds; fixed for the whole run."""

    cfg: Config
    out: Path
    rank: int
    world: int
    device: torch.device
    info: Any
    objective: Objective
    model: nn.Module  # unwrapped
    net: nn.Module  # what the loop calls: DDP(model) under torchrun, else model
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: EpochBatchSampler
    loader: DataLoader
    loader_gen: torch.Generator
    steps_per_epoch: int
    val_loader: DataLoader
    test_loader: DataLoader
    log: MetricsLog
    sizes: tuple[int, int, int]

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def last_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "checkpoints" / "best.pt"


@dataclass
class TrainState:
    """What changes during the run (all of it, except ``best_state``, is in ``last.pt``)."""

    epoch: int = 0  # completed epochs
    step_in_epoch: int = 0  # optimizer steps done in the current (unfinished) epoch
    global_step: int = 0
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(4, dtype=torch.float64))  # this rank's stats
    examples: int = 0  # sequences this rank trained on in the current epoch (sums[3] counts scored positions)
    epoch_time: float = 0.0
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": -1, "score": None, "val": None})
    last_record: dict[str, Any] | None = None
    saved: tuple[int, int] | None = None  # (epoch, step_in_epoch) of the last checkpoint written
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)
