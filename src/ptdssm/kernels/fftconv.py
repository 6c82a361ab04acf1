r"""FFT convolution with zero padding to ``2L`` (linear, not circular).

Causal: ``y_t = sum_{s=0}^{t} k_s u_{t-s}``. Bidirectional (two kernels ``k_f``, ``k_b``):
``y_t = sum_{s=0}^{t} k_{f,s} u_{t-s} + sum_{s=0}^{L-1-t} k_{b,s} u_{t+s}``, i.e. a causal pass plus the same pass
run on the time-reversed input (both include the current position). Both are computed with one FFT of size ``2L``:
the two-sided kernel is laid out circularly, ``k[0] = k_f[0] + k_b[0]``, ``k[j] = k_f[j]``, ``k[2L-j] = k_b[j]``
(``0 < j < L``), ``k[L] = 0``. With inputs zeroed beyond each sequence's length, the reverse pass of a right-padded
sequence sees only its own samples, exactly as if it were reversed within its own length.

:func:`fft_conv_ref` is the plain definition (direct ``O(L^2)`` sums) that both fast paths are tested against.
"""

from __future__ import annotations

import torch

__all__ = ["fft_conv", "fft_conv_blh", "fft_conv_ref", "two_sided_kernel"]


def two_sided_kernel(k_fwd: torch.Tensor, k_bwd: torch.Tensor) -> torch.Tensor:
    """``(..., L)`` causal and anti-causal kernels -> ``(..., 2L)`` circular kernel (see module docstring)."""
    L = k_fwd.shape[-1]
    z = k_fwd.new_zeros(*k_fwd.shape[:-1], 1)
    back = k_bwd[..., 1:].flip(-1)
    return torch.cat([k_fwd[..., :1] + k_bwd[..., :1], k_fwd[..., 1:], z, back], dim=-1)[..., : 2 * L]


def _full_kernel(k: torch.Tensor, k_bwd: torch.Tensor | None, D: torch.Tensor | None, L: int) -> torch.Tensor:
    """``(H, L)`` causal (or ``(H, 2L)`` two-sided) kernel with the skip ``D`` folded into the lag-0 tap."""
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
    return k


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
    k = _full_kernel(k, k_bwd, D, L)
    kf = torch.fft.rfft(k, n=n)
    uf = torch.fft.rfft(u, n=n)
    return torch.fft.irfft(uf * kf, n=n)[..., :L]


# ---------------------------------------------------------------------------------------------- (B, L, H) layout
# The layers take and return (B, L, H) but the FFT runs along the last axis of a contiguous (B, H, L) tensor
# (an FFT along a strided axis was ~3x slower on CPU, measured). A 3-D ``transpose(1, 2).contiguous()`` goes through
# the generic strided copy (~150 ms for (16, 4096, 256) float32 on 2 threads); one 2-D copy per batch element takes
# ATen's cache-blocked transpose path instead (~48 ms). The autograd Function below keeps the backward in the same
# layout (no autograd transposes) and needs one FFT of the output gradient, one inverse FFT for the input gradient
# and one batch-summed product for the kernel gradient.

def _transpose_last2(x: torch.Tensor) -> torch.Tensor:
    """Contiguous ``x.transpose(1, 2)`` of a 3-D tensor, by blocked 2-D copies on CPU."""
    Bsz, R, C = x.shape
    if x.device.type != "cpu" or R * C < 4096 or torch.compiler.is_compiling():
        return x.transpose(1, 2).contiguous()
    x = x.contiguous()
    out = x.new_empty(Bsz, C, R)
    for b in range(Bsz):
        out[b].copy_(x[b].T)
    return out


