r"""Hyena (Poli et al. 2023, "Hyena Hierarchy: Towards Larger Convolutional Language Models"): the order-``N``
Hyena operator, ``(B, L, H) -> (B, L, H)``.

.. math::
    (x^1, \dots, x^N, v) &= \mathrm{split}_H\big(\mathrm{conv}_{short}(W_{in} u + b_{in})\big)
        \qquad (W_{in}: H \to (N+1) H),\\
    z^1 = v, \qquad z^{n+1} &= x^n \odot \big(h^n * z^n + b^n \odot z^n\big) \quad (n = 1..N), \qquad
        \text{out} = W_{out}\, z^{N+1} + b_{out}

(``recurrence="paper"``, the paper's Definition 3.1 and Algorithm 3: ``N`` long convolutions, each followed by a
gate). ``recurrence="safari"`` is the authors' public code (safari ``HyenaOperator``), which gates *before* the
first long convolution and uses ``N - 1`` of them: ``z^2 = x^1 \odot v`` then the rounds above for ``n = 2..N``
with filters ``h^1 .. h^{N-1}``, i.e. the paper's form with ``h^1 = \delta``. Its first product ``x^1 \odot v``
binds each position's (short-convolved) key to its value before the long memory, as H3's ``k~ v``, and it is the
form the paper's experiments ran. On per-position associative recall (MQAR, length 64, 10 epochs on 2 CPU cores)
it reached 34% test accuracy against 25% for the paper's form, still rising at the end; the synthetic-task recipes
use it.

- ``conv_short``: a causal depthwise convolution of width ``short_filter_order`` (3) with bias on all ``(N+1) H``
  projected channels (:func:`ptdssm.kernels.shift.causal_conv`; parameter ``short_filter``, an ``nn.Conv1d``);
- ``h^n``: the implicit long filters of :class:`~ptdssm.layers.hyena_filter.HyenaFilter` (positional features ->
  FFN with sine activations of frequency ``w`` -> exponential decay window), one per long convolution, ``H``
  channels each, defined on ``l_max`` positions; ``b^n`` the per-filter bias (``filter_fn.bias``);
- ``*``: causal convolution by FFTs of size ``2L``, the bias folded into the lag-0 tap. The forward runs
  everything between ``in_proj`` and ``out_proj`` (short conv, split, long convolutions, gates) as one autograd
  Function, :func:`~ptdssm.kernels.hyena.hyena_operator`, one batch element at a time (on CPU ~1.8x faster
  forward+backward than the unfused ops at B=16, H=256, L=4096: no layout copies or padded copies per
  convolution); :meth:`prefill` and a compiled forward use the unfused path,
  :func:`~ptdssm.kernels.shift.causal_conv` and :func:`~ptdssm.kernels.hyena.hyena_recurrence`
  (:func:`~ptdssm.kernels.fftconv.fft_conv_blh`), which also returns the convolutions' inputs (the step history);
  ``hyena_recurrence_ref`` is the direct ``O(N L^2)`` sum.

Defaults are the public code's: ``order`` 2, ``filter_order`` 64, ``emb_dim`` 3, two inner FFN layers, ``w`` 1,
width-3 short filter, decay window from ``t = 0.3`` (fastest channel at 1e-2) to ``1.5`` (slowest), positional
features trained at ``pos_emb_lr`` = 1e-5 and the FFN without weight decay.

**Lengths.** Sequences may not be longer than ``l_max`` (a one-line error names it): the filter's positions are
normalised by ``l_max``, so the taps do not depend on the input's length.

**Step mode** (exact, by input history; Hyena has no recurrence with a fixed-size state): the state is
``(short-filter buffer (B, K-1, (N+1) H), history (B, M, l_max, H), position (B,) int64)``, the last ``K - 1``
projected inputs and every input of each of the ``M`` (``N`` or ``N - 1``) long convolutions so far. A step at
position ``t`` evaluates the filters on the ``t + 1`` positions so far and sums ``h^n_{t-s} z^n_s`` over them: its
cost grows linearly with the position (``O(t (F^2 + M H))``; a whole generated sequence of length ``L`` costs
``O(L^2)``), the memory is ``O(M l_max H)`` per sequence, and a step past ``l_max`` raises. :meth:`prefill` is
closed form (one forward pass; the history of a padded sequence holds its real positions only).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive_int
from ..kernels.hyena import hyena_operator, hyena_recurrence
from ..kernels.shift import causal_conv, fir_step
from ._proj import linear as _linear
from .hyena_filter import HyenaFilter
from .mixer import SequenceMixer, lengths_mask

__all__ = ["HYENA_RECURRENCES", "Hyena"]

#: ``paper`` (``N`` long convolutions, Algorithm 3) or ``safari`` (the public code: ``N - 1``, gate first)
HYENA_RECURRENCES = ("paper", "safari")


class Hyena(SequenceMixer):
    """Hyena operator of order ``N``: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths).

    Args:
        d_model: channels ``H``.
        l_max: the longest sequence (implicit filter length, step-mode history size).
        order: ``N >= 2`` (``N`` gates, ``N + 1`` projected branches).
        recurrence: ``"paper"`` (``N`` long convolutions) or ``"safari"`` (the public code's ``N - 1``, gate first).
        filter_order: width ``F`` of the filter FFN.
        emb_dim: odd positional feature size (``>= 3``).
        num_inner_mlps: inner ``Linear(F, F)`` layers of the filter FFN.
        w: initial frequency of the sine activation.
        short_filter_order: width ``K`` of the causal depthwise short convolution.
        fast_decay_pct, slow_decay_pct, decay_target, modulate, shift, normalized: the filter's decay window
            and normalisation (:class:`~ptdssm.layers.hyena_filter.HyenaFilter`).
        lr: learning-rate hint of the filter FFN (``None``: the optimizer helper's ``ssm_lr``).
        pos_emb_lr: learning-rate hint of the positional features (0: frozen).
        bias: biases in ``in_proj`` and ``out_proj``.
        dropout: output dropout.
        validate: check inputs for NaN/inf.
    """

    def __init__(self, d_model: int, l_max: int = 1024, *, order: int = 2, recurrence: str = "paper",
                 filter_order: int = 64, emb_dim: int = 3, num_inner_mlps: int = 2, w: float = 1.0,
                 short_filter_order: int = 3, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5,
                 decay_target: float = 1e-2, modulate: bool = True, shift: float = 0.0, normalized: bool = False,
                 lr: float | None = None, pos_emb_lr: float = 1e-5, bias: bool = True, dropout: float = 0.0,
                 validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        H = self.d_model
        self.order = N = check_positive_int("order", order, minimum=2)
        self.recurrence = check_choice("recurrence", recurrence, HYENA_RECURRENCES)
        self.n_convs = N if self.recurrence == "paper" else N - 1
        self.l_max = check_positive_int("l_max", l_max)
        self.short_filter_order = K = check_positive_int("short_filter_order", short_filter_order)
        inner = (N + 1) * H
        self.in_proj = nn.Linear(H, inner, bias=bool(bias))
        self.short_filter = nn.Conv1d(inner, inner, K, groups=inner, padding=K - 1)
        self.filter_fn = HyenaFilter(H, self.n_convs, self.l_max, emb_dim=emb_dim, filter_order=filter_order,
                                     num_inner_mlps=num_inner_mlps, w=w, fast_decay_pct=fast_decay_pct,
                                     slow_decay_pct=slow_decay_pct, decay_target=decay_target, modulate=modulate,
                                     shift=shift, normalized=normalized, lr=lr, pos_emb_lr=pos_emb_lr)
        self.out_proj = nn.Linear(H, H, bias=bool(bias))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, l_max={self.l_max}, order={self.order}, recurrence={self.recurrence!r}, "
                f"short_filter_order={self.short_filter_order}")

    def _split(self, pc: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Short-convolved projections ``(..., (N+1) H)`` -> ``(z^1, the gates after each long convolution)``:
        ``paper``: ``(v, (x^1 .. x^N))``; ``safari``: ``(x^1 v, (x^2 .. x^N))``."""
        parts = pc.split(self.d_model, dim=-1)  # x^1 .. x^N, v
        N = self.order
        if self.recurrence == "paper":
            return parts[N], parts[:N]
        return parts[0] * parts[N], parts[1:N]

    def _check_len(self, L: int) -> None:
        if L > self.l_max:
            raise ValueError(f"Hyena: sequence length {L} exceeds l_max={self.l_max} (the implicit filter's "
                             "length; set l_max)")

    # ------------------------------------------------------------------ parallel mode
    def _mix(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Unfused forward (prefill, compiled): ``u (B, L, H)`` -> ``(out (B, L, H), projected inputs before the
        short conv (B, L, (N+1) H), the long convolutions' inputs)``."""
        L = u.shape[1]
        self._check_len(L)
        p = _linear(u, self.in_proj)
        sf = self.short_filter
        z, gates = self._split(causal_conv(p, sf.weight[:, 0], sf.bias))
        y, inputs = hyena_recurrence(z, gates, self.filter_fn(L).to(u.dtype), self.filter_fn.bias.to(u.dtype),
                                     return_inputs=True)
        return _linear(y, self.out_proj), p, inputs

    def _long_filters(self, L: int, dtype: torch.dtype) -> torch.Tensor:
        """``(M, H, L)`` long filters with the per-filter skip ``b^n`` folded into the lag-0 tap."""
        h, bias = self.filter_fn(L).to(dtype), self.filter_fn.bias.to(dtype)
        return torch.cat([h[..., :1] + bias[..., None], h[..., 1:]], dim=-1)

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return self._mix(u)[0]
        self._check_len(u.shape[1])
        sf = self.short_filter
        y = hyena_operator(_linear(u, self.in_proj), sf.weight[:, 0], sf.bias, self._long_filters(u.shape[1], u.dtype),
                           order=self.order, safari=self.recurrence == "safari")
        return _linear(y, self.out_proj)

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """One forward pass; the state after each sequence's last real position (module docstring)."""
        Bsz, L, _ = u.shape
        y, p, inputs = self._mix(u)
        n = torch.full((Bsz,), L, device=u.device) if lengths is None else lengths.to(u.device).long()
        K = self.short_filter_order
        pp = F.pad(p, (0, 0, K - 1, 0))  # position t at t + K - 1; the last K - 1 real ones at n .. n + K - 2
        idx = (n[:, None] + torch.arange(K - 1, device=u.device)[None, :])[..., None].expand(-1, -1, p.shape[-1])
        buf = pp.gather(1, idx)
        hist = torch.stack(inputs, 1)  # (B, M, L, H)
        if lengths is not None:
            hist = hist * lengths_mask(lengths, Bsz, L, u.device)[:, None].to(hist.dtype)
        hist = F.pad(hist, (0, 0, 0, self.l_max - L))
        return y, (buf, hist, n.clone())

    # ------------------------------------------------------------------ step mode
    def _state_shapes(self, batch: int) -> tuple[tuple[int, ...], ...]:
        H, N, K = self.d_model, self.order, self.short_filter_order
        return (batch, K - 1, (N + 1) * H), (batch, self.n_convs, self.l_max, H), (batch,)

    def _init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kw = {"dtype": self.compute_dtype(), "device": self.in_proj.weight.device}
        s1, s2, s3 = self._state_shapes(batch)
        return torch.zeros(s1, **kw), torch.zeros(s2, **kw), torch.zeros(s3, dtype=torch.long, device=kw["device"])

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        Bsz, H = u_t.shape
        shapes = self._state_shapes(Bsz)
        if not (isinstance(state, (tuple, list)) and len(state) == 3 and all(isinstance(s, torch.Tensor) for s in state)
                and all(tuple(s.shape) == sh for s, sh in zip(state, shapes, strict=True))):
            raise ValueError(f"state must be (short-filter buffer {shapes[0]}, history {shapes[1]}, position "
                             f"{shapes[2]}); use init_state(batch)")
        dtype = u_t.dtype
        buf, hist, pos = state[0].to(dtype), state[1].to(dtype), state[2]
        if bool((pos >= self.l_max).any()):
            raise ValueError(f"Hyena.step: position {int(pos.max())} is past l_max={self.l_max} (the history holds "
                             "l_max inputs)")
        sf = self.short_filter
        pc, buf = fir_step(_linear(u_t, self.in_proj), buf, sf.weight[:, 0], sf.bias)
        z, gates = self._split(pc)
        S = int(pos.max()) + 1
        lag = pos[:, None] - torch.arange(S, device=pos.device)[None, :]  # (B, S): t - s
        h = self.filter_fn(S).to(dtype).permute(0, 2, 1)  # (M, S, H)
        taps = h[:, lag.clamp(min=0)] * (lag >= 0)[None, ..., None]  # (M, B, S, H): h_{t-s}, 0 for s > t
        bias = self.filter_fn.bias.to(dtype)
        at = pos.view(Bsz, 1, 1).expand(Bsz, 1, H)
        hists = []
        for n, gate in enumerate(gates):
            hn = hist[:, n].scatter(1, at, z[:, None])  # write the n-th convolution's input at position t
            hists.append(hn)
            z = gate * ((taps[n] * hn[:, :S]).sum(1) + bias[n] * z)
        return _linear(z, self.out_proj), (buf, torch.stack(hists, 1), pos + 1)
