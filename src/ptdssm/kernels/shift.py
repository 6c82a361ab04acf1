r"""Shift-register kernels: the shift SSM's kernel (H3) and short causal depthwise FIR filters (H3, Hyena).

**Shift SSM** (Fu, Dao et al. 2023, "Hungry Hungry Hippos", sec. 3.1). The state matrix is the down-shift
``A = S`` (ones on the sub-diagonal, ``S^N = 0``), so ``x_t = S x_{t-1} + B u_t`` keeps the last ``N`` inputs
(weighted by ``B``) and ``y_t = C x_t``. Its kernel is

.. math:: K_l = C S^l B = \sum_{i=l}^{N-1} C_i B_{i-l}, \qquad 0 \le l < N, \qquad K_l = 0 \text{ for } l \ge N,

the cross-correlation of ``C`` and ``B`` truncated to ``N`` taps. With the paper's ``B = e_1`` (first unit vector)
the kernel *is* ``C``: a learned causal FIR of length ``N``, and step mode is an exact shift register
(:func:`fir_step`). :func:`shift_ssm_kernel` computes ``K`` in one batched ``conv1d`` (or returns ``C`` when ``B``
is ``e_1``); :func:`shift_ssm_kernel_ref` takes the matrix powers ``S^l`` literally.

**Short causal FIR** (H3's and Hyena's short depthwise convolutions; Mamba's ``conv1d``):

.. math:: y_{t,c} = b_c + \sum_{j=0}^{K-1} w_{c,K-1-j}\, u_{t-j,c} \qquad (u_{s} = 0 \text{ for } s < 0),

``w (C, K)`` in ``nn.Conv1d``'s orientation (``w[:, K-1]`` multiplies the newest input). :func:`causal_conv` runs it
as ``K`` in-place shifted ``addcmul`` passes on the ``(B, L, C)`` tensor (no transposes, no padded copy; on CPU
faster than a depthwise ``F.conv1d`` for ``K <= 4``, as measured for Mamba), with a hand-written backward:
``du_s = sum_j w_{K-1-j} g_{s+j}`` (the same shifted passes, anti-causal) and ``dw_{K-1-j} = sum_{b,t} g_t
u_{t-j}`` (one multiply-reduce per tap). Autograd through the padded-slice form instead cost ~3x the forward in
backward (every slice's backward writes a full-size zero tensor). :func:`causal_conv_ref` is the plain double sum.
:func:`fir_step` is the same filter one position at a time from a buffer of the previous ``K - 1`` inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["causal_conv", "causal_conv_ref", "fir_step", "shift_ssm_kernel", "shift_ssm_kernel_ref"]


def shift_ssm_kernel(C: torch.Tensor, B: torch.Tensor | None = None) -> torch.Tensor:
    """Kernel ``K_l = C S^l B`` (``l < N``) of a shift SSM (module docstring).

    Args:
        C: ``(H, N)`` output vectors.
        B: ``(H, N)`` input vectors, or ``None`` for the paper's ``B = e_1`` (then ``K = C``).

    Returns:
        ``(H, N)`` kernel in ``C``'s dtype.
    """
    if B is None:
        return C
    if B.shape != C.shape:
        raise ValueError(f"B {tuple(B.shape)} and C {tuple(C.shape)} must have the same shape (H, N)")
    H, N = C.shape
    # K_l = sum_i C_i B_{i-l}: a cross-correlation of C with B over lags 0..N-1, one group per channel
    out = F.conv1d(F.pad(C, (0, N - 1))[None], B[:, None, :], groups=H)  # (1, H, N)
    return out[0]


def shift_ssm_kernel_ref(C: torch.Tensor, B: torch.Tensor | None = None) -> torch.Tensor:
    """Plain definition of :func:`shift_ssm_kernel`: the shift matrix ``S`` and ``K_l = C S^l B`` by explicit
    powers, one lag at a time."""
    H, N = C.shape
    if B is None:
        B = torch.zeros_like(C)
        B[:, 0] = 1.0
    S = torch.diag(torch.ones(N - 1, dtype=C.dtype, device=C.device), -1)
    x, taps = B[..., None], []  # (H, N, 1): S^l B
    for _ in range(N):
        taps.append((C[:, None, :] @ x)[:, 0, 0])
        x = S @ x
    return torch.stack(taps, -1)


def _conv_fwd(u: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The forward passes: ``y = b + w[:, K-1] u``, then ``y[s:] += w[:, K-1-s] u[:-s]`` for each lag ``s``."""
    L, K = u.shape[1], w.shape[-1]
    y = u * w[:, K - 1] if bias is None else torch.addcmul(bias, u, w[:, K - 1])
    for s in range(1, min(K, L)):
        y[:, s:].addcmul_(u[:, : L - s], w[:, K - 1 - s])
    return y


