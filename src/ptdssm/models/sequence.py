"""``SequenceModel``: encoder -> residual SSM blocks -> pooling -> decoder, the network of the S4/S5 papers.

One residual block (``prenorm=True``)::

    z = norm(x);  z = ssm(z, lengths);  z = mix(z);  x = x + z          # mix = activation [+ GLU] + dropout

and with ``prenorm=False`` the norm is applied after the residual sum; ``residual=False`` drops the skip
(``x = mix(z)``, the robustness model of the PTD paper). ``mix`` is one of

* ``gelu``: ``Linear(H, H)(dropout(gelu(z)))``;
* ``glu``: ``GLU(Linear(H, 2H)(dropout(gelu(z))))`` (S4's block; S5's ``full_glu``);
* ``half-glu1``: ``g * sigmoid(W g)`` with ``g = dropout(gelu(z))`` (S5's ``half_glu1``);
* ``half-glu2``: ``z * sigmoid(W dropout(gelu(z)))`` (S5's ``half_glu2``, the S5-PTD recipes' ``x*sigmoid(W gelu(x))``),

each followed by dropout. The SSM layer is the pure SSM map (kernel convolution + D skip); its own dropout is not
used here. Norms: ``batch`` (``BatchNorm1d`` over channels, statistics over batch and length) or ``layer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .heads import ClassificationHead, RetrievalHead

__all__ = ["ACTIVATIONS", "Mixer", "ResidualBlock", "SequenceModel", "pool_sequence"]

ACTIVATIONS = ("gelu", "glu", "half-glu1", "half-glu2")
NormKind = Literal["batch", "layer", "none"]


class _ChannelNorm(nn.Module):
    """BatchNorm1d or LayerNorm over the channels of a ``(B, L, H)`` tensor (or identity)."""

    def __init__(self, kind: NormKind, d_model: int, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.kind = kind
        if kind == "batch":
            self.norm: nn.Module = nn.BatchNorm1d(d_model, momentum=bn_momentum)
        elif kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "none":
            self.norm = nn.Identity()
        else:
            raise ValueError(f"unknown norm {kind!r}; expected one of: batch, layer, none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, H) -> (B, L, H)``."""
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x)


