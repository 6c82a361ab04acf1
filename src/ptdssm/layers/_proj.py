"""A layer's own ``nn.Linear`` applied in the input's dtype (shared by the mixers that call their projections
through ``F.linear`` themselves, e.g. :class:`~ptdssm.layers.h3.H3`, :class:`~ptdssm.layers.hyena.Hyena`,
:class:`~ptdssm.layers.mamba.Mamba`; the parameters may be stored in another dtype)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["linear"]


def linear(x: torch.Tensor, mod: nn.Linear) -> torch.Tensor:
    """``x W^T + b`` with ``mod``'s weight and bias cast to ``x``'s dtype: ``(..., in) -> (..., out)``."""
    b = None if mod.bias is None else mod.bias.to(x.dtype)
    return F.linear(x, mod.weight.to(x.dtype), b)
