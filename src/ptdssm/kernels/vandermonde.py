r"""Diagonal (S4D / Vandermonde) convolution kernel without an ``(H, N, L)`` complex tensor.

.. math:: K_{s,h,l} = \operatorname{Re} \sum_n c_{s,h,n} \, z_{h,n}^{\,l}, \qquad l = 0, \dots, L-1,

with ``z = Lambda_bar = exp(log_z)`` and ``c`` the folded ``C B_bar`` coefficients (times 2 with conjugate symmetry).

Blocked powers: write ``l = b j + i`` with ``0 <= i < b`` and ``0 <= j < ceil(L/b)``, ``b ~ sqrt(L)``. Then
``z^l = z^i z^{bj}`` and, per channel ``h``,

.. math:: K_{h, bj+i} = \operatorname{Re} \sum_n (c_n z_n^i)(z_n^{bj})
        = \sum_n \operatorname{Re}(c_n z_n^i)\operatorname{Re}(z_n^{bj})
          - \operatorname{Im}(c_n z_n^i)\operatorname{Im}(z_n^{bj}),

a real batched matmul ``(H, ceil(L/b), 2m) @ (H, 2m, b)`` between two small tables of ``O(H m sqrt(L))`` entries.
Why: the naive form needs ``H m L`` complex exponentials (60% of the public S4D forward on CPU, where a complex ``exp``
costs ~15x a real one) and an ``(H, m, L)`` complex tensor (about 1 GB per layer at Path-X). Here only
``2 H m sqrt(L)`` powers are evaluated (by doubling in complex128, so that the phase does not lose digits at
large ``k``), and the ``H m L`` multiply-adds run in GEMM. At H=256, m=32,
L=4096 this takes ~5 ms on 2 CPU cores versus ~1.1 s for the complex ``exp`` alone.
"""

from __future__ import annotations

import math

import torch

__all__ = ["vandermonde_kernel", "krylov_kernel", "powers", "default_block"]


def default_block(L: int) -> int:
    """Block size ``b``: the power of two nearest above ``sqrt(L)`` (tables of ``b`` and ``ceil(L/b)`` columns)."""
    return 1 << max(0, math.ceil(math.log2(max(L, 1)) / 2))


def _table_dtype(t: torch.Tensor) -> torch.dtype:
    # float64 for the (small) power tables; MPS has no float64.
    return torch.float32 if t.device.type == "mps" else torch.float64


