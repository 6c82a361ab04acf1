"""AdamW over the SSM-aware parameter groups, and the per-step learning-rate schedule (warmup, then decay)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["WarmupSchedule", "build_optimizer"]


class WarmupSchedule:
    """LR multiplier per step: linear warmup over ``warmup`` steps, then cosine / linear decay or constant."""

    def __init__(self, warmup: int, total: int, kind: str = "cosine", min_ratio: float = 0.0) -> None:
        self.warmup, self.total, self.kind, self.min_ratio = int(warmup), max(1, int(total)), kind, float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if self.kind == "cosine" else 1.0 - progress
        return self.min_ratio + (1.0 - self.min_ratio) * decay


def _name_matches(name: str, patterns: list[str]) -> bool:
    tokens = name.rsplit(".", 1)[-1].split("_")
    return any(p in tokens for p in patterns)


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW over ``ptdssm.optim.param_groups`` (SSM parameters at ``ssm_lr``, no weight decay).

    ``cfg`` is an :class:`ptdssm.config.OptimConfig`; its ``global_lr`` / ``global_lr_wd`` move matching SSM
    parameters to the global learning rate (without / with weight decay).
    """
    from .. import optim as ptd_optim

    groups = ptd_optim.param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay, ssm_lr=cfg.ssm_lr)
    if cfg.global_lr or cfg.global_lr_wd:
        names = {id(p): n for n, p in model.named_parameters()}
        moved: dict[str, list[nn.Parameter]] = {"global_lr": [], "global_lr_wd": []}
        new_groups = []
        for g in groups:
            keep = []
            if "name" in g:
                is_ssm = g["name"] == "ssm"
            else:
                is_ssm = g.get("lr", cfg.lr) == cfg.ssm_lr and g.get("weight_decay", cfg.weight_decay) == 0.0
            for p in g["params"]:
                n = names.get(id(p), "")
                if is_ssm and _name_matches(n, cfg.global_lr_wd):
                    moved["global_lr_wd"].append(p)
                elif is_ssm and _name_matches(n, cfg.global_lr):
                    moved["global_lr"].append(p)
                else:
                    keep.append(p)
            if keep:
                new_groups.append({**g, "params": keep})
        if moved["global_lr"]:
            new_groups.append({"params": moved["global_lr"], "lr": cfg.lr, "weight_decay": 0.0, "name": "ssm_global"})
        if moved["global_lr_wd"]:
            new_groups.append({"params": moved["global_lr_wd"], "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                               "name": "ssm_global_wd"})
        for key in ("global_lr", "global_lr_wd"):
            if getattr(cfg, key) and not moved[key]:
                warnings.warn(f"optim.{key} {getattr(cfg, key)} matched no SSM parameter", stacklevel=2)
        groups = new_groups
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,  # type: ignore[arg-type]
                             weight_decay=cfg.weight_decay)
