r"""S4's DPLR convolution kernel: Cauchy sums and the Woodbury identity at the roots of unity.

State matrix ``A = diag(Lambda) - sum_r p_r p_r^H`` (``N x N`` complex, written in the modes ``Lambda`` and their
conjugates: the layer keeps ``m = N/2`` modes and the other half is implied, so the kernel is real).
Bilinear discretization gives the truncated generating function at ``z = omega^k = exp(-2 pi i k / L)``:

.. math:: \hat K(z) = \sum_{l<L} K_l z^l = \tilde C (I - \bar A z)^{-1} \bar B
          = 2 \tilde C (\alpha I - t A)^{-1} B,\qquad \alpha = \tfrac{2}{dt}(1 - z),\ t = 1 + z,

with ``C~ = C (I - A_bar^L)`` (computed by the layer) because ``z^L = 1``. Writing ``X = alpha - t Lambda`` and
``U = [p_1..p_r]``, Woodbury (in a form that stays finite at ``z = -1``, where ``t = 0``) gives

.. math:: (X + t U U^H)^{-1} = X^{-1} - t X^{-1} U (I + t U^H X^{-1} U)^{-1} U^H X^{-1},

so ``K^(z) = 2 [k_{CB} - t k_{CP} (I + t k_{PP})^{-1} k_{PB}]`` with Cauchy sums ``k_{vw} = sum_n v_n w_n / X_n``
over all ``N`` modes. A conjugate pair of modes shares one denominator:

.. math:: \frac{vw}{\alpha - t\lambda} + \frac{\overline{vw}}{\alpha - t\bar\lambda}
        = \frac{2\operatorname{Re}(vw)\,\alpha - 2\operatorname{Re}(vw\bar\lambda)\,t}
               {\alpha^2 - 2\operatorname{Re}(\lambda)\,\alpha t + |\lambda|^2 t^2},

so all ``(S + r)(1 + r)`` sums need one complex reciprocal ``R = 1/den`` of shape ``(H, m, F)`` and a real GEMM of
``R`` with the weights ``2Re(vw)``, ``2Re(vw conj(lambda))``. ``F = L/2 + 1`` (``K`` is real); ``K = irfft(K^)``.

Memory: ``R`` is processed in chunks of frequencies (default ``2^21`` elements, 16 MB per real temporary) and, when
gradients are needed, each chunk is checkpointed (recomputed in backward), so the peak is ``O(H m chunk + H Q L)``
instead of several ``(H, N, L)`` tensors (4.3 GB each at ``L = 16384`` in the public code).
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from .discretize import discretize_ref

__all__ = ["dplr_kernel", "dplr_dense", "dplr_kernel_ref"]

DEFAULT_CHUNK_ELEMS = 1 << 21


def dplr_dense(Lambda: torch.Tensor, P: torch.Tensor, conj_sym: bool = True) -> torch.Tensor:
    """Dense ``(..., N, N)`` complex ``A = diag(Lambda_full) - sum_r p_r p_r^H``.

    Args:
        Lambda: ``(..., m)`` modes; with ``conj_sym`` the conjugates are appended (``N = 2m``).
        P: ``(..., r, m)`` low-rank factors (conjugates appended likewise).
    """
    if conj_sym:
        Lambda = torch.cat([Lambda, Lambda.conj()], dim=-1)
        P = torch.cat([P, P.conj()], dim=-1)
    return torch.diag_embed(Lambda) - P.transpose(-1, -2) @ P.conj()


def _sums(W: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, a2: torch.Tensor, at: torch.Tensor,
          t2: torch.Tensor) -> torch.Tensor:
    """Real GEMM of the weights ``W (H, 2Q, m)`` with ``R = 1/den`` over one chunk of frequencies.

    ``den = a2 + c1 at + c2 t2`` with ``a2, at: (H, 2, F)`` (real, imag), ``t2: (2, F)``, ``c1, c2: (H, m, 1)``.
    Returns ``(H, 2Q, 2F)``: ``[W @ Re R, W @ Im R]``.
    """
    dr = torch.addcmul(a2[:, None, 0], c1, at[:, None, 0]).addcmul_(c2, t2[0])
    di = torch.addcmul(a2[:, None, 1], c1, at[:, None, 1]).addcmul_(c2, t2[1])
    inv = torch.addcmul(dr * dr, di, di).reciprocal_()
    R = torch.cat([dr * inv, -(di * inv)], dim=-1)  # (H, m, 2F); no in-place op on saved inv
    return torch.bmm(W, R)


def dplr_kernel(C: torch.Tensor, B: torch.Tensor, P: torch.Tensor, Lambda: torch.Tensor, dt: torch.Tensor,
                L: int, chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> torch.Tensor:
    """Bilinear DPLR kernel ``K_l = C A_bar^l B_bar`` (``l < L``) from ``C~ = C (I - A_bar^L)``.

    Args:
        C: ``(S, H, m)`` complex ``C~`` (``S`` output copies, e.g. 2 for bidirectional), kept modes only.
        B: ``(H, m)`` complex.
        P: ``(H, r, m)`` complex low-rank factors (rank ``r >= 1``).
        Lambda: ``(H, m)`` complex diagonal part (the conjugate half is implied).
        dt: ``(H,)`` real step sizes.
        L: kernel length.
        chunk_elems: frequencies are processed in chunks of about this many ``(H, m, F)`` elements.

    Returns:
        ``(S, H, L)`` real kernel, including both halves of each conjugate pair.
    """
    S, H, m = C.shape
    r = P.shape[-2]
    real = C.real.dtype
    cdt = C.dtype
    F = L // 2 + 1
    k = torch.arange(F, device=C.device, dtype=torch.float64)
    ang = -2.0 * math.pi * k / L
    z = torch.complex(torch.cos(ang), torch.sin(ang)).to(cdt)  # (F,)
    t = 1.0 + z
    alpha = (2.0 / dt.to(real))[:, None] * (1.0 - z)  # (H, F)
    # Cauchy weights: rows v in [C_s..., conj(p_i)...], columns w in [B, p_j...].
    V = torch.cat([C.permute(1, 0, 2), P.conj()], dim=1)  # (H, S+r, m)
    Wm = torch.cat([B[:, None], P], dim=1)  # (H, 1+r, m)
    vw = V[:, :, None] * Wm[:, None]  # (H, S+r, 1+r, m)
    Q = (S + r) * (1 + r)
    vw = vw.reshape(H, Q, m)
    W = torch.cat([2.0 * vw.real, 2.0 * (vw * Lambda.conj()[:, None]).real], dim=1)  # (H, 2Q, m)
    c1 = (-2.0 * Lambda.real)[..., None]
    c2 = (Lambda.real ** 2 + Lambda.imag ** 2)[..., None]
    a2 = torch.view_as_real(alpha * alpha).permute(0, 2, 1)  # (H, 2, F)
    at = torch.view_as_real(alpha * t).permute(0, 2, 1)
    t2 = torch.view_as_real(t * t).T  # (2, F)
    fc = max(1, min(F, chunk_elems // max(1, H * m)))
    need_grad = torch.is_grad_enabled() and any(x.requires_grad for x in (W, c1, c2, a2, at))
    outs = []
    for s in range(0, F, fc):
        args = (W, c1, c2, a2[..., s:s + fc].contiguous(), at[..., s:s + fc].contiguous(), t2[:, s:s + fc])
        if need_grad and F > fc:
            o = checkpoint(_sums, *args, use_reentrant=False)
        else:
            o = _sums(*args)
        n = o.shape[-1] // 2
        outs.append(torch.complex(o[..., :n], o[..., n:]))
    sums = torch.cat(outs, dim=-1)  # (H, 2Q, F)
    kq = alpha[:, None] * sums[:, :Q] - t * sums[:, Q:]  # (H, Q, F)
    kq = kq.view(H, S + r, 1 + r, F)
    k_cb, k_cp = kq[:, :S, 0], kq[:, :S, 1:]  # (H, S, F), (H, S, r, F)
    k_pb, k_pp = kq[:, S:, 0], kq[:, S:, 1:]  # (H, r, F), (H, r, r, F)
    if r == 1:
        corr = k_cp[:, :, 0] * (k_pb[:, 0] / (1.0 + t * k_pp[:, 0, 0]))[:, None]
    else:
        eye = torch.eye(r, dtype=cdt, device=C.device)
        M = eye + (t * k_pp).permute(0, 3, 1, 2)  # (H, F, r, r)
        X = torch.linalg.solve(M, k_pb.permute(0, 2, 1))  # (H, F, r)
        corr = torch.einsum("hsjf,hfj->hsf", k_cp, X)
    khat = 2.0 * (k_cb - t * corr)  # (H, S, F)
    return torch.fft.irfft(khat, n=L).permute(1, 0, 2)


def dplr_kernel_ref(C: torch.Tensor, B: torch.Tensor, P: torch.Tensor, Lambda: torch.Tensor, dt: torch.Tensor,
                    L: int) -> torch.Tensor:
    r"""Plain definition of :func:`dplr_kernel` (same arguments): the dense matrix ``A`` (:func:`dplr_dense`), its
    bilinear discretization with an explicit inverse, the generating function
    ``K^(z_k) = C~ (I - A_bar z_k)^{-1} B_bar`` by one dense solve per root of unity ``z_k = exp(-2 pi i k / L)``
    (all ``L`` of them, conjugate modes written out) and ``K = Re ifft(K^)``. No Cauchy sums, no Woodbury."""
    A = dplr_dense(Lambda, P)  # (H, N, N)
    Abar, Bbar = discretize_ref(A, torch.cat([B, B.conj()], -1), dt, "bilinear")
    Cf = torch.cat([C, C.conj()], -1)  # (S, H, N)
    k = torch.arange(L, device=C.device, dtype=torch.float64)
    z = torch.polar(torch.ones_like(k), -2.0 * math.pi * k / L).to(Abar.dtype)  # (L,)
    eye = torch.eye(A.shape[-1], dtype=Abar.dtype, device=A.device)
    M = eye - Abar[:, None] * z[None, :, None, None]  # (H, L, N, N)
    x = torch.linalg.solve(M, Bbar[:, None, :, None].expand(-1, L, -1, -1))[..., 0]  # (H, L, N)
    khat = (Cf[:, :, None] * x[None]).sum(-1)  # (S, H, L)
    return torch.fft.ifft(khat, dim=-1).real
