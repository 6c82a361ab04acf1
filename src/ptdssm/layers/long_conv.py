r"""Long convolutions (Fu, Epstein, Nguyen, Thomas, Zhang, Dao, Rudra and Ré 2023, "Simple Hardware-Efficient Long
Convolutions for Sequence Modeling"): one explicit kernel per channel, learned tap by tap, kept smooth by
regularizers applied in every forward.

Per channel ``h`` a kernel ``K_h`` of ``L_k = kernel_len`` taps (default ``l_max``, the longest sequence the layer is
built for; a shorter ``kernel_len`` acts as zero taps beyond it):

.. math:: \tilde K = \operatorname{Squash}_\lambda(\operatorname{Smooth}_p(K)),\qquad
          y_t = \sum_{j=0}^{\min(t, L_k - 1)} \tilde K_{h,j}\, u_{t-j} + D_h u_t,

with Squash the soft threshold ``sign(k) max(|k| - lam, 0)`` and Smooth an average pooling of odd width ``p``
(:mod:`ptdssm.kernels.long_conv`), then kernel dropout (training only). The convolution is an FFT of size ``2L``
through :func:`ptdssm.kernels.fftconv.fft_conv_blh` (the ``D`` skip folded into the lag-0 tap). A sequence shorter
than ``L_k`` uses the first ``L`` taps (the others cannot reach an output); only the raw taps that reach an output
are regularized.

**Init** (the authors' code): ``"random"`` ``K ~ N(0, 0.002^2)`` (most taps start inside the squash dead zone
``|K| < lam``); ``"double_exp"`` ``K_{h,j} ~ N(0, 0.02^2) exp(-(j / L_k) (H/2)^{h/H})`` (decay rates spread over
the channels). ``D ~ N(0, 1)``.

**Learning rate.** The kernel carries the optimizer hint ``_optim = {"lr": lr, "weight_decay": 0}`` read by
:func:`ptdssm.optim.param_groups` (``lr=None``: the optimizer's ``ssm_lr``). The paper's LRA recipes train the
kernel at ``1e-4`` to ``1e-3`` against a global ``lr`` of ``0.01`` (weight decay ``0.05``), with ``lam``
``0.001``-``0.004`` and kernel dropout ``0.1``-``0.3``.

**Bidirectional** (``bidirectional=True``): a second kernel applied to the future, ``+ sum_j K_{b,j} u_{t+j}``
(a two-sided kernel, as the paper's Path-X model). The base class zeroes the pads before the convolution, so a
right-padded sequence's reverse pass sees its own samples only. No step mode.

**Step mode** (causal): the state is a buffer ``(B, H, L_k)`` of the last ``L_k`` inputs, newest first; one step
shifts it and takes one dot product per channel, ``O(H L_k)`` and exact. :meth:`LongConv.prefill` fills it from the
last ``L_k`` real inputs of each sequence (zeros before the start).

The paper's multi-channel head (``channels > 1`` followed by a ``C H -> H`` linear) is not offered: the house's
``ssm`` block (GELU, then a position-wise GLU linear) is the single-channel model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.long_conv import long_conv, long_conv_step, regularize
from .mixer import SequenceMixer

__all__ = ["LONG_CONV_INITS", "LongConv"]

LONG_CONV_INITS = ("random", "double_exp")


def _init_kernel(ch: int, H: int, Lk: int, init: str) -> torch.Tensor:
    """Initial kernel ``(ch, H, L_k)`` (module docstring)."""
    if init == "random":
        return torch.randn(ch, H, Lk) * 0.002
    j = torch.arange(Lk, dtype=torch.float64) / Lk
    rate = float(max(H // 2, 1)) ** (torch.arange(H, dtype=torch.float64) / H)  # (H,): 1 .. (H/2)^{(H-1)/H}
    window = torch.exp(-j[None, :] * rate[:, None])  # (H, L_k)
    return (torch.randn(ch, H, Lk, dtype=torch.float64) * 0.02 * window).to(torch.get_default_dtype())


class LongConv(SequenceMixer):
    """Long convolution layer: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths).

    Args:
        d_model: channels ``H``.
        l_max: the longest sequence the layer is built for (the kernel's default length).
        kernel_len: taps ``L_k`` per channel, ``<= l_max`` (default ``l_max``).
        bidirectional: add a kernel over the future (two-sided convolution); no step mode.
        lam: Squash threshold ``lambda >= 0`` (``0``: off).
        smooth: Smooth window width ``p`` (odd; ``1``: off).
        kernel_dropout: dropout on the regularized kernel taps (training only).
        init: ``"random"`` or ``"double_exp"``.
        lr: learning-rate hint for the kernel (``None``: the optimizer's ``ssm_lr``); never weight-decayed.
        D: include the skip ``D u``.
        dropout: output dropout.
        validate: check inputs for NaN/inf.
    """

    def __init__(self, d_model: int, l_max: int = 1024, *, kernel_len: int | None = None,
                 bidirectional: bool = False, lam: float = 0.003, smooth: int = 1, kernel_dropout: float = 0.0,
                 init: str = "random", lr: float | None = None, D: bool = True, dropout: float = 0.0,
                 validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.l_max = check_positive_int("l_max", l_max)
        self.kernel_len = self.l_max if kernel_len is None else check_positive_int("kernel_len", kernel_len)
        if self.kernel_len > self.l_max:
            raise ValueError(f"kernel_len={self.kernel_len} is longer than the sequence (l_max={self.l_max}): its "
                             f"taps beyond l_max never reach an output; use kernel_len <= l_max")
        self.bidirectional = bool(bidirectional)
        self.lam = check_positive_float("lam", lam, allow_zero=True)
        if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1 or smooth % 2 == 0:
            raise ValueError(f"smooth must be an odd window width >= 1 (1: off), got {smooth!r}")
        self.smooth = smooth
        kernel_dropout = float(kernel_dropout)
        if not 0.0 <= kernel_dropout < 1.0:
            raise ValueError(f"kernel_dropout must be in [0, 1), got {kernel_dropout}")
        self.init = check_choice("init", init, LONG_CONV_INITS)
        if lr is not None:
            check_positive_float("lr", lr)
        ch = 2 if self.bidirectional else 1
        self.kernel = nn.Parameter(_init_kernel(ch, self.d_model, self.kernel_len, self.init))
        self.kernel._optim = {"lr": lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.randn(self.d_model)) if D else None
        self.kernel_drop = nn.Dropout(kernel_dropout) if kernel_dropout > 0 else nn.Identity()

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, l_max={self.l_max}, kernel_len={self.kernel_len}, "
                f"bidirectional={self.bidirectional}, lam={self.lam}, smooth={self.smooth}, init={self.init!r}")

    # ------------------------------------------------------------------ kernel
    def regularized_kernel(self, n: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The kernel the layer convolves with, ``(ch, H, min(n, L_k))`` (``ch = 2`` when bidirectional: causal,
        anti-causal): Smooth, Squash, then kernel dropout (training), in ``dtype`` (default the compute dtype)."""
        k = self.kernel.to(dtype or self.compute_dtype())
        return self.kernel_drop(regularize(k, self.lam, self.smooth, n))

    def _skip(self, dtype: torch.dtype) -> torch.Tensor | None:
        return None if self.D is None else self.D.to(dtype)

    # ------------------------------------------------------------------ parallel mode
    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        k = self.regularized_kernel(u.shape[1], u.dtype)
        return long_conv(u, k[0], k[1] if self.bidirectional else None, self._skip(u.dtype))

    # ------------------------------------------------------------------ step mode
    def _no_step(self) -> None:
        if self.bidirectional:
            raise RuntimeError("LongConv(bidirectional=True) has no step mode: the anti-causal kernel needs future "
                               "inputs")

    def _init_state(self, batch: int) -> torch.Tensor:
        self._no_step()
        return torch.zeros(batch, self.d_model, self.kernel_len, dtype=self.compute_dtype(),
                           device=self.kernel.device)

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self._no_step()
        shape = (u_t.shape[0], self.d_model, self.kernel_len)
        if not isinstance(state, torch.Tensor) or tuple(state.shape) != shape:
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"state has shape {got}, expected {shape}; use init_state(batch)")
        k = self.regularized_kernel(dtype=u_t.dtype)[0]
        return long_conv_step(state.to(u_t.dtype), u_t, k, self._skip(u_t.dtype))

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs by :meth:`_forward`; the buffer holds the last ``L_k`` real inputs of each sequence, newest first
        (zeros before the start), gathered from ``u`` (already zero at the pads), so the pads change neither."""
        self._no_step()
        Bsz, L, H = u.shape
        Lk = self.kernel_len
        n = torch.full((Bsz,), L, device=u.device) if lengths is None else lengths.to(u.device).long()
        up = torch.nn.functional.pad(u, (0, 0, Lk, 0))  # (B, L_k + L, H): position t at index t + L_k
        idx = n[:, None] + Lk - 1 - torch.arange(Lk, device=u.device)[None, :]  # buf[j] = u[n - 1 - j]
        buf = torch.gather(up, 1, idx[..., None].expand(Bsz, Lk, H)).transpose(1, 2).contiguous()
        return self._forward(u, lengths), buf
