r"""Residual blocks around any sequence mixer (``(B, L, H) -> (B, L, H)`` with ``lengths=``).

The block kind comes from the family (:attr:`ptdssm.layers.registry.Family.block`). With ``prenorm=True``:

* ``"ssm"`` (S4, S4D, S5): ``x + mix(mixer(norm(x)))`` where ``mix`` is the position-wise activation and channel
  mixing of :class:`ChannelMix` (GELU, GLU or a half-GLU, then dropout);
* ``"mixer"`` (a mixer that gates itself, e.g. Mamba): ``x + dropout(mixer(norm(x)))``, no MLP, no activation;
* ``"mlp"`` (attention-like mixers, e.g. Hyena, H3): ``x = x + dropout(mixer(norm(x)))`` then
  ``x + MLP(norm2(x))`` with ``MLP = Linear(H, 4H) -> GELU -> dropout -> Linear(4H, H) -> dropout``.

``prenorm=False`` applies each norm after its residual sum (``norm(x + f(x))``); ``residual=False`` drops the skips
(``x = f(x)``; the robustness model of the PTD paper). Norms: ``batch`` (``BatchNorm1d`` over channels, statistics
over batch and length), ``layer``, ``rms`` (RMSNorm with a gain, eps 1e-5, as Mamba language models use) or
``none``. The mixer's own dropout is not used here.

**Streaming.** :meth:`ResidualBlock.step` runs one position ``(B, H) -> (B, H)`` with the mixer's
:meth:`~ptdssm.layers.mixer.SequenceMixer.step`, and :meth:`ResidualBlock.prefill` a whole (padded) sequence with
the mixer's ``prefill``, returning the mixer state after each sequence's last real position. Every piece but the
mixer is position-wise (LayerNorm, RMSNorm, ChannelMix, MLP, and BatchNorm in eval mode, which uses its running
statistics); BatchNorm in training mode normalizes over the batch and the length, so streaming refuses it.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.mixer import SequenceMixer
from ..layers.registry import BLOCKS

__all__ = ["ACTIVATIONS", "BLOCK_KINDS", "MLP", "NORMS", "ChannelMix", "RMSNorm", "ResidualBlock"]

ACTIVATIONS = ("gelu", "glu", "half-glu1", "half-glu2", "identity")
BLOCK_KINDS = BLOCKS  # the block kinds a family may name (defined once, in the family registry)
NormKind = Literal["batch", "layer", "rms", "none"]
NORMS = ("batch", "layer", "rms", "none")


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis (Zhang and Sennrich 2019; Mamba's block norm).

    Computed in float32 for half-precision inputs (then cast back), in the input's dtype otherwise.
    """

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(y.dtype)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class ChannelNorm(nn.Module):
    """BatchNorm1d, LayerNorm or RMSNorm over the channels of a ``(B, L, H)`` tensor (or identity)."""

    def __init__(self, kind: NormKind, d_model: int, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.kind = kind
        if kind == "batch":
            self.norm: nn.Module = nn.BatchNorm1d(d_model, momentum=bn_momentum)
        elif kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "rms":
            self.norm = RMSNorm(d_model)
        elif kind == "none":
            self.norm = nn.Identity()
        else:
            raise ValueError(f"unknown norm {kind!r}; expected one of: {', '.join(NORMS)}")

    @property
    def position_wise(self) -> bool:
        """Whether each position is normalized on its own (all but BatchNorm in training mode)."""
        return not (self.kind == "batch" and self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, H) -> (B, L, H)``."""
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x)


class ChannelMix(nn.Module):
    """Position-wise activation and channel mixing after an ``"ssm"`` block's mixer: ``(B, L, H) -> (B, L, H)``.

    With ``g = dropout(gelu(z))``: ``gelu``: ``W g``; ``glu``: ``GLU(W g)`` with ``W: H -> 2H`` (S4's block, S5's
    ``full_glu``); ``half-glu1``: ``g * sigmoid(W g)``; ``half-glu2``: ``z * sigmoid(W g)`` (S5's ``half_glu2``, the
    S5-PTD recipes' ``x*sigmoid(W gelu(x))``); each followed by dropout. ``identity``: ``z`` itself, no
    parameters (s4's ``linear: true``; with ``norm: none`` and ``residual: false`` the network is linear).
    """

    def __init__(self, d_model: int, activation: str = "glu", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of: {', '.join(ACTIVATIONS)}")
        self.activation = activation
        out = 2 * d_model if activation == "glu" else d_model
        self.linear = None if activation == "identity" else nn.Linear(d_model, out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.linear is None:  # identity
            return self.dropout(z)
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


class MLP(nn.Module):
    """``Linear(H, eH) -> GELU -> dropout -> Linear(eH, H) -> dropout``: ``(B, L, H) -> (B, L, H)``."""

    def __init__(self, d_model: int, expand: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, expand * d_model)
        self.fc2 = nn.Linear(expand * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class ResidualBlock(nn.Module):
    """One residual block around ``mixer`` (see the module docstring); ``(B, L, H) -> (B, L, H)``.

    Args:
        mixer: any module ``mixer(x (B, L, H), lengths=None) -> (B, L, H)`` (a
            :class:`~ptdssm.layers.mixer.SequenceMixer`).
        d_model: ``H``.
        block: ``"ssm"``, ``"mixer"`` or ``"mlp"``.
        norm, prenorm, residual, bn_momentum: normalization and skip layout.
        activation: the ``"ssm"`` block's :class:`ChannelMix` activation (unused by the other kinds).
        dropout: dropout after the mixing / MLP.
        mlp_expand: hidden width factor of the ``"mlp"`` block's MLP.
    """

    def __init__(self, mixer: nn.Module, d_model: int, *, block: str = "ssm", norm: NormKind = "batch",
                 prenorm: bool = True, activation: str = "glu", dropout: float = 0.0, bn_momentum: float = 0.1,
                 residual: bool = True, mlp_expand: int = 4) -> None:
        super().__init__()
        if block not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {block!r}; expected one of: {', '.join(BLOCK_KINDS)}")
        self.block, self.prenorm, self.residual = block, prenorm, residual
        self.mixer = mixer
        self.norm = ChannelNorm(norm, d_model, bn_momentum)
        self.mix: nn.Module | None = ChannelMix(d_model, activation, dropout) if block == "ssm" else None
        self.dropout = nn.Dropout(dropout)
        self.norm2 = ChannelNorm(norm, d_model, bn_momentum) if block == "mlp" else None
        self.mlp = MLP(d_model, mlp_expand, dropout) if block == "mlp" else None

    @property
    def ssm(self) -> nn.Module:
        """The mixer (its name before mixers other than SSMs existed)."""
        return self.mixer

    def _sub(self, x: torch.Tensor, norm: nn.Module, f: Any) -> torch.Tensor:
        z = f(norm(x) if self.prenorm else x)
        x = x + z if self.residual else z
        return x if self.prenorm else norm(x)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(B, L, H)``, ``lengths``: ``(B,)`` or ``None`` -> ``(B, L, H)``."""
        post = self.mix if self.mix is not None else self.dropout
        x = self._sub(x, self.norm, lambda z: post(self.mixer(z, lengths=lengths)))
        if self.mlp is not None:
            x = self._sub(x, self.norm2, self.mlp)
        return x

    # ------------------------------------------------------------------ streaming
    def check_streaming(self, where: str = "block") -> None:
        """Raise ``ValueError`` unless the block can stream: position-wise norms and a mixer with a step mode."""
        for norm in (self.norm, self.norm2):
            if norm is not None and not norm.position_wise:
                raise ValueError(f"{where}: BatchNorm in training mode normalizes over the batch and the length, "
                                 "so it cannot run one position at a time; call model.eval() (BatchNorm then uses "
                                 "its running statistics) or use norm 'layer' or 'rms'")
        mixer, name = self.mixer, type(self.mixer).__name__
        if getattr(mixer, "bidirectional", False):
            raise ValueError(f"{where}: {name}(bidirectional=True) has no step mode (its reverse pass needs future "
                             "inputs); streaming and generation need causal mixers")
        if not isinstance(mixer, SequenceMixer) or type(mixer)._step is SequenceMixer._step:
            raise ValueError(f"{where}: {name} has no step mode (a SequenceMixer implementing _init_state and _step)")

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One position: ``x_t (B, H)``, the mixer's state -> ``(B, H)``, the new state; equals :meth:`forward`
        position by position (the caller checks :meth:`check_streaming`)."""
        post = self.mix if self.mix is not None else self.dropout
        new: list[Any] = []

        def mixer_step(z: torch.Tensor) -> torch.Tensor:
            y, s = self.mixer.step(z[:, 0], state)
            new.append(s)
            return post(y[:, None])

        x = self._sub(x_t[:, None], self.norm, mixer_step)
        if self.mlp is not None:
            x = self._sub(x, self.norm2, self.mlp)
        return x[:, 0], new[0]

    def prefill(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        """:meth:`forward` in parallel, and the mixer's state after each sequence's last real position."""
        post = self.mix if self.mix is not None else self.dropout
        new: list[Any] = []

        def mixer_prefill(z: torch.Tensor) -> torch.Tensor:
            y, s = self.mixer.prefill(z, lengths)
            new.append(s)
            return post(y)

        x = self._sub(x, self.norm, mixer_prefill)
        if self.mlp is not None:
            x = self._sub(x, self.norm2, self.mlp)
        return x, new[0]

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints written before mixers were generic name the mixer "ssm": read them as "mixer"
        old = prefix + "ssm."
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + "mixer." + key[len(old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
