r"""Explicit long convolutions (Fu, Epstein et al. 2023, "Simple Hardware-Efficient Long Convolutions for Sequence
Modeling"): the kernel regularizers Squash and Smooth, and the convolution in ``(B, L, H)`` layout.

A long-convolution layer learns its kernel ``k (H, L_k)`` tap by tap. The paper's finding is that such kernels need
to be kept *smooth* (few, slowly varying non-zero taps); two regularizers, applied to the kernel in every forward:

- **Squash** (soft threshold, ``lam >= 0``): :math:`k_j \leftarrow \operatorname{sign}(k_j)\max(|k_j| - \lambda, 0)`.
  Computed as ``k - clamp(k, -lam, lam)`` (one fewer pass; equal for every ``k``, with the same subgradient: 1 where
  ``|k| > lam``, 0 inside the dead zone).
- **Smooth** (average pooling of odd width ``p``, stride 1, zero padding ``(p-1)/2`` on each side, dividing by
  ``p`` also at the edges): :math:`k_j \leftarrow \frac1p \sum_{i=-(p-1)/2}^{(p-1)/2} k_{j+i}` with
  :math:`k_j = 0` outside ``[0, L_k)``.

:func:`regularize` applies Smooth, then Squash (the order of the authors' code, safari's ``LongConvKernel``).
Only taps ``j < L`` reach an output of a length-``L`` sequence; :func:`regularize` can be asked for the first
``n`` taps only, which needs the raw taps ``j < n + (p-1)/2`` and nothing else (exact, and no work on taps that are
thrown away when the kernel is longer than the sequence).

The convolution is :func:`ptdssm.kernels.fftconv.fft_conv_blh` (FFT of size ``2L``, kernel zero-padded or truncated
to ``L``): causal :math:`y_t = \sum_{j=0}^{\min(t, L_k-1)} k_j u_{t-j} + D u_t`, or two-sided with a second kernel
``k_b`` applied to the future, :math:`+\sum_{j} k_{b,j} u_{t+j}`. :func:`long_conv_step` is one step of the causal
convolution from a buffer of the last ``L_k`` inputs (newest first), ``O(H L_k)`` per step and exact.

The ``*_ref`` functions are the plain definitions (Python loops over taps and positions) the fast paths are tested
against (``tests/kernels/test_long_conv.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .fftconv import fft_conv_blh

__all__ = ["long_conv", "long_conv_ref", "long_conv_step", "regularize", "smooth", "smooth_ref", "squash",
           "squash_ref"]


def _check_width(width: int) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or width % 2 == 0:
        raise ValueError(f"smooth width must be an odd integer >= 1, got {width!r}")
    return width


def squash(k: torch.Tensor, lam: float) -> torch.Tensor:
    """Soft threshold ``sign(k) max(|k| - lam, 0)`` elementwise, as ``k - clamp(k, -lam, lam)`` (any shape)."""
    if lam < 0:
        raise ValueError(f"squash threshold lam must be >= 0, got {lam}")
    return k if lam == 0 else k - k.clamp(-lam, lam)


def smooth(k: torch.Tensor, width: int) -> torch.Tensor:
    """Average pooling of odd ``width`` along the last axis, zero padded, ``(..., L_k) -> (..., L_k)``:
    ``out_j = (1/width) sum_{|i| <= (width-1)/2} k_{j+i}`` (taps outside ``[0, L_k)`` count as zeros)."""
    width = _check_width(width)
    if width == 1:
        return k
    shape = k.shape
    out = F.avg_pool1d(k.reshape(-1, 1, shape[-1]), width, stride=1, padding=width // 2, count_include_pad=True)
    return out.reshape(shape)


def regularize(k: torch.Tensor, lam: float, width: int = 1, n: int | None = None) -> torch.Tensor:
    """``squash(smooth(k, width), lam)`` restricted to the first ``n`` taps (default all): ``(..., L_k) ->
    (..., min(n, L_k))``. Only the raw taps ``j < n + (width-1)/2`` are read, which is exact (module docstring)."""
    Lk = k.shape[-1]
    n = Lk if n is None else min(int(n), Lk)
    k = k[..., : min(Lk, n + _check_width(width) // 2)]
    return squash(smooth(k, width)[..., :n], lam)


def long_conv(u: torch.Tensor, k: torch.Tensor, k_bwd: torch.Tensor | None = None,
              D: torch.Tensor | None = None) -> torch.Tensor:
    """Causal (or two-sided) convolution of ``u (B, L, H)`` with explicit kernels ``k (H, L_k)`` (and ``k_bwd``),
    plus ``D (H,) * u``: :func:`~ptdssm.kernels.fftconv.fft_conv_blh` (a kernel longer than ``L`` is truncated, a
    shorter one zero-padded). Returns ``(B, L, H)``."""
    return fft_conv_blh(u, k, k_bwd, D)


def long_conv_step(buf: torch.Tensor, u_t: torch.Tensor, k: torch.Tensor,
                   D: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One causal step: ``buf (B, H, L_k)`` holds the last ``L_k`` inputs newest first (``buf[..., j] = u_{t-1-j}``,
    zeros before the start). Returns ``(y_t (B, H), new buf)`` with ``y_t = sum_j k_j u_{t-j} + D u_t``."""
    buf = torch.cat([u_t[..., None], buf[..., :-1]], dim=-1)
    y = (buf * k).sum(-1)
    if D is not None:
        y = y + D * u_t
    return y, buf


# ---------------------------------------------------------------------------------------------- references
def squash_ref(k: torch.Tensor, lam: float) -> torch.Tensor:
    """Plain definition of :func:`squash`: ``sign(k) * max(|k| - lam, 0)`` element by element."""
    flat = k.reshape(-1)
    out = [torch.sign(x) * torch.clamp(torch.abs(x) - lam, min=0.0) for x in flat.unbind(0)]
    return torch.stack(out).reshape(k.shape)


def smooth_ref(k: torch.Tensor, width: int) -> torch.Tensor:
    """Plain definition of :func:`smooth`: for each tap ``j`` the sum of the in-range taps ``j + i``,
    ``|i| <= (width-1)/2``, divided by ``width``."""
    width = _check_width(width)
    Lk, r = k.shape[-1], width // 2
    taps = k.unbind(-1)
    out = []
    for j in range(Lk):
        acc = torch.zeros_like(taps[0])
        for i in range(-r, r + 1):
            if 0 <= j + i < Lk:
                acc = acc + taps[j + i]
        out.append(acc / width)
    return torch.stack(out, -1)


def long_conv_ref(u: torch.Tensor, k: torch.Tensor, k_bwd: torch.Tensor | None = None,
                  D: torch.Tensor | None = None) -> torch.Tensor:
    """Plain definition of :func:`long_conv` (``(B, L, H)``): for every output position ``t`` the direct sums
    ``sum_{j <= min(t, L_k - 1)} k_j u_{t-j}`` (+ ``sum_{j <= min(L-1-t, L_k - 1)} k_bwd_j u_{t+j}``) + ``D u_t``."""
    L, Lk = u.shape[1], k.shape[-1]
    xs = u.unbind(1)
    out = []
    for t in range(L):
        y = torch.zeros_like(xs[0])
        for j in range(min(t + 1, Lk)):
            y = y + k[:, j] * xs[t - j]
        if k_bwd is not None:
            for j in range(min(L - t, k_bwd.shape[-1])):
                y = y + k_bwd[:, j] * xs[t + j]
        if D is not None:
            y = y + D * xs[t]
        out.append(y)
    return torch.stack(out, 1)
