"""The objects of a training run: :class:`Run` (what :func:`~ptdssm.experiments.train.setup` builds, fixed for the
run), :class:`TrainState` (what changes, all of it saved in ``last.pt``), and :class:`EpochSampler` (the data order,
a function of the seed and the epoch only, that a mid-epoch resume starts ``k`` batches in).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..config import Config
from .metrics_log import MetricsLog
from .objective import Objective

__all__ = ["EpochSampler", "Run", "TrainState"]


class EpochSampler(DistributedSampler):
    """A ``DistributedSampler`` (order from ``seed`` and the epoch only) that can start ``skip`` indices in."""

    skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


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
    sampler: EpochSampler
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