def powers(log_z: torch.Tensor, n: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of ``z^(stride k)``, ``k = 0..n-1``, as ``(..., m, n)`` float64 tensors.

    One complex ``exp`` per mode, then doubling (``[T, T * w]``, ``w <- w^2``): ``log2 n`` complex multiplies in
    complex128, whose rounding (~``n`` eps64) is far below fp32's; float64 ``sin``/``cos`` over the whole table were
    ~10x slower on CPU.
    """
    hi = _table_dtype(log_z)
    cplx = torch.complex128 if hi == torch.float64 else torch.complex64
    w = torch.exp(log_z.to(cplx) * float(stride))
    # The power index is built along a leading axis (a ``cat`` there is a plain block copy; along the last axis of a
    # complex tensor it was ~40% of the S4D kernel time on CPU) and moved last as a view.
    out = torch.ones(1, *log_z.shape, dtype=cplx, device=log_z.device)
    while out.shape[0] < n:
        out = torch.cat([out, out * w], dim=0)
        w = w * w
    out = out[:n].movedim(0, -1)
    return out.real, out.imag


def vandermonde_kernel(c: torch.Tensor, log_z: torch.Tensor, L: int, block: int | None = None) -> torch.Tensor:
    """``K = Re sum_n c_n z_n^l`` for ``l < L`` (see module docstring).

    Args:
        c: ``(*S, *G, m)`` complex coefficients; ``*S`` are extra leading dims (e.g. 2 directions) broadcast over
            the ``*G`` dims of ``log_z``.
        log_z: ``(*G, m)`` complex logs of the discrete eigenvalues.
        L: kernel length.
        block: block size ``b`` (default :func:`default_block`).

    Returns:
        ``(*S, *G, L)`` real kernel in the real dtype of ``c``.
    """
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    G, m = log_z.shape[:-1], log_z.shape[-1]
    if tuple(c.shape[c.dim() - len(G) - 1:]) != (*G, m):
        raise ValueError(f"c {tuple(c.shape)} does not end with log_z's shape {tuple(log_z.shape)}")
    S = c.shape[: c.dim() - len(G) - 1]
    real = c.real.dtype
    b = block or default_block(L)
    nb = -(-L // b)
    g = math.prod(G)
    s = math.prod(S)
    p_re, p_im = powers(log_z.reshape(g, m), b)  # (g, m, b): z^i
    q_re, q_im = powers(log_z.reshape(g, m), nb, stride=b)  # (g, m, nb): z^(bj)
    cc = c.reshape(s, g, m, 1)
    cre, cim = cc.real, cc.imag
    # left = c z^i, (s, g, m, b); cast the tables to the working dtype before the big contraction.
    p_re, p_im, q_re, q_im = (t.to(real) for t in (p_re, p_im, q_re, q_im))
    left_re = cre * p_re - cim * p_im
    left_im = cre * p_im + cim * p_re
    lhs = torch.cat([q_re, q_im], dim=1).transpose(1, 2)  # (g, nb, 2m)
    rhs = torch.cat([left_re, -left_im], dim=2)  # (s, g, 2m, b)
    rhs = rhs.permute(1, 2, 0, 3).reshape(g, 2 * m, s * b)
    out = torch.bmm(lhs, rhs)  # (g, nb, s*b)
    out = out.view(g, nb, s, b).permute(2, 0, 1, 3).reshape(s, g, nb * b)[..., :L]
    return out.reshape(*S, *G, L)


def krylov_kernel(C: torch.Tensor, Abar: torch.Tensor, Bbar: torch.Tensor, L: int,
                  block: int | None = None) -> torch.Tensor:
    r"""Kernel ``K_l = Re(C A_bar^l B_bar)``, ``l < L``, of a dense system by the same blocked-powers idea.

    ``K_{bj+i} = (C A_bar^{bj}) (A_bar^i B_bar)``: the right table ``[A_bar^i B_bar]_{i<b}`` and the left table
    ``[C A_bar^{bj}]_{j<L/b}`` are built by doubling (``log2 L`` squarings of ``A_bar`` in all), then one GEMM over
    the state axis gives all ``L`` taps. Exact truncation at ``L`` (no ``C (I - A_bar^L)`` correction, no FFT),
    ``O(H N^3 log L + H N L)`` work: for ``N <= ~128`` cheaper on CPU than Cauchy sums over ``(H, N, L)``. Powers of
    a non-normal ``A_bar`` by squaring stay accurate while ``||A_bar|| <= 1`` (dissipative ``A``, as HiPPO-LegS).

    Args:
        C: ``(S, H, N)`` output rows; Abar: ``(H, N, N)``; Bbar: ``(H, N)`` (all complex, or all real).

    Returns:
        ``(S, H, L)`` real.
    """
    b = block or default_block(L)
    if b & (b - 1):
        raise ValueError(f"block must be a power of two, got {b}")
    nb = -(-L // b)
    right = Bbar[..., None]  # (H, N, k)
    apow = Abar
    while right.shape[-1] < b:
        right = torch.cat([right, apow @ right], dim=-1)
        if right.shape[-1] < b or nb > 1:
            apow = apow @ apow
    right = right[..., :b]
    # apow is now A_bar^b (if nb > 1); left rows C A_bar^{bj}
    left = C[:, :, None, :]  # (S, H, k, N)
    while left.shape[-2] < nb:
        left = torch.cat([left, left @ apow], dim=-2)
        if left.shape[-2] < nb:
            apow = apow @ apow
    left = left[..., :nb, :]
    if left.is_complex():
        lhs = torch.cat([left.real, -left.imag], dim=-1)  # (S, H, nb, 2N)
        rhs = torch.cat([right.real, right.imag], dim=-2)  # (H, 2N, b)
        out = lhs @ rhs  # (S, H, nb, b): Re(left @ right)
    else:
        out = left @ right
    return out.reshape(*out.shape[:-2], nb * b)[..., :L]
