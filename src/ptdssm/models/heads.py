r"""Output heads, picked from the task's :attr:`~ptdssm.data.TaskInfo.head` (``C`` = outputs, ``H`` = width).

| head | module | input | output |
|---|---|---|---|
| ``pooled`` | :class:`ClassificationHead` | pooled features ``(B, H)`` (:func:`pool_sequence`) | ``(B, C)`` |
| ``pooled``, pair task | :class:`RetrievalHead` | two pooled documents ``(B, H)``, ``(B, H)`` | ``(B, C)`` |
| ``last-k`` | :class:`LastKHead` | features ``(B, L, H)``, ``lengths`` | ``(B, K, C)`` |
| ``token`` | :class:`TokenHead` | features ``(B, L, H)`` | ``(B, L, C)`` |
| ``lm`` | :class:`LMHead` | features ``(B, L, H)`` | ``(B, L, V)`` |
| ``forecast`` | :class:`LastKHead`, ``k`` = horizon | ``(B, L + K, H)`` of :func:`append_future` | ``(B, K, C)`` |

**Forecasting** (``head="forecast"``, lookback ``L``, horizon ``K``): the model reads the lookback window followed by
``K`` "future" steps whose values are zero and whose extra indicator channel is 1 (:func:`append_future`), and the
head is the last-``K`` linear map: ``y_hat[b, j] = W h[b, L + j] + c``. Any causal or bidirectional sequence family
forecasts this way; the future steps carry no target values, so nothing leaks.

The same linear map serves classification (logits, cross-entropy) and regression (values, MSE): the loss is the
training objective's business, not the head's. :class:`LMHead` has no weight of its own: its logits are
``h E^T`` with ``E (V, H)`` the input embedding (weight tying), so ``logits[b, t, v] = <h[b, t], E[v]>`` for
``v >= 1``; the padding id 0 is never a target, so its logit is ``-inf`` (probability 0) and the embedding's
padding row gets no gradient through the head either.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassificationHead", "LMHead", "LastKHead", "RetrievalHead", "TokenHead", "append_future",
           "gather_last_k", "pool_sequence"]


def pool_sequence(h: torch.Tensor, lengths: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Pool ``(B, L, H)`` to ``(B, H)``: mean over the real positions, or the last real position.

    Args:
        h: features ``(B, L, H)``.
        lengths: ``(B,)`` number of real (unpadded) positions, or ``None`` for all ``L``.
        mode: ``"mean"`` (``sum_{t < len_b} h[b, t] / len_b``) or ``"last"`` (``h[b, len_b - 1]``).
    """
    B, L, _ = h.shape
    if mode == "mean":
        if lengths is None:
            return h.mean(dim=1)
        mask = (torch.arange(L, device=h.device)[None, :] < lengths.to(h.device)[:, None]).to(h.dtype)
        return (h * mask[..., None]).sum(dim=1) / lengths.to(h.device).clamp(min=1).to(h.dtype)[:, None]
    if mode == "last":
        if lengths is None:
            return h[:, -1]
        idx = (lengths.clamp(min=1, max=L) - 1).to(h.device)
        return h[torch.arange(B, device=h.device), idx]
    raise ValueError(f"unknown pooling {mode!r}; expected mean or last")


def append_future(x: torch.Tensor, horizon: int) -> torch.Tensor:
    """The forecast path's input: ``(B, L, C)`` -> ``(B, L + K, C + 1)`` with ``K = horizon``.

    ``out[:, :L, :C] = x`` and ``out[:, L:, :C] = 0`` (the future values, unknown); the last channel is the future
    indicator, ``out[:, t, C] = 1`` for ``t >= L`` and 0 before.
    """
    B, L, C = x.shape
    out = x.new_zeros((B, L + int(horizon), C + 1))
    out[:, :L, :C] = x
    out[:, L:, C] = 1.0
    return out


def gather_last_k(h: torch.Tensor, lengths: torch.Tensor | None, k: int) -> torch.Tensor:
    """The features at each sequence's last ``k`` real positions, in order: ``(B, L, H) -> (B, k, H)``.

    ``out[b, j] = h[b, len_b - k + j]`` for ``j = 0 .. k-1`` (``len_b = L`` without ``lengths``).

    Raises:
        ValueError: a sequence has fewer than ``k`` real positions.
    """
    B, L, H = h.shape
    if lengths is None:
        if L < k:
            raise ValueError(f"the last-k head needs sequences of at least k={k} positions, got length {L}")
        return h[:, L - k:]
    lengths = lengths.to(device=h.device, dtype=torch.int64)  # gather takes int64 indices only
    if not torch.compiler.is_compiling() and bool((lengths < k).any()):
        raise ValueError(f"the last-k head needs sequences of at least k={k} real positions, got lengths "
                         f"{lengths.tolist()}")
    idx = lengths[:, None] - k + torch.arange(k, device=h.device)[None, :]  # (B, k)
    return torch.gather(h, 1, idx[..., None].expand(B, k, H))


class ClassificationHead(nn.Module):
    """``Linear(d_model, n_classes)`` on pooled features ``(B, H) -> (B, n_classes)`` (logits or regression)."""

    def __init__(self, d_model: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_model, n_classes)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``u``: ``(B, H)`` -> ``(B, n_classes)``."""
        return self.linear(u)


class LastKHead(nn.Module):
    """``Linear(d_model, n_out)`` at the last ``k`` real positions: ``(B, L, H) -> (B, k, n_out)``."""

    def __init__(self, d_model: int, n_out: int, k: int) -> None:
        super().__init__()
        if int(k) < 1:
            raise ValueError(f"the last-k head needs k >= 1, got {k}")
        self.k = int(k)
        self.linear = nn.Linear(d_model, n_out)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``h``: ``(B, L, H)`` right-padded to ``lengths`` -> ``(B, k, n_out)`` (see :func:`gather_last_k`)."""
        return self.linear(gather_last_k(h, lengths, self.k))


class TokenHead(nn.Module):
    """``Linear(d_model, n_out)`` at every position: ``(B, L, H) -> (B, L, n_out)``.

    Outputs at padded positions are computed but meaningless; their targets are unscored (-100 or NaN).
    """

    def __init__(self, d_model: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_model, n_out)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``h``: ``(B, L, H)`` -> ``(B, L, n_out)``."""
        return self.linear(h)


class LMHead(nn.Module):
    """Causal language-model head tied to the input embedding: ``logits = h E^T``, ``(B, L, H) -> (B, L, V)``.

    ``weight`` *is* the embedding's weight ``E (V, H)`` (one parameter, one storage); there is no bias. The logits
    at position ``t`` score the token at ``t + 1`` (the task's targets are the inputs shifted by one). The
    embedding's ``padding_idx`` (id 0 for :class:`~ptdssm.models.SequenceModel`) is never a target: its logit is
    ``-inf``, so the tied padding row, which the embedding keeps fixed, is not moved by the head's gradient either.
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"the LM head ties its weight to an nn.Embedding, got {type(embedding).__name__}")
        self.weight = embedding.weight
        self.padding_idx = embedding.padding_idx

    def forward(self, h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``h``: ``(B, L, H)`` -> logits ``(B, L, V)`` (``-inf`` at the padding id)."""
        logits = h @ self.weight.to(h.dtype).t()
        if self.padding_idx is None:
            return logits
        pad = torch.arange(logits.shape[-1], device=logits.device) == self.padding_idx
        return logits.masked_fill(pad, float("-inf"))


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
