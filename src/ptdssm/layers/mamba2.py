r"""Mamba-2 (Dao and Gu 2024, "Transformers are SSMs"): a selective SSM with one scalar ``A`` per head, run by the
chunked SSD algorithm (:func:`ptdssm.kernels.ssd.ssd_chunked`).

With ``d_inner = expand * d_model``, ``nheads = d_inner / headdim`` (``P = headdim``), ``G = ngroups`` and
``N = d_state``, for an input ``u (B, L, d_model)``:

1. ``in_proj`` gives, in this order, ``z (d_inner)``, ``x (d_inner)``, ``B (G N)``, ``C (G N)``, ``dt (nheads)``;
2. ``(x, B, C)`` go through one causal depthwise ``conv1d`` (kernel ``d_conv``, bias) and SiLU;
3. ``dt = softplus(dt + dt_bias)``, clamped to ``dt_limit``; ``A_h = -exp(A_log_h)``;
4. per head ``h`` (reading group ``h // (nheads / G)`` of ``B`` and ``C``), state ``H_t (P, N)``:

   .. math:: H_t = e^{dt_t A_h} H_{t-1} + dt_t\, x_t B_t^\top, \qquad y_t = H_t C_t + D_h x_t;

5. gated RMSNorm ``norm(y * silu(z))`` over groups of ``d_inner / G`` channels (``norm_before_gate=False``; with
   ``True`` it is ``norm(y) * silu(z)``; with ``rmsnorm=False`` just ``y * silu(z)``), then ``out_proj``.

Parameter names and shapes are those of ``mamba_ssm``'s ``Mamba2`` module (``in_proj``, ``conv1d``, ``dt_bias``,
``A_log``, ``D``, ``norm.weight``, ``out_proj``; ``d_ssm = d_inner``, no extra MLP channels), so its
``state_dict`` loads as is. Inits as there: ``A`` uniform in ``A_init_range`` (stored as ``A_log``), ``dt``
log-uniform in ``[dt_min, dt_max]`` floored at ``dt_init_floor`` and stored as its inverse softplus in
``dt_bias``, ``D = 1``, ``norm.weight = 1``, PyTorch's default ``Linear``/``Conv1d`` inits.

**Optimizer hints.** ``A_log``, ``dt_bias`` and ``D`` carry ``param._optim = {"lr": lr, "weight_decay": 0.0}``
(the house's SSM hint, read by :func:`ptdssm.optim.param_groups`: no weight decay, learning rate ``lr``, else the
helper's ``ssm_lr``, else its ``lr``) and ``mamba_ssm``'s ``_no_weight_decay = True``; ``norm.weight`` and the
biases are one-dimensional, so they get no weight decay either.

**Padding.** With ``lengths``, ``dt = 0`` exactly at padded positions (the mask multiplies the softplus), so the
state is held there (``e^0 = 1``, no input); outputs at real positions never see the pads (the conv and the scan
are causal). :meth:`Mamba2.prefill` returns the exact state after each sequence's last real position: the conv
buffer from its last ``d_conv`` real inputs (zeros on the left when shorter) and the SSD last state.

**Speed (CPU).** The causal depthwise conv runs in the ``(B, L, C)`` layout as ``d_conv`` shifted in-place
``addcmul_`` with a hand-written backward (:func:`~ptdssm.kernels.shift.causal_conv`, shared with H3 and Hyena), as
Mamba-1 does, instead of ``F.conv1d`` and its transposes. On CPU, :meth:`Mamba2.forward` and
:meth:`Mamba2.prefill` run the batch in slabs (:attr:`Mamba2.SLAB_ELEMENTS`; exact, the batch elements are
independent): glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` that is
page-faulted in again on each call, and at ``B = 8``, ``L = 4096`` every ``(B, L, d_inner)`` activation is such a
block; at one batch element per slab they are reused from the heap. Measured at ``B = 8``, ``D = 256``, ``N = 16``,
``L = 4096``, fp32, one thread (forward+backward CPU time, loaded 2-core machine): 5.2 s before (2.6 s of it system
time, 1.16 M page faults), 2.1 s after; against the layer's own Linear layers 4.2-4.9x before, 2.0-2.5x after
(benchmarks/README.md).

**Step mode.** The state is ``(conv_state (B, conv_dim, d_conv), ssm_state (B, nheads, headdim, d_state))`` with
``conv_dim = d_inner + 2 G N``; ``conv_state`` holds the last ``d_conv`` *pre-conv* ``(x, B, C)`` columns, oldest
first, as in ``mamba_ssm``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_float, check_positive_int
from ..kernels.shift import causal_conv
from ..kernels.ssd import ssd_chunked
from .mixer import SequenceMixer, lengths_mask

__all__ = ["Mamba2", "RMSNormGated", "rmsnorm_gated"]


def rmsnorm_gated(y: torch.Tensor, z: torch.Tensor | None, weight: torch.Tensor | None, *, group_size: int,
                  eps: float = 1e-5, norm_before_gate: bool = False) -> torch.Tensor:
    """Gated, grouped RMSNorm over the last axis (``mamba_ssm``'s ``rms_norm_ref`` semantics).

    ``norm_before_gate=False``: ``g = y * silu(z)``, ``out = g / sqrt(mean_group(g^2) + eps) * weight``;
    ``True``: ``out = y / sqrt(mean_group(y^2) + eps) * weight * silu(z)``. The mean runs over contiguous groups of
    ``group_size`` channels; ``z=None`` means no gate, ``weight=None`` no scale.
    """
    d = y.shape[-1]
    if group_size < 1 or d % group_size:
        raise ValueError(f"group_size={group_size} must divide the last dimension {d}")
    if z is not None and not norm_before_gate:
        y = y * F.silu(z)
    yg = y.reshape(*y.shape[:-1], d // group_size, group_size)
    out = (yg * torch.rsqrt(yg.square().mean(-1, keepdim=True) + eps)).reshape(y.shape)
    if weight is not None:
        out = out * weight
    if z is not None and norm_before_gate:
        out = out * F.silu(z)
    return out


class RMSNormGated(nn.Module):
    """:func:`rmsnorm_gated` with a learned ``weight (d,)`` (init 1), as ``mamba_ssm``'s ``RMSNormGated``."""

    def __init__(self, d: int, *, eps: float = 1e-5, group_size: int | None = None,
                 norm_before_gate: bool = False) -> None:
        super().__init__()
        self.d = check_positive_int("d", d)
        self.group_size = d if group_size is None else check_positive_int("group_size", group_size)
        if d % self.group_size:
            raise ValueError(f"group_size={self.group_size} must divide d={d}")
        self.eps = float(eps)
        self.norm_before_gate = bool(norm_before_gate)
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, y: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return rmsnorm_gated(y, z, self.weight, group_size=self.group_size, eps=self.eps,
                             norm_before_gate=self.norm_before_gate)

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}, group_size={self.group_size}, norm_before_gate={self.norm_before_gate}"


