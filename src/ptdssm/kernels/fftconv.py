r"""FFT convolution with zero padding to ``2L`` (linear, not circular).

Causal: ``y_t = sum_{s=0}^{t} k_s u_{t-s}``. Bidirectional (two kernels ``k_f``, ``k_b``):
``y_t = sum_{s=0}^{t} k_{f,s} u_{t-s} + sum_{s=0}^{L-1-t} k_{b,s} u_{t+s}``, i.e. a causal pass plus the same pass
run on the time-reversed input (both include the current position). Both are computed with one FFT of size ``2L``:
the two-sided kernel is laid out circularly, ``k[0] = k_f[0] + k_b[0]``, ``k[j] = k_f[j]``, ``k[2L-j] = k_b[j]``
(``0 < j < L``), ``k[L] = 0``. With inputs zeroed beyond each sequence's length, the reverse pass of a right-padded
sequence sees only its own samples, exactly as if it were reversed within its own length.
"""

from __future__ import annotations

import torch

__all__ = ["fft_conv", "two_sided_kernel"]


def two_sided_kernel(k_fwd: torch.Tensor, k_bwd: torch.Tensor) -> torch.Tensor:
    """``(..., L)`` causal and anti-causal kernels -> ``(..., 2L)`` circular kernel (see module docstring)."""
    L = k_fwd.shape[-1]
    z = k_fwd.new_zeros(*k_fwd.shape[:-1], 1)
    back = k_bwd[..., 1:].flip(-1)
    return torch.cat([k_fwd[..., :1] + k_bwd[..., :1], k_fwd[..., 1:], z, back], dim=-1)[..., : 2 * L]


def fft_conv(u: torch.Tensor, k: torch.Tensor, k_bwd: torch.Tensor | None = None,
             D: torch.Tensor | None = None) -> torch.Tensor:
    """Linear convolution of ``u`` with ``k`` along the last axis, optionally two-sided, plus ``D u``.

    Args:
        u: ``(B, H, L)`` real input.
        k: ``(H, L')`` causal kernel, ``L' <= L`` (shorter kernels are zero-padded).
        k_bwd: optional ``(H, L')`` anti-causal kernel (bidirectional).
        D: optional ``(H,)`` skip.

    Returns:
        ``(B, H, L)`` output in ``u``'s dtype.
    """
    L = u.shape[-1]
    n = 2 * L
    if k.shape[-1] < L:
        k = torch.nn.functional.pad(k, (0, L - k.shape[-1]))
        if k_bwd is not None:
            k_bwd = torch.nn.functional.pad(k_bwd, (0, L - k_bwd.shape[-1]))
    k = k[..., :L]
    if k_bwd is not None:
        k = two_sided_kernel(k, k_bwd[..., :L])
    if D is not None:
        # D u is a lag-0 tap: fold it into the kernel instead of two more passes over (B, H, L).
        k = torch.cat([k[..., :1] + D[:, None].to(k.dtype), k[..., 1:]], dim=-1)
    kf = torch.fft.rfft(k, n=n)
    uf = torch.fft.rfft(u, n=n)
    return torch.fft.irfft(uf * kf, n=n)[..., :L]