def _conv_bhl(x: torch.Tensor, kf: torch.Tensor, n: int, keep_spectrum: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``irfft(rfft(x, n) kf)[..., :L]`` of a contiguous ``(B, H, L)`` ``x``; also returns ``rfft(x)`` if kept."""
    L = x.shape[-1]
    U = torch.fft.rfft(x, n=n)
    Y = U * kf if keep_spectrum else U.mul_(kf)
    return torch.fft.irfft(Y, n=n)[..., :L], U


class _FFTConvBLH(torch.autograd.Function):
    """``y = (k * u)[:L]`` (circular of size ``n`` with zero padding) for ``u (B, L, H)``, real ``k (H, n)``."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = k.shape[-1]
        kf = torch.fft.rfft(k)
        need_k = ctx.needs_input_grad[1]
        y, U = _conv_bhl(_transpose_last2(u), kf, n, keep_spectrum=need_k)
        ctx.save_for_backward(U if need_k else None, kf)
        ctx.n = n
        return _transpose_last2(y)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        U, kf = ctx.saved_tensors
        n = ctx.n
        L = g.shape[1]
        G = torch.fft.rfft(_transpose_last2(g), n=n)
        grad_u = grad_k = None
        if ctx.needs_input_grad[1]:
            # dk[j] = sum_{b,t} g[b, t] u[b, (t - j) mod n]: circular correlation, exact with the zero padding.
            grad_k = torch.fft.irfft((G * U.conj()).sum(0), n=n)
        if ctx.needs_input_grad[0]:
            # du[s] = sum_t g[t] k[(t - s) mod n]
            grad_u = _transpose_last2(torch.fft.irfft(G.mul_(kf.conj()), n=n)[..., :L])
        return grad_u, grad_k


def fft_conv_blh(u: torch.Tensor, k: torch.Tensor, k_bwd: torch.Tensor | None = None,
                 D: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`fft_conv` on ``(B, L, H)`` inputs and outputs (no transposed views; same result).

    Args:
        u: ``(B, L, H)`` real input.
        k, k_bwd, D: as :func:`fft_conv`.

    Returns:
        ``(B, L, H)`` contiguous output.
    """
    L = u.shape[1]
    n = 2 * L
    k = _full_kernel(k, k_bwd, D, L)
    k = torch.nn.functional.pad(k, (0, n - k.shape[-1])) if k.shape[-1] < n else k
    if torch.compiler.is_compiling():
        y = torch.fft.irfft(torch.fft.rfft(u.transpose(1, 2), n=n) * torch.fft.rfft(k), n=n)[..., :L]
        return y.transpose(1, 2)
    if torch.is_grad_enabled() and (u.requires_grad or k.requires_grad):
        return _FFTConvBLH.apply(u, k)
    kf = torch.fft.rfft(k)
    y, _ = _conv_bhl(_transpose_last2(u), kf, n, keep_spectrum=False)
    return _transpose_last2(y)


# ---------------------------------------------------------------------------------------------- reference
def fft_conv_ref(u: torch.Tensor, k: torch.Tensor, k_bwd: torch.Tensor | None = None,
                 D: torch.Tensor | None = None) -> torch.Tensor:
    """Plain definition of :func:`fft_conv` (same arguments, ``(B, H, L)`` layout): direct ``O(L^2)`` sums
    ``y_t = sum_{s<=t} k_s u_{t-s} + sum_{s<=L-1-t} k_bwd_s u_{t+s} + D u_t`` through a dense Toeplitz matrix."""
    L = u.shape[-1]

    def toeplitz(kk: torch.Tensor, sign: int) -> torch.Tensor:
        kk = torch.nn.functional.pad(kk, (0, max(0, L - kk.shape[-1])))[..., :L]
        idx = torch.arange(L, device=u.device)
        lag = sign * (idx[:, None] - idx[None, :])  # (L, L): t - j (causal) or j - t (anti-causal)
        return torch.where(lag >= 0, kk[..., lag.clamp(min=0)], torch.zeros((), dtype=kk.dtype))  # (H, L, L)

    y = torch.einsum("htj,bhj->bht", toeplitz(k, 1), u)
    if k_bwd is not None:
        y = y + torch.einsum("htj,bhj->bht", toeplitz(k_bwd, -1), u)
    if D is not None:
        y = y + D[:, None] * u
    return y
