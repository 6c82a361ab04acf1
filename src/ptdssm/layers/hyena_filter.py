r"""Hyena's implicit long filter (Poli et al. 2023, sec. 3.3): a kernel generator ``forward(L) -> (n, C, L)``.

``n`` filters of ``C`` channels over positions ``k < l_max``:

.. math::
    h_k = \mathrm{FFN}(z_k) \cdot \big(\exp(-t_k |\delta|) + s\big), \qquad
    \mathrm{FFN} = W_{out} \circ \sin(w \cdot) \circ W_{R} \circ \dots \circ \sin(w \cdot) \circ W_{in},

- ``z_k`` the positional features of :func:`ptdssm.kernels.hyena.positional_features` (``[t, cos, -sin]``, ``emb_dim``
  wide), stored as a parameter ``pos_emb`` (as the public code: trained with its own tiny learning rate,
  ``pos_emb_lr`` = 1e-5) and ``t_k = k / (l_max - 1)`` a buffer;
- the FFN: ``Linear(emb_dim, F)``, then ``num_inner_mlps`` times ``Linear(F, F)``, each followed by
  ``sin(w x)`` with a trainable frequency vector ``w`` (one :class:`Sin` shared by all, initialised to ``w``, the
  paper's frequency), then ``Linear(F, n C, bias=False)`` (``F = filter_order``); its weights carry the optimizer
  hint ``{"lr": lr, "weight_decay": 0}``;
- the exponential decay window :func:`~ptdssm.kernels.hyena.exponential_modulation`, rates
  :func:`~ptdssm.kernels.hyena.decay_deltas` spread over the ``n C`` output channels (a buffer: not trained);
- ``normalized``: at each position, each filter divided by its L1 norm over its channels (as the public code;
  a norm over the positions would make the taps depend on the input's length).

The filter depends on ``l_max`` (the positions are normalised by it), not on the length of the input: a sequence
of length ``L <= l_max`` uses the first ``L`` taps, so the filter at a position never changes with the length
(what makes Hyena causal and its step mode exact). A per-filter skip ``bias (n, C)`` (the public code's "bias":
``y = h * z + bias z``) is kept here with the filter it belongs to.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive_float, check_positive_int
from ..kernels.hyena import decay_deltas, exponential_modulation, positional_features

__all__ = ["HyenaFilter", "Sin"]


class Sin(nn.Module):
    """``sin(w x)`` with a trainable frequency ``w (dim,)`` (initialised to the constant ``w``)."""

    def __init__(self, dim: int, w: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((dim,), float(w)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """Implicit filter generator ``forward(L) -> (n_filters, channels, L)`` (module docstring).

    Args:
        channels: ``C``, channels per filter.
        n_filters: ``n``.
        l_max: the longest sequence (the positions are normalised by it).
        emb_dim: odd positional feature size (``>= 3``).
        filter_order: FFN width ``F``.
        num_inner_mlps: number of inner ``Linear(F, F)`` layers.
        w: initial frequency of the sine activation.
        fast_decay_pct, slow_decay_pct, decay_target: the decay window (fastest and slowest channels reach
            ``decay_target`` at ``t = fast_decay_pct`` and ``slow_decay_pct``).
        modulate: apply the decay window.
        shift: constant added to the window.
        normalized: at each position, divide each filter by its L1 norm over the channels.
        lr: learning-rate hint of the FFN (``None``: the optimizer helper's ``ssm_lr``).
        pos_emb_lr: learning-rate hint of the positional features.
    """

    def __init__(self, channels: int, n_filters: int, l_max: int, *, emb_dim: int = 3, filter_order: int = 64,
                 num_inner_mlps: int = 2, w: float = 1.0, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5,
                 decay_target: float = 1e-2, modulate: bool = True, shift: float = 0.0, normalized: bool = False,
                 lr: float | None = None, pos_emb_lr: float = 1e-5) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.n_filters = check_positive_int("n_filters", n_filters)
        self.l_max = check_positive_int("l_max", l_max)
        self.filter_order = F = check_positive_int("filter_order", filter_order)
        num_inner_mlps = check_positive_int("num_inner_mlps", num_inner_mlps, minimum=0)
        self.modulate, self.shift, self.normalized = bool(modulate), float(shift), bool(normalized)
        if lr is not None:
            check_positive_float("lr", lr)
        pos_emb_lr = check_positive_float("pos_emb_lr", pos_emb_lr, allow_zero=True)
        z, t = positional_features(self.l_max, emb_dim, dtype=torch.get_default_dtype())
        self.pos_emb = nn.Parameter(z, requires_grad=pos_emb_lr > 0)
        self.pos_emb._optim = {"lr": pos_emb_lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        self.register_buffer("t", t)
        self.act = Sin(F, w)
        layers: list[nn.Module] = [nn.Linear(emb_dim, F), self.act]
        for _ in range(num_inner_mlps):
            layers += [nn.Linear(F, F), self.act]
        layers.append(nn.Linear(F, self.n_filters * self.channels, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        for p in self.implicit_filter.parameters():
            p._optim = {"lr": lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        # rates over the n C output channels in the FFN's (channel, filter) order, as the public code spreads them
        deltas = decay_deltas(self.n_filters * self.channels, fast_decay_pct, slow_decay_pct, decay_target)
        self.register_buffer("deltas", deltas.view(self.channels, self.n_filters).T.contiguous()
                             .to(torch.get_default_dtype()))
        self.bias = nn.Parameter(torch.randn(self.n_filters, self.channels))

    def forward(self, L: int) -> torch.Tensor:
        """Filters ``(n_filters, channels, L)`` for the first ``L <= l_max`` positions."""
        if L > self.l_max:
            raise ValueError(f"sequence length {L} exceeds l_max={self.l_max} (the implicit filter's length; "
                             "set l_max)")
        h = self.implicit_filter(self.pos_emb[:L])  # (L, C n), column c n + i = channel c of filter i
        h = h.view(L, self.channels, self.n_filters).permute(2, 1, 0)  # (n, C, L)
        if self.modulate:
            h = exponential_modulation(h, self.t[:L], self.deltas, self.shift)
        if self.normalized:
            h = h / h.abs().sum(1, keepdim=True)
        return h

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, n_filters={self.n_filters}, l_max={self.l_max}, "
                f"filter_order={self.filter_order}, modulate={self.modulate}, normalized={self.normalized}")
