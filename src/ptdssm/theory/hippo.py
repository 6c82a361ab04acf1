r"""HiPPO matrices (float64).

Each function returns the continuous-time pair ``(A, B)`` of the HiPPO ODE ``x'(t) = A x(t) + B u(t)`` (LegS:
``x'(t) = (A x(t) + B u(t)) / t``), with ``A`` of shape ``(n, n)`` and ``B`` of shape ``(n,)``. The signs are those
of the SSM convention (``A`` is stable), i.e. the negatives of the matrices printed in the HiPPO paper, and every
basis is orthonormal so that the matrices are O(n)-scaled the way S4 uses them.

References: Gu et al., *HiPPO: Recurrent Memory with Optimal Polynomial Projections* (2020);
Gu et al., *How to Train Your HiPPO* (2022).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_int

__all__ = ["hippo", "hippo_legs", "hippo_legt", "hippo_lagt", "hippo_fout", "hippo_legs_nplr", "HIPPO_MEASURES"]


def hippo_legs(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Scaled Legendre (LegS).

    ``A[i, j] = -sqrt(2i+1) sqrt(2j+1)`` for ``i > j``, ``-(i+1)`` for ``i = j``, ``0`` for ``i < j``;
    ``B[i] = sqrt(2i+1)``. Lower triangular with eigenvalues ``-1, ..., -n`` and an exponentially ill-conditioned
    eigenvector matrix.
    """
    n = check_positive_int("n", n)
    r = np.sqrt(2.0 * np.arange(n) + 1.0)
    A = -np.tril(np.outer(r, r), -1) - np.diag(np.arange(1.0, n + 1.0))
    return A, r.copy()


def hippo_legt(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Legendre (LegT) on a window of length 1.

    ``A[i, j] = -sqrt(2i+1) sqrt(2j+1) * (1 if i >= j else (-1)^(i-j))``, ``B[i] = sqrt(2i+1)``: the ODE of the
    coefficients of ``u`` on ``[t-1, t]`` in the orthonormal basis ``sqrt(2i+1) P_i(2s - 1)``.
    """
    n = check_positive_int("n", n)
    r = np.sqrt(2.0 * np.arange(n) + 1.0)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    sign = np.where(i >= j, 1.0, (-1.0) ** (i - j))
    return -np.outer(r, r) * sign, r.copy()


def hippo_lagt(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Laguerre (LagT, Laguerre functions ``exp(-s/2) L_i(s)``).

    ``A = I/2 - tril(1)`` (``-1/2`` on the diagonal, ``-1`` below it), ``B = 1``. It satisfies
    ``A + A^T = -B B^T``: a skew-symmetric matrix minus a rank-one dissipation.
    """
    n = check_positive_int("n", n)
    A = 0.5 * np.eye(n) - np.tril(np.ones((n, n)))
    return A, np.ones(n)


def hippo_fout(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Fourier (FouT) on a window of length 1.

    Orthonormal basis ``g_0 = 1``, ``g_{2k-1} = sqrt2 cos(2 pi k s)``, ``g_{2k} = sqrt2 sin(2 pi k s)``.
    ``A = -M - B B^T`` with ``M[j, i] = int_0^1 g_j' g_i ds`` (so ``A[2k-1, 2k] = 2 pi k``,
    ``A[2k, 2k-1] = -2 pi k``) and ``B[j] = g_j(0) = g_j(1)`` (``1``, then ``sqrt2`` on cosines, ``0`` on sines).
    """
    n = check_positive_int("n", n)
    B = np.zeros(n)
    B[0] = 1.0
    B[1::2] = np.sqrt(2.0)
    A = -np.outer(B, B)
    for c in range(1, n - 1, 2):  # (cos_k, sin_k) at indices (c, c + 1), k = (c + 1) / 2
        w = 2.0 * np.pi * (c + 1) / 2
        A[c, c + 1] += w
        A[c + 1, c] -= w
    return A, B


HIPPO_MEASURES = {"legs": hippo_legs, "legt": hippo_legt, "lagt": hippo_lagt, "fout": hippo_fout}


def hippo(measure: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of the named HiPPO measure: one of ``legs``, ``legt``, ``lagt``, ``fout``."""
    check_choice("measure", measure, HIPPO_MEASURES)
    return HIPPO_MEASURES[measure](n)


def hippo_legs_nplr(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Normal-plus-low-rank form of LegS: ``A_H = A_N - P P^T``.

    Returns ``(A_N, P, B)`` with ``P[i] = sqrt(i + 1/2)`` (so ``B = sqrt2 P``) and ``A_N = -I/2 + S``, ``S``
    skew-symmetric. ``A_N`` is normal, so it has a unitary eigenbasis: S4D-LegS and S5 use its eigenvalues.
    """
    A, B = hippo_legs(n)
    P = np.sqrt(np.arange(n) + 0.5)
    return A + np.outer(P, P), P, B
