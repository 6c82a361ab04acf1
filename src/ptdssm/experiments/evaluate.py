"""Evaluation: loss and metrics (:class:`~ptdssm.experiments.objective.Objective`) of a model on a split, and of a
saved checkpoint.

``load_checkpoint`` rebuilds the model from what the checkpoint stores (its resolved config and the task's
``TaskInfo``), so loading a model never needs the task's reader; ``evaluate_checkpoint`` also builds the split's data
from the stored config. ``transform`` lets callers perturb the inputs (the robustness experiments add noise there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import Config, config_from_dict
from ..data import build_task, collate
from ..models import build_model
from .checkpoint import checkpoint_contents, read_checkpoint
from .distributed import resolve_device
from .noise import InputNoise, NoiseSpec, layer_noise
from .objective import Objective

__all__ = ["ShardSampler", "checkpoint_objective", "checkpoint_task_info", "evaluate_checkpoint", "evaluate_model",
           "evaluate_with_noise", "load_checkpoint", "make_eval_loader", "model_inputs", "prepare_checkpoint"]

InputTransform = Callable[[torch.Tensor], torch.Tensor]


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of ``range(n)``: every example exactly once across ranks, no padding."""

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.rank, self.world = n, rank, world

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def make_eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A loader over this process's shard of ``dataset`` (all of it outside torchrun)."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    return DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), rank, world),  # type: ignore[arg-type]
                      collate_fn=collate, num_workers=num_workers)