class Mixer(nn.Module):
    """Position-wise activation and channel mixing after the SSM: ``(B, L, H) -> (B, L, H)`` (see module doc)."""

    def __init__(self, d_model: int, activation: str = "glu", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of: {', '.join(ACTIVATIONS)}")
        self.activation = activation
        out = 2 * d_model if activation == "glu" else d_model
        self.linear = nn.Linear(d_model, out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = self.dropout(F.gelu(z))
        if self.activation == "gelu":
            y = self.linear(g)
        elif self.activation == "glu":
            y = F.glu(self.linear(g), dim=-1)
        elif self.activation == "half-glu1":
            y = g * torch.sigmoid(self.linear(g))
        else:  # half-glu2
            y = z * torch.sigmoid(self.linear(g))
        return self.dropout(y)


class ResidualBlock(nn.Module):
    """``x + mix(ssm(norm(x)))`` (prenorm) or ``norm(x + mix(ssm(x)))`` (postnorm); ``(B, L, H) -> (B, L, H)``.

    With ``residual=False`` the ``x +`` is dropped.
    """

    def __init__(self, ssm: nn.Module, d_model: int, *, norm: NormKind = "batch", prenorm: bool = True,
                 activation: str = "glu", dropout: float = 0.0, bn_momentum: float = 0.1,
                 residual: bool = True) -> None:
        super().__init__()
        self.ssm = ssm
        self.norm = _ChannelNorm(norm, d_model, bn_momentum)
        self.prenorm, self.residual = prenorm, residual
        self.mix = Mixer(d_model, activation, dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z = self.norm(x) if self.prenorm else x
        z = self.mix(self.ssm(z, lengths=lengths))
        x = x + z if self.residual else z
        return x if self.prenorm else self.norm(x)


def pool_sequence(h: torch.Tensor, lengths: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Pool ``(B, L, H)`` to ``(B, H)``: mean over the real positions, or the last real position.

    Args:
        h: features ``(B, L, H)``.
        lengths: ``(B,)`` number of real (unpadded) positions, or ``None`` for all ``L``.
        mode: ``"mean"`` or ``"last"``.
    """
    B, L, _ = h.shape
    if mode == "mean":
        if lengths is None:
            return h.mean(dim=1)
        mask = (torch.arange(L, device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
        return (h * mask[..., None]).sum(dim=1) / lengths.clamp(min=1).to(h.dtype)[:, None]
    if mode == "last":
        if lengths is None:
            return h[:, -1]
        idx = (lengths.clamp(min=1, max=L) - 1).to(h.device)
        return h[torch.arange(B, device=h.device), idx]
    raise ValueError(f"unknown pooling {mode!r}; expected mean or last")


class SequenceModel(nn.Module):
    """Sequence classifier built around a stack of SSM layers.

    Args:
        layers: the SSM layers, one per residual block, each ``(B, L, H) -> (B, L, H)`` with ``lengths=``.
        d_model: ``H``.
        n_classes: number of output classes.
        vocab_size: token inputs ``(B, L)`` int64 through ``Embedding(vocab_size, H)`` (id 0 = padding), or
        d_input: continuous inputs ``(B, L, d_input)`` through ``Linear(d_input, H)``.
        norm, prenorm, activation, dropout, bn_momentum, residual: block layout (see :class:`ResidualBlock`).
        pool: ``"mean"`` or ``"last"``.
        is_pair: two-document task: ``forward(x, lengths, x2, lengths2)`` and a :class:`RetrievalHead`.
        retrieval_hidden: hidden width of the retrieval head.
    """

    def __init__(self, layers: Sequence[nn.Module], d_model: int, n_classes: int, *, vocab_size: int | None = None,
                 d_input: int | None = None, norm: NormKind = "batch", prenorm: bool = True,
                 activation: str = "glu", dropout: float = 0.0, pool: str = "mean", bn_momentum: float = 0.1,
                 is_pair: bool = False, retrieval_hidden: int | None = None, residual: bool = True) -> None:
        super().__init__()
        if (vocab_size is None) == (d_input is None):
            raise ValueError("give exactly one of vocab_size (token inputs) and d_input (continuous inputs)")
        if pool not in ("mean", "last"):
            raise ValueError(f"unknown pooling {pool!r}; expected mean or last")
        if len(layers) == 0:
            raise ValueError("a SequenceModel needs at least one SSM layer")
        self.d_model, self.n_classes, self.pool, self.is_pair = d_model, n_classes, pool, is_pair
        self.vocab_size, self.d_input = vocab_size, d_input
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model, padding_idx=0)
        else:
            self.encoder = nn.Linear(int(d_input), d_model)  # type: ignore[arg-type]
        self.blocks = nn.ModuleList(
            ResidualBlock(layer, d_model, norm=norm, prenorm=prenorm, activation=activation, dropout=dropout,
                          bn_momentum=bn_momentum, residual=residual)
            for layer in layers
        )
        self.final_norm = _ChannelNorm(norm if prenorm else "none", d_model, bn_momentum)
        self.decoder: nn.Module = (RetrievalHead(d_model, n_classes, retrieval_hidden) if is_pair
                                   else ClassificationHead(d_model, n_classes))

    def _encode_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.vocab_size is not None:
            if x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"token inputs must be integer ids (B, L), got dtype {x.dtype}")
            return self.encoder(x.long())
        if x.dim() == 2 and self.d_input == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"continuous inputs must be (B, L, {self.d_input}), got {tuple(x.shape)}")
        return self.encoder(x.to(self.encoder.weight.dtype))

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone: ``x`` ``(B, L[, d_input])`` -> ``(B, L, H)``."""
        h = self._encode_input(x)
        for block in self.blocks:
            h = block(h, lengths)
        return self.final_norm(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, x2: torch.Tensor | None = None,
                lengths2: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)``.

        Args:
            x: ``(B, L)`` token ids or ``(B, L, d_input)`` values, right-padded.
            lengths: ``(B,)`` real lengths or ``None`` (all ``L``).
            x2, lengths2: the second document of a pair task (required iff ``is_pair``).
        """
        if self.is_pair != (x2 is not None):
            raise ValueError("a pair (retrieval) model needs x2, and only a pair model takes it")
        if x2 is None:
            return self.decoder(pool_sequence(self.features(x, lengths), lengths, self.pool))
        B = x.shape[0]
        L = max(x.shape[1], x2.shape[1])
        full1 = lengths if lengths is not None else torch.full((B,), x.shape[1], dtype=torch.long)
        full2 = lengths2 if lengths2 is not None else torch.full((x2.shape[0],), x2.shape[1], dtype=torch.long)
        xs = torch.cat([_pad_to(x, L), _pad_to(x2, L)], dim=0)
        lens = torch.cat([full1.to(xs.device), full2.to(xs.device)])
        lens_arg = None if bool((lens == L).all()) else lens
        pooled = pool_sequence(self.features(xs, lens_arg), lens_arg, self.pool)
        return self.decoder(pooled[:B], pooled[B:])


def _pad_to(x: torch.Tensor, L: int) -> torch.Tensor:
    """Right-pad ``(B, l, ...)`` with zeros to ``(B, L, ...)``."""
    if x.shape[1] == L:
        return x
    pad = x.new_zeros((x.shape[0], L - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)
