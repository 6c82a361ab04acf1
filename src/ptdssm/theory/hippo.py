r"""HiPPO matrices (float64).

Each function returns the continuous-time pair ``(A, B)`` of the HiPPO ODE ``x'(t) = A x(t) + B u(t)`` (LegS:
``x'(t) = (A x(t) + B u(t)) / t``), with ``A`` of shape ``(n, n)`` and ``B`` of shape ``(n,)``. The signs are those
of the SSM convention (``A`` is stable), i.e. the negatives of the matrices printed in the HiPPO paper, and every
basis is orthonormal so that the matrices are O(n)-scaled the way S4 uses them.

*How to Train Your HiPPO* reads any time-invariant ``(A, B)`` as an online projection onto the basis
``K_n(t) = (e^{tA} B)_n`` (the impulse response of state ``n``; :mod:`ptdssm.theory.basis` computes it):

- **LegS** used time-invariantly (as S4 does): ``K_n(t) = sqrt(2n+1) P_n(2 e^{-t} - 1) e^{-t}`` exactly,
  exponentially warped Legendre polynomials, no finite window.
- **LegT** (translated Legendre) on a window of ``W`` time units: ``K_n(t) ~ (1/W) sqrt(2n+1) P_n(1 - 2t/W)`` for
  ``0 <= t < W`` and ``~ 0`` after. Its symmetric part has rank 2: ``A = S - p_e p_e^T - p_o p_o^T`` with ``S``
  skew-symmetric and ``p_e``, ``p_o`` the even and odd entries of ``sqrt((2n+1)/W)``.
- **FouT** (translated Fourier), ``W`` time units: ``K(t) ~ (1/W) [1, 0, sqrt2 cos(2 pi k t/W), sqrt2 sin(2 pi k t/W),
  ...]`` on ``0 <= t < W``, ``~ 0`` after; ``A = S - B B^T W/2`` with ``S`` skew-symmetric (rank-1 NPLR).

**s4's normalisation** (:data:`S4_WINDOW`): S4's ``legt`` and ``fout`` matrices are these with ``W = 2``, so a layer
with step ``dt`` sees a window of ``2/dt`` steps (LegS: a timescale of ``1/dt`` steps); the inits of
:mod:`ptdssm.theory.init` and ``ptdssm analyze basis`` use it. :func:`hippo_nplr` gives the normal-plus-low-rank
forms S4 needs.

References: Gu et al., *HiPPO: Recurrent Memory with Optimal Polynomial Projections* (2020);
Gu, Johnson, Timalsina, Rudra, Ré, *How to Train Your HiPPO: State Space Models with Generalized Orthogonal Basis
Projections* (ICLR 2023).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_float, check_positive_int

__all__ = ["hippo", "hippo_legs", "hippo_legt", "hippo_lagt", "hippo_fout", "hippo_legs_nplr", "hippo_nplr",
           "HIPPO_MEASURES", "NPLR_MEASURES", "S4_WINDOW"]

#: Window length (time units) of LegT and FouT in s4's normalisation: ``2/dt`` steps at step size ``dt``.
S4_WINDOW = 2.0


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


def hippo_legt(n: int, window: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Legendre (LegT) on a window of ``window`` time units (``W``; s4's ``legt`` is ``W = 2``).

    ``A[i, j] = -sqrt(2i+1) sqrt(2j+1) * (1 if i >= j else (-1)^(i-j)) / W``, ``B[i] = sqrt(2i+1) / W``: the ODE of
    the coefficients of ``u`` on ``[t-W, t]`` in the basis ``sqrt(2i+1) P_i(2s/W - 1) / W`` (``s`` = position in
    the window, ``s = W`` newest), so ``e^{tA} B ~ sqrt(2i+1) P_i(1 - 2t/W) / W`` for ``0 <= t < W``.
    """
    n = check_positive_int("n", n)
    W = check_positive_float("window", window)
    r = np.sqrt(2.0 * np.arange(n) + 1.0)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    sign = np.where(i >= j, 1.0, (-1.0) ** (i - j))
    return -np.outer(r, r) * sign / W, r / W


