r"""S4's convolution kernel from continuous DPLR parameters, callable on its own: :func:`s4_kernel`.

Per channel ``h`` (``m`` stored modes, their conjugates implied, ``N = 2m``):

.. math:: A = \operatorname{diag}(\Lambda) - \sum_{i<r} p_i p_i^H,\quad
          \bar A = (I - \tfrac{dt}{2}A)^{-1}(I + \tfrac{dt}{2}A),\quad \bar B = (I - \tfrac{dt}{2}A)^{-1} dt\,B,\quad
          K_{s,h,l} = C_s \bar A^{\,l} \bar B\ (l < L),

with ``C_s`` and ``B`` extended by their conjugates so that ``K`` is real. ``A_bar``/``B_bar`` come from Woodbury
(:func:`~ptdssm.kernels.discretize.discretize_dplr`). Two algorithms, same result:

- ``"krylov"``: blocked powers of the dense ``A_bar`` in real coordinates
  (:func:`~ptdssm.kernels.discretize.conj_pair_to_real`, :func:`~ptdssm.kernels.vandermonde.krylov_kernel`);
- ``"cauchy"``: Cauchy sums + Woodbury at the roots of unity (:func:`~ptdssm.kernels.cauchy.dplr_kernel`) with
  ``C~ = C (I - A_bar^L)``, ``A_bar^L`` by repeated squaring.

``"auto"`` (the one place the choice is made) picks Krylov for ``N <= 128``: measured on 2 CPU threads at H=256,
N=64, L=4096 the Cauchy pass alone (~16.8M complex reciprocals in eager mode, memory-bound) took 1-2 s versus
~0.2 s for the squarings.

:func:`s4_kernel_ref` is the plain definition: the dense ``A``, its textbook bilinear discretization and one
matrix-vector product per tap.
"""

from __future__ import annotations

import torch

from .._checks import check_choice
from .cauchy import dplr_dense, dplr_kernel
from .discretize import conj_pair_to_real, discretize_dplr, discretize_ref
from .vandermonde import krylov_kernel, krylov_kernel_ref

__all__ = ["s4_kernel", "s4_kernel_ref", "S4_KERNEL_METHODS"]

S4_KERNEL_METHODS = ("auto", "krylov", "cauchy")


def s4_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, L: int,
              method: str = "auto") -> torch.Tensor:
    """Bilinear DPLR convolution kernel (module docstring).

    Args:
        Lambda: ``(H, m)`` complex diagonal part (stored modes).
        P: ``(H, r, m)`` complex low-rank factors.
        B: ``(H, m)`` complex.
        C: ``(ch, H, m)`` complex (``ch = 2`` for a causal and an anti-causal kernel).
        dt: ``(H,)`` real step sizes.
        L: kernel length.
        method: ``"krylov"``, ``"cauchy"`` or ``"auto"`` (Krylov for ``N = 2m <= 128``).

    Returns:
        ``(ch, H, L)`` real kernel.
    """
    method = check_choice("method", method, S4_KERNEL_METHODS)
    m = Lambda.shape[-1]
    if method == "auto":
        method = "krylov" if 2 * m <= 128 else "cauchy"
    Abar, Bbar = discretize_dplr(Lambda, P, B, dt)
    if method == "krylov":
        A_r, B_r, C_r = conj_pair_to_real(Abar, Bbar, C)  # real GEMMs: 1/4 of the flops
        return krylov_kernel(C_r, A_r, B_r, L)
    C_full = torch.cat([C, C.conj()], dim=-1)  # (ch, H, N)
    AL = torch.linalg.matrix_power(Abar, L)
    C_t = (C_full - (C_full[:, :, None] @ AL)[:, :, 0])[..., :m]  # C (I - A_bar^L), kept modes
    return dplr_kernel(C_t, B, P, Lambda, dt, L)


def s4_kernel_ref(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor,
                  L: int) -> torch.Tensor:
    """Plain definition of :func:`s4_kernel` (same arguments): dense ``A``, explicit-inverse bilinear
    discretization, ``K_l = Re(C A_bar^l B_bar)`` one step at a time."""
    Abar, Bbar = discretize_ref(dplr_dense(Lambda, P), torch.cat([B, B.conj()], -1), dt, "bilinear")
    return krylov_kernel_ref(torch.cat([C, C.conj()], -1), Abar, Bbar, L)
