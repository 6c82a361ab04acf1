r"""Mamba-1 (Gu and Dao 2023, "S6"): a selective state-space mixer, ``(B, L, H) -> (B, L, H)``.

With ``E = expand * H`` inner channels, ``N = d_state`` and ``R = dt_rank`` (``ceil(H / 16)`` for ``"auto"``):

.. math::
    (x, z) &= W_{in} u \quad (E \text{ each}), \qquad x \leftarrow \operatorname{silu}(\operatorname{conv}_{d\_conv}(x))
        \quad\text{(causal, depthwise)},\\
    (\delta, B_t, C_t) &= W_x x \quad (R, N, N), \qquad
        \Delta_t = \operatorname{softplus}(W_{dt}\, \delta_t + b_{dt}) \in \mathbb{R}^E,\qquad A = -\exp(A_{log}),\\
    h_t &= \exp(\Delta_t A) \odot h_{t-1} + (\Delta_t x_t) B_t^\top, \qquad
        y_t = h_t C_t + D \odot x_t, \qquad \text{out}_t = W_{out}\,(y_t \odot \operatorname{silu}(z_t)),

per channel ``c`` and state ``n`` (``h (E, N)``; ``B_t, C_t (N,)`` shared by all channels). ``A`` is discretized by
ZOH and ``B`` by Euler (``Delta B x``), exactly as ``mamba_ssm`` does, so loaded weights give the original's outputs.
The scan is :func:`ptdssm.kernels.selective_scan.selective_scan` (channels first, ``(B, E, L)``).

**Parameters** carry ``mamba_ssm``'s ``Mamba`` names and shapes, so its ``state_dict`` loads as is:
``in_proj (2E, H)`` (+ bias if ``bias``), ``conv1d.weight (E, 1, d_conv)``, ``conv1d.bias (E,)`` (if
``conv_bias``), ``x_proj (R + 2N, E)``, ``dt_proj.weight (E, R)``, ``dt_proj.bias (E,)``, ``A_log (E, N)``,
``D (E,)``, ``out_proj (H, E)`` (+ bias). About ``3 * expand * H^2`` parameters.

**Init** (the paper's): ``A_log = log(1..N)`` for every channel (S4D-Real, ``A = -(n+1)``); ``D = 1``;
``dt`` log-uniform in ``[dt_min, dt_max]``, floored at ``dt_init_floor``, stored as its inverse softplus in
``dt_proj.bias``; ``dt_proj.weight`` uniform in ``+-dt_scale / sqrt(R)`` (``dt_init="constant"``: that value);
the other layers PyTorch's defaults. ``A_log``, ``D`` and ``dt_proj.bias`` carry the optimizer hint
``_optim = {"weight_decay": 0.0}`` (no decay; learning rate ``ssm_lr`` if :func:`ptdssm.optim.param_groups` is given
one, else ``lr``) and ``mamba_ssm``'s ``_no_weight_decay = True``.

**Padding** (``lengths``): the base zeroes the inputs at pads; here ``x`` is zeroed there after ``in_proj`` too
(its bias) and ``Delta = 0`` exactly at pads (softplus of the bias is not 0), so ``exp(0 A) = 1`` and ``0 B x = 0``:
the state is held over the pads. :meth:`Mamba.prefill` is closed form: the last state of the full scan *is* the state at
``lengths - 1``, and the conv buffer is gathered from the last ``d_conv`` real inputs (zeros on the left when
``lengths < d_conv``).

**Bidirectional** (``bidirectional=True``, as the "v2" bidirectional Mamba of Vision Mamba, and with its names): a
second scan on the time-reversed ``x`` with its own ``conv1d_b``, ``x_proj_b``, ``dt_proj_b``, ``A_b_log`` and
``D_b``; ``in_proj``, the gate ``z`` and ``out_proj`` are shared and the two directions' ``y`` are summed before the
gate. A right-padded sequence reversed puts its pads first; with ``x = 0`` and ``Delta = 0`` there the reverse state
stays exactly zero until the first real position and the conv sees zeros, as in the unpadded run, so a plain flip of
the masked tensors is exact. No step mode (the reverse scan needs future inputs).

**Step mode:** the state is ``(conv_state (B, E, d_conv), ssm_state (B, E, N))`` (newest input last, as
``mamba_ssm``); one step rolls the buffer, applies the conv, SiLU, ``x_proj``, ``Delta``, then
``h <- exp(Delta A) h + Delta x B`` and ``y = h C + D x``, gated and projected.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.selective_scan import selective_scan
from ._proj import linear
from .mixer import SequenceMixer, lengths_mask

__all__ = ["Mamba"]

_NO_DECAY = {"weight_decay": 0.0}


def _hint(p: nn.Parameter) -> nn.Parameter:
    p._optim = dict(_NO_DECAY)  # type: ignore[attr-defined]
    p._no_weight_decay = True  # type: ignore[attr-defined]
    return p


class Mamba(SequenceMixer):
    """Mamba-1 selective SSM mixer: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths and the names).

    Args:
        d_model: channels ``H``.
        d_state: state size ``N`` per inner channel.
        d_conv: kernel size of the causal depthwise conv.
        expand: inner channels ``E = int(expand * d_model)``.
        dt_rank: rank ``R`` of the ``Delta`` projection, or ``"auto"`` (``ceil(d_model / 16)``).
        dt_min, dt_max: log-uniform range of the initial step sizes.
        dt_init: ``"random"`` (uniform ``dt_proj.weight``) or ``"constant"``.
        dt_scale: scale of the ``dt_proj.weight`` init.
        dt_init_floor: lower clamp of the initial step sizes.
        conv_bias: bias in ``conv1d``.
        bias: biases in ``in_proj`` and ``out_proj``.
        bidirectional: add a reverse-time scan (module docstring); no step mode.
        dropout: output dropout.
        validate: check inputs for NaN/inf (one reduction per call).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2, dt_rank: int | str = "auto",
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init: str = "random", dt_scale: float = 1.0,
                 dt_init_floor: float = 1e-4, conv_bias: bool = True, bias: bool = False, bidirectional: bool = False,
                 dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        H = self.d_model
        self.d_state = N = check_positive_int("d_state", d_state)
        self.d_conv = check_positive_int("d_conv", d_conv)
        self.expand = check_positive_float("expand", expand)
        self.d_inner = E = int(self.expand * H)
        if E < 1:
            raise ValueError(f"expand * d_model must be >= 1, got expand={expand}, d_model={H}")
        self.dt_rank = R = math.ceil(H / 16) if dt_rank == "auto" else check_positive_int("dt_rank", dt_rank)
        dt_min, dt_max = check_positive_float("dt_min", dt_min), check_positive_float("dt_max", dt_max)
        if dt_min > dt_max:
            raise ValueError(f"dt_min must be <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        self.dt_init = check_choice("dt_init", dt_init, ("random", "constant"))
        dt_scale = check_positive_float("dt_scale", dt_scale)
        dt_init_floor = check_positive_float("dt_init_floor", dt_init_floor, allow_zero=True)
        self.bidirectional = bool(bidirectional)

        self.in_proj = nn.Linear(H, 2 * E, bias=bool(bias))
        dirs = ("", "_b") if self.bidirectional else ("",)
        for sfx in dirs:
            self.add_module("conv1d" + sfx, nn.Conv1d(E, E, self.d_conv, groups=E, padding=self.d_conv - 1,
                                                      bias=bool(conv_bias)))
            self.add_module("x_proj" + sfx, nn.Linear(E, R + 2 * N, bias=False))
            dt_proj = nn.Linear(R, E, bias=True)
            self.add_module("dt_proj" + sfx, dt_proj)
            std = R ** -0.5 * dt_scale
            with torch.no_grad():
                if self.dt_init == "constant":
                    dt_proj.weight.fill_(std)
                else:
                    dt_proj.weight.uniform_(-std, std)
                u = torch.rand(E)
                dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_init_floor)
                dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            _hint(dt_proj.bias)
            dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]
            A = torch.arange(1.0, N + 1).repeat(E, 1)  # S4D-Real, in the default dtype
            # Vision Mamba's names for the reverse direction: A_b_log, D_b
            self.register_parameter("A_b_log" if sfx else "A_log", _hint(nn.Parameter(torch.log(A))))
            self.register_parameter("D" + sfx, _hint(nn.Parameter(torch.ones(E))))
        self.out_proj = nn.Linear(E, H, bias=bool(bias))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, d_inner={self.d_inner}, "
                f"dt_rank={self.dt_rank}, bidirectional={self.bidirectional}")

    # ------------------------------------------------------------------ parallel mode
    def _scan(self, x: torch.Tensor, z: torch.Tensor | None, mask: torch.Tensor | None, sfx: str,
              want_state: bool) -> Any:
        """One direction, time-major: ``x (L, B, E)`` before the conv (zero at pads), ``z (L, B, E)`` or ``None``,
        ``mask (L, B, 1)`` of the real positions (``Delta = 0`` elsewhere) -> ``y (B, E, L)`` (a view of a
        time-major tensor), and the last state ``(B, E, N)`` with ``want_state``.

        Time-major and contiguous: the scan's own time-major copies are then free, its gradients (time-major) have
        the strides of the tensors passed in (``torch.compile``'s backward graph relies on that), and the causal
        depthwise conv is ``d_conv`` shifted ``addcmul`` (2-3x faster forward+backward than ``F.conv1d`` on CPU)."""
        conv, x_proj, dt_proj = (getattr(self, n + sfx) for n in ("conv1d", "x_proj", "dt_proj"))
        A_log, D = (self.A_b_log, self.D_b) if sfx else (self.A_log, self.D)
        dtype, L, K = x.dtype, x.shape[0], self.d_conv
        w = conv.weight[:, 0].to(dtype)  # (E, K); w[:, K-1] multiplies the newest input
        xp = F.pad(x, (0, 0, 0, 0, K - 1, 0))
        xc = xp[:L] * w[:, 0] if conv.bias is None else torch.addcmul(conv.bias.to(dtype), xp[:L], w[:, 0])
        for k in range(1, K):
            xc = torch.addcmul(xc, xp[k:k + L], w[:, k])
        xc = F.silu(xc)  # (L, B, E)
        dt, Bm, Cm = linear(xc, x_proj).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight.to(dtype))  # (L, B, E), bias added below
        bias = dt_proj.bias.to(dtype)
        if mask is None:
            kw: dict[str, Any] = {"delta_bias": bias, "delta_softplus": True}
        else:  # Delta exactly 0 at pads: the state is held there
            delta = F.softplus(delta + bias) * mask
            kw = {}
        return selective_scan(xc.permute(1, 2, 0), delta.permute(1, 2, 0), -torch.exp(A_log.to(dtype)),
                              Bm.permute(1, 2, 0), Cm.permute(1, 2, 0), D.to(dtype),
                              None if z is None else z.permute(1, 2, 0), return_last_state=want_state, **kw)

    def _mix(self, u: torch.Tensor, mask: torch.Tensor | None, want_state: bool = False) -> Any:
        """``u (B, L, H)`` (zero at pads), ``mask (B, L, 1)`` -> ``out (B, L, H)``; with ``want_state`` also ``x``
        before the conv ``(L, B, E)`` and the last ssm state ``(B, E, N)``."""
        x, z = linear(u.transpose(0, 1), self.in_proj).chunk(2, dim=-1)  # (L, B, E) each
        m = None if mask is None else mask.transpose(0, 1)  # (L, B, 1)
        if m is not None:
            x = x * m  # in_proj's bias must not reach the conv (or the state) from the pads
        h = None
        if not self.bidirectional:
            res = self._scan(x, z, m, "", want_state)
            y, h = res if want_state else (res, None)
        else:  # reversing a right-padded sequence puts its pads first, where x = 0 and Delta = 0: exact
            y = self._scan(x, None, m, "", False)
            y_b = self._scan(x.flip(0), None, None if m is None else m.flip(0), "_b", False)
            y = (y + y_b.flip(-1)) * F.silu(z.permute(1, 2, 0))
        out = linear(y.permute(2, 0, 1), self.out_proj).transpose(0, 1).contiguous()
        return (out, x, h) if want_state else out

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        mask = None if lengths is None else lengths_mask(lengths, u.shape[0], u.shape[1], u.device).to(u.dtype)
        return self._mix(u, mask)

    # ------------------------------------------------------------------ step mode
    def _no_step(self) -> None:
        if self.bidirectional:
            raise RuntimeError("Mamba(bidirectional=True) has no step mode: the reverse scan needs future inputs")

    def _init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        self._no_step()
        kw = {"dtype": self.compute_dtype(), "device": self.A_log.device}
        return (torch.zeros(batch, self.d_inner, self.d_conv, **kw),
                torch.zeros(batch, self.d_inner, self.d_state, **kw))

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        self._no_step()
        Bsz, E, N, K = u_t.shape[0], self.d_inner, self.d_state, self.d_conv
        if not (isinstance(state, (tuple, list)) and len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state)
                and tuple(state[0].shape) == (Bsz, E, K) and tuple(state[1].shape) == (Bsz, E, N)):
            raise ValueError(f"state must be (conv_state ({Bsz}, {E}, {K}), ssm_state ({Bsz}, {E}, {N})); "
                             "use init_state(batch)")
        dtype = u_t.dtype
        conv_state, h = state[0].to(dtype), state[1].to(dtype)  # a state made before .double() too
        x, z = linear(u_t, self.in_proj).chunk(2, dim=-1)  # (B, E)
        conv_state = torch.cat([conv_state[..., 1:], x[..., None]], dim=-1)
        x = (conv_state * self.conv1d.weight[:, 0].to(dtype)).sum(-1)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias.to(dtype)
        x = F.silu(x)
        dt, Bm, Cm = linear(x, self.x_proj).split([self.dt_rank, N, N], dim=-1)
        delta = F.softplus(linear(dt, self.dt_proj))  # (B, E)
        A = -torch.exp(self.A_log.to(dtype))
        h = torch.exp(delta[..., None] * A) * h + (delta * x)[..., None] * Bm[:, None, :]
        y = torch.matmul(h, Cm[..., None]).squeeze(-1) + self.D.to(dtype) * x
        y = y * F.silu(z)
        return linear(y, self.out_proj), (conv_state, h)

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """One parallel pass (module docstring): the last scan state and the conv buffer gathered from the last
        ``d_conv`` real inputs; exact, the pads change neither."""
        self._no_step()
        Bsz, L, _ = u.shape
        m = None if lengths is None else lengths_mask(lengths, Bsz, L, u.device).to(u.dtype)
        y, xs, h = self._mix(u, m, want_state=True)
        K = self.d_conv
        n = torch.full((Bsz,), L, device=u.device) if lengths is None else lengths.to(u.device).long()
        xp = F.pad(xs, (0, 0, 0, 0, K, 0))  # (K + L, B, E): real position t at t + K, the last K at n .. n+K-1
        idx = (n[None, :] + torch.arange(K, device=u.device)[:, None])[..., None].expand(K, Bsz, self.d_inner)
        conv_state = torch.gather(xp, 0, idx).permute(1, 2, 0).contiguous()  # (B, E, K)
        return y, (conv_state, h)