def hippo_lagt(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Laguerre (LagT, Laguerre functions ``exp(-s/2) L_i(s)``).

    ``A = I/2 - tril(1)`` (``-1/2`` on the diagonal, ``-1`` below it), ``B = 1``. It satisfies
    ``A + A^T = -B B^T``: a skew-symmetric matrix minus a rank-one dissipation.
    """
    n = check_positive_int("n", n)
    A = 0.5 * np.eye(n) - np.tril(np.ones((n, n)))
    return A, np.ones(n)


def _fourier_b(n: int) -> np.ndarray:
    """``b = g(0)``: ``1`` on the constant, ``0`` on the dead state, ``sqrt2`` on cosines, ``0`` on sines."""
    b = np.zeros(n)
    b[0::2] = np.sqrt(2.0)
    b[0] = 1.0
    return b


def hippo_fout(n: int, window: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Translated Fourier (FouT) on a window of ``window`` time units (``W``; s4's ``fout`` is ``W = 2``).

    State layout (s4's): ``[constant, dead, cos_1, sin_1, cos_2, sin_2, ...]`` with frequencies
    ``w_k = 2 pi k / W``; index 1 has no input and no coupling (it pairs with the constant so that an even ``n``
    splits into conjugate pairs). With ``b = [1, 0, sqrt2, 0, sqrt2, 0, ...]`` (the basis at both window ends) and
    ``J[cos_k, sin_k] = -w_k``, ``J[sin_k, cos_k] = w_k``:

    .. math:: A = J - \tfrac{2}{W} b b^T,\qquad B = \tfrac{2}{W} b,

    the ODE of the coefficients on ``[t-W, t]`` where the dropped end ``u(t-W)`` is closed by the Fourier series'
    value at the jump, ``(u(t) + u(t-W))/2`` (the paper's FouT; ``A + A^T = -W B B^T``). Then
    ``e^{tA} B ~ (1/W)[1, 0, sqrt2 cos(w_k t), sqrt2 sin(w_k t), ...]`` on ``0 <= t < W`` and ``~ 0`` after.
    """
    n = check_positive_int("n", n)
    W = check_positive_float("window", window)
    b = _fourier_b(n)
    A = -(2.0 / W) * np.outer(b, b)
    for c in range(2, n - 1, 2):  # (cos_k, sin_k) at indices (c, c + 1), k = c / 2
        w = 2.0 * np.pi * (c // 2) / W
        A[c, c + 1] -= w
        A[c + 1, c] += w
    return A, (2.0 / W) * b


HIPPO_MEASURES = {"legs": hippo_legs, "legt": hippo_legt, "lagt": hippo_lagt, "fout": hippo_fout}

#: Measures with a normal-plus-low-rank form in :func:`hippo_nplr` (and S4 inits).
NPLR_MEASURES = ("legs", "legt", "fout")


def hippo(measure: str, n: int, *, window: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of the named HiPPO measure: one of ``legs``, ``legt``, ``lagt``, ``fout``.

    ``window``: the window in time units of ``legt`` and ``fout`` (default 1; :data:`S4_WINDOW` = 2 is s4's
    normalisation); an error for the other measures.
    """
    check_choice("measure", measure, HIPPO_MEASURES)
    if window is None:
        return HIPPO_MEASURES[measure](n)
    if measure not in ("legt", "fout"):
        raise ValueError(f"window only applies to the measures legt and fout, not {measure!r}")
    return HIPPO_MEASURES[measure](n, window)


def hippo_legs_nplr(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Normal-plus-low-rank form of LegS: ``A_H = A_N - P P^T``.

    Returns ``(A_N, P, B)`` with ``P[i] = sqrt(i + 1/2)`` (so ``B = sqrt2 P``) and ``A_N = -I/2 + S``, ``S``
    skew-symmetric. ``A_N`` is normal, so it has a unitary eigenbasis: S4D-LegS and S5 use its eigenvalues.
    """
    A, B = hippo_legs(n)
    P = np.sqrt(np.arange(n) + 0.5)
    return A + np.outer(P, P), P, B


def hippo_nplr(measure: str, n: int, window: float = S4_WINDOW) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Normal-plus-low-rank form ``A = A_N - P^T P`` (``A_N`` normal: a multiple of ``I`` plus a skew part).

    Returns ``(A_N (n, n), P (r, n), B (n,))``, ``A`` and ``B`` in s4's normalisation (``window``, default
    :data:`S4_WINDOW`, for LegT and FouT):

    - ``legs``: ``r = 1``, ``P = sqrt(i + 1/2)``, ``A_N = -I/2 + S`` (:func:`hippo_legs_nplr`);
    - ``legt``: ``r = 2``, ``P = [p_e; p_o]``, the even and the odd entries of ``sqrt((2i+1)/W)``, ``A_N`` skew;
    - ``fout``: ``r = 1``, ``P = sqrt(2/W) b`` (``= B sqrt(W/2)``), ``A_N = J`` skew.
    """
    check_choice("measure", measure, NPLR_MEASURES)
    n = check_positive_int("n", n)
    if measure == "legs":
        A_N, P, B = hippo_legs_nplr(n)
        return A_N, P[None, :], B
    W = check_positive_float("window", window)
    if measure == "legt":
        A, B = hippo_legt(n, W)
        p = np.sqrt((2.0 * np.arange(n) + 1.0) / W)
        P = np.zeros((2, n))
        P[0, 0::2], P[1, 1::2] = p[0::2], p[1::2]
    else:
        A, B = hippo_fout(n, W)
        P = np.sqrt(2.0 / W) * _fourier_b(n)[None, :]
    return A + P.T @ P, P, B
