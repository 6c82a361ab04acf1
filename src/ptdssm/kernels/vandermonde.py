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

from .discretize import discretize_diag

__all__ = ["vandermonde_kernel", "krylov_kernel", "powers", "default_block", "diag_ssm_coeffs", "s4d_kernel",
           "vandermonde_kernel_ref", "krylov_kernel_ref", "s4d_kernel_ref"]


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


def diag_ssm_coeffs(Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, disc: str = "zoh",
                    conj_sym: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Discrete form of a diagonal SSM per channel: ``(log lambda_bar (H, m), c (ch, H, m))`` with
    ``c = f C gamma B`` (``B_bar = gamma B``, ``f = 2`` with conjugate symmetry, else 1), so that
    ``K_{s,h,l} = Re sum_n c_{s,h,n} lambda_bar_{h,n}^l`` and step mode is ``x_k = lambda_bar x_{k-1} + u_k``,
    ``y_k = Re(c x_k)``.

    Args: as :func:`s4d_kernel`.
    """
    log_z, gamma = discretize_diag(Lambda, dt[:, None], disc)
    c = C * (B * gamma)
    return log_z, c * (2.0 if conj_sym else 1.0)


def s4d_kernel(Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, L: int,
               disc: str = "zoh", conj_sym: bool = True) -> torch.Tensor:
    r"""Convolution kernel of a diagonal SSM from its continuous parameters (S4D; H3's diagonal SSM).

    .. math:: K_{s,h,l} = f \operatorname{Re} \sum_n C_{s,h,n}\, \bar B_{h,n}\, \bar\lambda_{h,n}^{\,l},
              \qquad l = 0, \dots, L-1,

    with ``(lambda_bar, B_bar)`` the ZOH or bilinear discretization of ``(Lambda, B)`` with the channel's ``dt``
    (:func:`~ptdssm.kernels.discretize.discretize_diag`) and ``f = 2`` when ``conj_sym`` (each stored mode stands
    for itself and its conjugate), else 1. Evaluated by :func:`vandermonde_kernel` (blocked powers, no
    ``(H, m, L)`` tensor).

    Args:
        Lambda: ``(H, m)`` complex continuous eigenvalues (``Re < 0``).
        B: ``(H, m)`` complex input vectors.
        C: ``(ch, H, m)`` complex output vectors (``ch = 2`` for a causal and an anti-causal kernel).
        dt: ``(H,)`` real step sizes.
        L: kernel length.
        disc: ``"zoh"`` or ``"bilinear"``.
        conj_sym: whether the modes are one of each conjugate pair.

    Returns:
        ``(ch, H, L)`` real kernel in the real dtype of ``C``.
    """
    log_z, c = diag_ssm_coeffs(Lambda, B, C, dt, disc, conj_sym)
    return vandermonde_kernel(c, log_z, L)


# ---------------------------------------------------------------------------------------------- references
def vandermonde_kernel_ref(c: torch.Tensor, log_z: torch.Tensor, L: int) -> torch.Tensor:
    """Plain definition of :func:`vandermonde_kernel`: ``Re sum_n c_n exp(l log_z_n)`` with the full
    ``(..., m, L)`` table of explicit powers."""
    ell = torch.arange(L, device=log_z.device, dtype=log_z.real.dtype)
    return (c[..., None] * torch.exp(log_z[..., None] * ell)).sum(-2).real


def krylov_kernel_ref(C: torch.Tensor, Abar: torch.Tensor, Bbar: torch.Tensor, L: int) -> torch.Tensor:
    """Plain definition of :func:`krylov_kernel`: ``x_0 = B_bar``, ``K_l = Re(C x_l)``, ``x_{l+1} = A_bar x_l``
    (one matrix-vector product per tap)."""
    x, out = Bbar, []
    for _ in range(L):
        y = (C * x).sum(-1)
        out.append(y.real if y.is_complex() else y)
        x = (Abar @ x[..., None])[..., 0]
    return torch.stack(out, -1)


def s4d_kernel_ref(Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, L: int,
                   disc: str = "zoh", conj_sym: bool = True) -> torch.Tensor:
    """Plain definition of :func:`s4d_kernel`: textbook discretization (``exp(dt Lambda)``,
    ``(exp(dt Lambda) - 1) / Lambda``; or the bilinear ratio) and explicit powers ``lambda_bar^l``."""
    dtL = Lambda * dt[:, None]
    if disc == "zoh":
        z, Bbar = torch.exp(dtL), (torch.exp(dtL) - 1.0) / Lambda * B
    elif disc == "bilinear":
        z, Bbar = (1.0 + dtL / 2.0) / (1.0 - dtL / 2.0), dt[:, None] / (1.0 - dtL / 2.0) * B
    else:
        raise ValueError(f"unknown disc {disc!r}; expected 'zoh' or 'bilinear'")
    ell = torch.arange(L, device=z.device, dtype=z.real.dtype)
    powers_ = z[..., None] ** ell  # (H, m, L)
    K = (C[..., None] * Bbar[..., None] * powers_).sum(-2).real
    return K * (2.0 if conj_sym else 1.0)