def _check_range(name: str, value: object, *, lower: float, strict: bool) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers (low, high), got {value!r}") from None
    if math.isnan(lo) or math.isnan(hi) or (lo <= lower if strict else lo < lower) or hi < lo:
        raise ValueError(f"{name} must satisfy {lower} {'<' if strict else '<='} low <= high, got {value!r}")
    return lo, hi


class Mamba2(SequenceMixer):
    """Mamba-2 mixer (SSD): ``(B, L, d_model) -> (B, L, d_model)`` (module docstring).

    Args:
        d_model: model width ``D``.
        d_state: state size ``N`` per group.
        d_conv: kernel size of the causal depthwise conv over ``(x, B, C)``.
        expand: ``d_inner = expand * d_model``.
        headdim: channels ``P`` per head; must divide ``d_inner`` (``nheads = d_inner / headdim``).
        ngroups: ``G`` groups of ``(B, C)``; must divide ``nheads``.
        A_init_range: ``A`` drawn uniform in this range (``0 < low <= high``), stored as ``A_log = log A``.
        dt_min, dt_max: log-uniform range of the initial step sizes; ``dt_init_floor`` their floor.
        dt_limit: clamp of ``softplus(dt + dt_bias)`` (``(0, inf)``: none).
        chunk_size: chunk length ``T`` of the SSD algorithm (any ``L`` is accepted).
        conv_bias: bias in ``conv1d``; bias: biases in ``in_proj`` and ``out_proj``.
        D_has_hdim: ``D`` per channel ``(d_inner,)`` instead of per head ``(nheads,)``.
        rmsnorm: gated RMSNorm (``norm.weight``) before ``out_proj``; else ``y * silu(z)``.
        norm_before_gate: ``norm(y) * silu(z)`` instead of ``norm(y * silu(z))``.
        dropout: output dropout.
        lr: learning-rate hint for ``A_log``, ``dt_bias`` and ``D`` (``None``: the optimizer helper's ``ssm_lr``).
        validate: check inputs for NaN/inf (one reduction per call).
    """

    def __init__(self, d_model: int, d_state: int = 64, d_conv: int = 4, expand: int = 2, headdim: int = 64,
                 ngroups: int = 1, *, A_init_range: tuple[float, float] = (1, 16), dt_min: float = 0.001,
                 dt_max: float = 0.1, dt_init_floor: float = 1e-4, dt_limit: tuple[float, float] = (0.0, math.inf),
                 chunk_size: int = 64, conv_bias: bool = True, bias: bool = False, D_has_hdim: bool = False,
                 rmsnorm: bool = True, norm_before_gate: bool = False, dropout: float = 0.0,
                 lr: float | None = None, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.d_state = check_positive_int("d_state", d_state)
        self.d_conv = check_positive_int("d_conv", d_conv)
        self.expand = check_positive_int("expand", expand)
        self.headdim = check_positive_int("headdim", headdim)
        self.ngroups = check_positive_int("ngroups", ngroups)
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.d_inner = self.d_ssm = self.expand * self.d_model
        if self.d_inner % self.headdim:
            raise ValueError(f"headdim={self.headdim} must divide d_inner = expand * d_model = {self.d_inner}")
        self.nheads = self.d_inner // self.headdim
        if self.nheads % self.ngroups:
            raise ValueError(f"ngroups={self.ngroups} must divide nheads = d_inner / headdim = {self.nheads}")
        dt_min = check_positive_float("dt_min", dt_min)
        dt_max = check_positive_float("dt_max", dt_max)
        if dt_max < dt_min:
            raise ValueError(f"dt_max={dt_max} must be >= dt_min={dt_min}")
        dt_init_floor = check_positive_float("dt_init_floor", dt_init_floor, allow_zero=True)
        self.A_init_range = _check_range("A_init_range", A_init_range, lower=0.0, strict=True)
        self.dt_limit = _check_range("dt_limit", dt_limit, lower=0.0, strict=False)
        if lr is not None:
            check_positive_float("lr", lr)
        self.ssm_lr = lr
        self.D_has_hdim, self.rmsnorm = bool(D_has_hdim), bool(rmsnorm)
        self.norm_before_gate = bool(norm_before_gate)

        GN = self.ngroups * self.d_state
        self.conv_dim = self.d_inner + 2 * GN
        self.in_proj = nn.Linear(self.d_model, 2 * self.d_inner + 2 * GN + self.nheads, bias=bool(bias))
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, self.d_conv, groups=self.conv_dim,
                                padding=self.d_conv - 1, bias=bool(conv_bias))
        # dt log-uniform in [dt_min, dt_max], floored, stored as its inverse softplus
        dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_bias = self._ssm_param(dt + torch.log(-torch.expm1(-dt)))
        A = torch.empty(self.nheads).uniform_(*self.A_init_range)
        self.A_log = self._ssm_param(torch.log(A))
        self.D = self._ssm_param(torch.ones(self.d_inner if self.D_has_hdim else self.nheads))
        if self.rmsnorm:
            self.norm = RMSNormGated(self.d_inner, eps=1e-5, group_size=self.d_inner // self.ngroups,
                                     norm_before_gate=self.norm_before_gate)
        self.out_proj = nn.Linear(self.d_inner, self.d_model, bias=bool(bias))

    #: on CPU, :meth:`_forward` and :meth:`_prefill` run :meth:`_mix` on batch slabs whose widest activation has at
    #: most this many elements (16 MiB in float32): glibc serves larger blocks with a fresh ``mmap`` that is
    #: page-faulted in again on every call, smaller ones are reused from the heap (module docstring, "Speed")
    SLAB_ELEMENTS = 1 << 22

    def _ssm_param(self, value: torch.Tensor) -> nn.Parameter:
        p = nn.Parameter(value.to(torch.get_default_dtype()))
        p._no_weight_decay = True  # type: ignore[attr-defined]
        p._optim = {"lr": self.ssm_lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        return p

    # ------------------------------------------------------------------ pieces shared by forward and step
    def _split_in(self, zxbcdt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``in_proj`` output -> ``(z, xBC (pre-conv), dt (raw))`` along the last axis."""
        return torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.nheads], dim=-1)

    def _split_xbc(self, xBC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        GN = self.ngroups * self.d_state
        return torch.split(xBC, [self.d_inner, GN, GN], dim=-1)

    def _dt(self, dt: torch.Tensor) -> torch.Tensor:
        dt = F.softplus(dt + self.dt_bias.to(dt.dtype))
        lo, hi = self.dt_limit
        if lo > 0.0 or hi < math.inf:
            dt = dt.clamp(lo, hi)
        return dt

    def _D(self, dtype: torch.dtype) -> torch.Tensor:
        D = self.D.to(dtype)
        return D.reshape(self.nheads, self.headdim) if self.D_has_hdim else D

    def _out(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Gate, norm and ``out_proj`` of ``y (..., d_inner)``."""
        y = self.norm(y, z) if self.rmsnorm else y * F.silu(z)
        return self.out_proj(y)

    # ------------------------------------------------------------------ parallel mode
    def _mix(self, u: torch.Tensor, lengths: torch.Tensor | None,
             want_state: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        Bsz, L, _ = u.shape
        H, P, G, N = self.nheads, self.headdim, self.ngroups, self.d_state
        z, xBC, dt = self._split_in(self.in_proj(u))
        xc = F.silu(self._conv(xBC))
        x, Bm, Cm = self._split_xbc(xc)
        dt = self._dt(dt)
        if lengths is not None:  # dt = 0 at pads holds the state there
            dt = dt * lengths_mask(lengths, Bsz, L, u.device).to(dt.dtype)
        A = -torch.exp(self.A_log.to(u.dtype))
        out = ssd_chunked(x.reshape(Bsz, L, H, P), dt, A, Bm.reshape(Bsz, L, G, N), Cm.reshape(Bsz, L, G, N),
                          D=self._D(u.dtype), return_last_state=want_state, chunk_size=self.chunk_size)
        y, ssm_state = out if want_state else (out, None)
        y = self._out(y.reshape(Bsz, L, self.d_inner), z)
        if not want_state:
            return y, None
        # conv buffer: pre-conv (x, B, C) at positions lengths-d_conv .. lengths-1, zeros left of the start
        K = self.d_conv
        ends = torch.full((Bsz,), L, device=u.device) if lengths is None else lengths.to(u.device).long()
        idx = ends[:, None] + torch.arange(K, device=u.device)  # indices into the left-padded sequence
        xp = F.pad(xBC, (0, 0, K, 0))
        conv_state = xp[torch.arange(Bsz, device=u.device)[:, None], idx].transpose(1, 2)
        return y, (conv_state.contiguous(), ssm_state)

    def _conv(self, xBC: torch.Tensor) -> torch.Tensor:
        """``conv1d`` (causal, depthwise) of the pre-conv ``xBC (B, L, conv_dim)``, in that layout
        (:func:`~ptdssm.kernels.shift.causal_conv`)."""
        return causal_conv(xBC, self.conv1d.weight[:, 0], self.conv1d.bias)

    def _slab(self, u: torch.Tensor) -> int:
        """Batch elements per pass of :meth:`_mix`: on CPU, as many as keep the widest activation (``in_proj``'s
        output, ``L`` x ``in_proj.out_features`` per element) within :attr:`SLAB_ELEMENTS`, at least one; elsewhere
        the whole batch."""
        Bsz, L = u.shape[:2]
        if u.device.type != "cpu":
            return Bsz
        return max(1, min(Bsz, self.SLAB_ELEMENTS // max(1, L * self.in_proj.out_features)))

    def _by_slab(self, u: torch.Tensor, lengths: torch.Tensor | None, want_state: bool) -> list[Any]:
        """:meth:`_mix` of each batch slab (:meth:`_slab`), in order."""
        n = self._slab(u)
        if n >= u.shape[0]:
            return [self._mix(u, lengths, want_state)]
        lens = [None] * -(-u.shape[0] // n) if lengths is None else lengths.split(n)
        return [self._mix(us, ls, want_state) for us, ls in zip(u.split(n), lens, strict=True)]

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        parts = self._by_slab(u, lengths, want_state=False)
        return parts[0][0] if len(parts) == 1 else torch.cat([p[0] for p in parts])

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """One parallel pass: the conv buffer from the last ``d_conv`` real inputs, the SSD last state (exact, since
        ``dt = 0`` at the pads)."""
        parts = self._by_slab(u, lengths, want_state=True)
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p[0] for p in parts]), tuple(torch.cat([p[1][j] for p in parts]) for j in range(2))

    # ------------------------------------------------------------------ step mode
    def _init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        kw = {"dtype": self.compute_dtype(), "device": self._device()}
        return (torch.zeros(batch, self.conv_dim, self.d_conv, **kw),
                torch.zeros(batch, self.nheads, self.headdim, self.d_state, **kw))

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError(f"state must be a (conv_state, ssm_state) pair, got {type(state).__name__}")
        conv_state, ssm_state = (s.to(device=u_t.device, dtype=u_t.dtype) for s in state)
        Bsz = u_t.shape[0]
        H, P, G, N = self.nheads, self.headdim, self.ngroups, self.d_state
        if conv_state.shape != (Bsz, self.conv_dim, self.d_conv) or ssm_state.shape != (Bsz, H, P, N):
            raise ValueError(f"state shapes must be ({Bsz}, {self.conv_dim}, {self.d_conv}) and ({Bsz}, {H}, {P}, "
                             f"{N}), got {tuple(conv_state.shape)} and {tuple(ssm_state.shape)}")
        z, xBC, dt = self._split_in(self.in_proj(u_t))
        conv_state = torch.cat([conv_state[:, :, 1:], xBC[:, :, None]], dim=-1)
        xc = (conv_state * self.conv1d.weight[:, 0].to(u_t.dtype)).sum(-1)
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias.to(u_t.dtype)
        x, Bm, Cm = self._split_xbc(F.silu(xc))
        dt = self._dt(dt)  # (B, H)
        A = -torch.exp(self.A_log.to(u_t.dtype))
        x = x.reshape(Bsz, H, P)
        Bh = Bm.reshape(Bsz, G, N).repeat_interleave(H // G, dim=1)  # (B, H, N)
        Ch = Cm.reshape(Bsz, G, N).repeat_interleave(H // G, dim=1)
        ssm_state = (torch.exp(dt * A)[..., None, None] * ssm_state
                     + (dt[..., None] * x)[..., None] * Bh[:, :, None, :])
        D = self._D(u_t.dtype)
        y = (ssm_state @ Ch[..., None])[..., 0] + (D[:, None] if D.dim() == 1 else D) * x
        return self._out(y.reshape(Bsz, self.d_inner), z), (conv_state, ssm_state)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, expand={self.expand}, "
                f"headdim={self.headdim}, ngroups={self.ngroups}, nheads={self.nheads}, chunk_size={self.chunk_size}")
