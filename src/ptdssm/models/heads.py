"""Output heads: a linear classifier and the retrieval head for two-document tasks."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassificationHead", "RetrievalHead"]


class ClassificationHead(nn.Module):
    """``Linear(d_model, n_classes)`` on pooled features ``(B, H) -> (B, n_classes)``."""

    def __init__(self, d_model: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_model, n_classes)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``u``: ``(B, H)`` -> logits ``(B, n_classes)``."""
        return self.linear(u)


class RetrievalHead(nn.Module):
    """Classify a pair of pooled documents from ``[u, v, u - v, u * v]`` (the NLI-style head of LRA Retrieval).

    ``(B, H), (B, H) -> (B, n_classes)`` through ``Linear(4H, d_hidden) -> GELU -> Linear(d_hidden, n_classes)``.
    """

    def __init__(self, d_model: int, n_classes: int, d_hidden: int | None = None) -> None:
        super().__init__()
        d_hidden = d_hidden or d_model
        self.mlp = nn.Sequential(nn.Linear(4 * d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, n_classes))

    @staticmethod
    def features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[u, v, u - v, u * v]`` concatenated on the last axis: ``(B, 4H)``."""
        return torch.cat([u, v, u - v, u * v], dim=-1)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``u``, ``v``: pooled documents ``(B, H)`` -> logits ``(B, n_classes)``."""
        if u.shape != v.shape:
            raise ValueError(f"retrieval head needs two documents of the same shape, got {tuple(u.shape)} and "
                             f"{tuple(v.shape)}")
        return self.mlp(self.features(u, v))
