"""Optimizer parameter groups honouring the SSM layers' hints.

SSM parameters (``Lambda``/``A``, ``B``, ``P``, ``dt``) carry ``param._optim = {"lr": lr_or_None,
"weight_decay": 0.0}`` (set by :class:`~ptdssm.layers.lti.LTISSM`). :func:`param_groups` sorts every trainable
parameter into groups for :class:`torch.optim.AdamW`:

- hinted parameters: their own ``lr`` (or ``ssm_lr`` when the hint's ``lr`` is ``None``, or ``lr`` when that is
  ``None`` too) and their own ``weight_decay`` (0);
- biases, normalization weights and other parameters with at most one dimension (e.g. ``D``): ``lr``, no decay;
- everything else: ``lr`` and ``weight_decay``.

Frozen tensors (buffers or ``requires_grad=False``) are left out, so the optimizer never touches them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["param_groups", "NORM_TYPES"]

NORM_TYPES: tuple[type[nn.Module], ...] = tuple(
    t for t in (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, getattr(nn, "RMSNorm", None),
                nn.modules.batchnorm._NormBase)
    if t is not None
)


def param_groups(model: nn.Module, lr: float, weight_decay: float = 0.0,
                 ssm_lr: float | None = None) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.AdamW(param_groups(model, ...))``.

    Args:
        model: any module (parameters shared between submodules are counted once).
        lr: learning rate of ordinary parameters.
        weight_decay: weight decay of ordinary matrices (not biases, norms or SSM parameters).
        ssm_lr: learning rate of hinted SSM parameters whose hint does not fix one (default ``lr``).

    Returns:
        A list of dicts with ``params``, ``lr``, ``weight_decay`` and ``name`` (``"decay"``, ``"no_decay"`` or
        ``"ssm"``); empty groups are omitted.
    """
    if lr is None or lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    no_decay_ids = {id(p) for mod in model.modules() if isinstance(mod, NORM_TYPES)
                    for p in mod.parameters(recurse=False)}
    groups: dict[tuple[str, float, float], dict[str, Any]] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        hint = getattr(p, "_optim", None)
        if hint is not None:
            g_lr = hint.get("lr")
            if g_lr is None:
                g_lr = ssm_lr if ssm_lr is not None else lr
            key = ("ssm", float(g_lr), float(hint.get("weight_decay", 0.0)))
        elif p.dim() <= 1 or name.endswith("bias") or id(p) in no_decay_ids:
            key = ("no_decay", float(lr), 0.0)
        else:
            key = ("decay", float(lr), float(weight_decay))
        g = groups.setdefault(key, {"params": [], "lr": key[1], "weight_decay": key[2], "name": key[0]})
        g["params"].append(p)
    return list(groups.values())