class _CausalConv(torch.autograd.Function):
    """:func:`causal_conv` with the shifted-pass backward of the module docstring."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u, w)
        ctx.has_bias = bias is not None
        return _conv_fwd(u, w, bias)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        u, w = ctx.saved_tensors
        L, K = u.shape[1], w.shape[-1]
        grad_u = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_u = g * w[:, K - 1]
            for s in range(1, min(K, L)):
                grad_u[:, : L - s].addcmul_(g[:, s:], w[:, K - 1 - s])
        if ctx.needs_input_grad[1]:
            taps = [(g[:, s:] * u[:, : L - s]).sum((0, 1)) if s < L else g.new_zeros(g.shape[-1])
                    for s in range(K - 1, -1, -1)]  # tap k multiplies the input k - (K - 1) steps back
            grad_w = torch.stack(taps, -1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum((0, 1))
        return grad_u, grad_w, grad_b


def causal_conv(u: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Causal depthwise FIR ``y_t = b + sum_j w[:, K-1-j] u_{t-j}`` (module docstring) in ``(B, L, C)`` layout.

    Args:
        u: ``(B, L, C)`` input.
        w: ``(C, K)`` taps, ``w[:, K-1]`` on the newest input (``nn.Conv1d(C, C, K, groups=C).weight[:, 0]``).
        bias: optional ``(C,)``.

    Returns:
        ``(B, L, C)`` in ``u``'s dtype.
    """
    w = w.to(u.dtype)
    bias = None if bias is None else bias.to(u.dtype)
    if torch.compiler.is_compiling():  # plain ops for the compiler: out-of-place shifted sums of a padded input
        L, K = u.shape[1], w.shape[-1]
        up = F.pad(u, (0, 0, K - 1, 0))
        y = up[:, :L] * w[:, 0] if bias is None else torch.addcmul(bias, up[:, :L], w[:, 0])
        for k in range(1, K):
            y = torch.addcmul(y, up[:, k:k + L], w[:, k])
        return y
    if torch.is_grad_enabled() and (u.requires_grad or w.requires_grad or (bias is not None and bias.requires_grad)):
        return _CausalConv.apply(u, w, bias)
    return _conv_fwd(u, w, bias)


def causal_conv_ref(u: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Plain definition of :func:`causal_conv`: for each ``t``, the sum over the taps of the inputs at ``t - j``
    (skipped before the start)."""
    Bsz, L, Cn = u.shape
    K = w.shape[-1]
    out = []
    for t in range(L):
        acc = torch.zeros(Bsz, Cn, dtype=u.dtype) if bias is None else bias.to(u.dtype).expand(Bsz, Cn).clone()
        for j in range(K):
            if t - j >= 0:
                acc = acc + w[:, K - 1 - j] * u[:, t - j]
        out.append(acc)
    return torch.stack(out, 1)


def fir_step(u_t: torch.Tensor, buf: torch.Tensor, w: torch.Tensor,
             bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One position of :func:`causal_conv` from a buffer of the previous ``K - 1`` inputs.

    Args:
        u_t: ``(B, C)`` newest input.
        buf: ``(B, K - 1, C)`` previous inputs, oldest first (zeros before the start).
        w, bias: as :func:`causal_conv`.

    Returns:
        ``(y_t (B, C), new buffer (B, K - 1, C))``.
    """
    window = torch.cat([buf, u_t[:, None]], dim=1)  # (B, K, C), oldest first: w[:, k] multiplies window[:, k]
    y = torch.einsum("bkc,ck->bc", window, w.to(u_t.dtype))
    if bias is not None:
        y = y + bias.to(u_t.dtype)
    return y, window[:, 1:]