def model_inputs(batch: dict[str, Any], device: torch.device,
                 transform: InputTransform | None = None) -> dict[str, torch.Tensor | None]:
    """Keyword arguments of ``SequenceModel.forward`` from a collated batch, on ``device``."""

    def mv(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(device, non_blocking=True)

    x = mv(batch["x"])
    if transform is not None:
        x = transform(x)
    kwargs: dict[str, torch.Tensor | None] = {"x": x, "lengths": mv(batch.get("lengths"))}
    if "x2" in batch:
        x2 = mv(batch["x2"])
        kwargs["x2"] = transform(x2) if transform is not None else x2
        kwargs["lengths2"] = mv(batch.get("lengths2"))
    return kwargs


@torch.no_grad()
def evaluate_model(model: nn.Module, loader: Iterable[dict[str, Any]], device: torch.device, *,
                   precision: str = "fp32", transform: InputTransform | None = None,
                   objective: Objective | None = None) -> dict[str, Any]:
    """Loss and metrics of ``model`` over ``loader`` (summed over ranks under torchrun).

    Args:
        objective: the task's :class:`Objective` (default: pooled classification, cross-entropy).

    Returns:
        Classification ``{"loss", "acc", "n"}``; regression ``{"loss", "mse", "mae", "n"}`` (means over scored
        positions, see :mod:`ptdssm.experiments.objective`).
    """
    objective = objective if objective is not None else Objective()
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    for batch in loader:
        inputs = model_inputs(batch, device, transform)
        y = batch["y"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(**inputs)
        sums += objective.stats(out, y).to(device)
    if dist.is_initialized():
        dist.all_reduce(sums)
    model.train(was_training)
    return objective.summarize(sums)


def checkpoint_task_info(ckpt: dict[str, Any], cfg: Config) -> Any:
    """The checkpoint's stored ``TaskInfo``; for checkpoints without one, the task registry's (needs the task)."""
    from dataclasses import fields

    from ..data import TaskInfo, task_info

    stored = ckpt.get("task_info")
    if isinstance(stored, dict):
        known = {f.name for f in fields(TaskInfo)}
        return TaskInfo(**{k: v for k, v in stored.items() if k in known})
    return task_info(cfg.data)


def checkpoint_objective(ckpt: dict[str, Any], cfg: Config) -> Objective:
    """The :class:`Objective` of a checkpoint's task."""
    return Objective(checkpoint_task_info(ckpt, cfg))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config, dict]:
    """Rebuild the model of a checkpoint (``last.pt`` or ``best.pt``) with its weights.

    The architecture comes from the stored config and ``TaskInfo`` (input size, classes, head, loss), so the task's
    data is never read.

    Returns:
        ``(model in eval mode, resolved config, checkpoint dict)``; :func:`checkpoint_objective` gives the task's
        :class:`Objective`.

    Raises:
        CheckpointError: missing, truncated or foreign file, unknown schema version, or weights that do not fit.
    """
    device = resolve_device(device)
    ckpt = read_checkpoint(path, device)
    with checkpoint_contents(path, "its config and weights"):
        cfg = config_from_dict(ckpt["config"])
        model = build_model(cfg.model, checkpoint_task_info(ckpt, cfg))
        model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, cfg, ckpt


def prepare_checkpoint(path: str | Path, *, split: str = "test", data_dir: str | None = None,
                       batch_size: int | None = None, device: str = "auto",
                       subset: int | None = None) -> tuple[nn.Module, Config, dict, DataLoader, torch.device]:
    """Load a checkpoint's model and a loader over one split of its task (a seeded ``subset`` of it if given).

    Returns:
        ``(model in eval mode, resolved config, checkpoint dict, loader, device)``.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; expected train, val or test")
    dev = resolve_device(device)
    model, cfg, ckpt = load_checkpoint(path, dev)
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    if subset is not None:
        setattr(cfg.data, f"{split}_subset", subset)
    data = build_task(cfg.data)
    bs = batch_size or cfg.data.eval_batch_size or cfg.data.batch_size
    return model, cfg, ckpt, make_eval_loader(getattr(data, split), bs, cfg.data.num_workers), dev


def evaluate_with_noise(model: nn.Module, loader: Iterable[dict[str, Any]], device: torch.device,
                        noise: NoiseSpec | None, *, precision: str = "fp32",
                        transform: InputTransform | None = None, objective: Objective | None = None) -> dict[str, Any]:
    """:func:`evaluate_model` under ``noise``: layer-level noise through hooks at every LTI layer's input (removed
    afterwards), input-level noise added to ``x``; ``None`` evaluates clean."""
    if noise is not None and noise.kind == "layer":
        with layer_noise(model, noise):
            return evaluate_model(model, loader, device, precision=precision, transform=transform,
                                  objective=objective)
    if noise is not None:
        if transform is not None:
            raise ValueError("give either transform or input-level noise, not both")
        transform = InputNoise(noise)
    return evaluate_model(model, loader, device, precision=precision, transform=transform, objective=objective)


def evaluate_checkpoint(path: str | Path, *, split: str = "test", data_dir: str | None = None,
                        batch_size: int | None = None, device: str = "auto",
                        transform: InputTransform | None = None, noise: NoiseSpec | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on a split of its task.

    Args:
        path: checkpoint file.
        split: ``"test"``, ``"val"`` or ``"train"``.
        data_dir: overrides the data folder stored in the checkpoint's config.
        batch_size: evaluation batch size (default: the config's).
        device: ``auto``, ``cpu`` or ``cuda[:k]``.
        transform: optional function applied to each input batch ``x`` before the model.
        noise: optional noise setting (:class:`ptdssm.experiments.noise.NoiseSpec`): layer-level noise is applied
            with hooks at every LTI layer's input, input-level noise to ``x``. The model is left unchanged.

    Returns:
        ``{"checkpoint", "task", "model", "split", "epoch", "loss", "n"}`` plus ``"acc"`` (classification) or
        ``"mse", "mae"`` (regression), and ``"noise"`` if given.
    """
    model, cfg, ckpt, loader, dev = prepare_checkpoint(path, split=split, data_dir=data_dir,
                                                       batch_size=batch_size, device=device)
    metrics = evaluate_with_noise(model, loader, dev, noise, precision=cfg.train.precision, transform=transform,
                                  objective=checkpoint_objective(ckpt, cfg))
    out = {"checkpoint": str(path), "task": cfg.data.task, "model": cfg.model.name, "split": split,
           "epoch": int(ckpt.get("epoch", 0)), **metrics}
    if noise is not None:
        out["noise"] = {"kind": noise.kind, "amplitude": noise.amplitude, "frequency": noise.frequency,
                        "modes": list(noise.modes), "seed": noise.seed}
    return out
