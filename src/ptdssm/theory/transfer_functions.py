r"""Transfer functions ``G(iw) = C (iw I - A)^{-1} B`` of dense, diagonal and DPLR systems (float64).

For a diagonal system ``(Lambda, B~, C~)`` (``A = diag(Lambda)``) ``G`` is the partial-fraction sum
``sum_k C~_k B~_k / (s - lambda_k)``; for a diagonal-plus-low-rank one (S4) it follows from the Woodbury identity.
HiPPO-LegS's ``A_H = A_N - P P^T`` with ``B_H = sqrt(2) P`` gives, for every ``C`` (Sherman-Morrison),
``G_DPLR(s) = G_Diag(s) / (1 + P^T (sI - A_N)^{-1} P)`` (:func:`legs_low_rank_factor` is the denominator).

Frequencies ``w`` are real and 1-D (shape ``(m,)``); ``s = i w``. All results are complex128. The overview of the
paper's comparison is in :mod:`ptdssm.theory.transfer`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import check_finite_array, check_positive_int, check_square_matrix
from .hippo import hippo_legs_nplr

__all__ = ["TransferFunction", "legs_low_rank_factor", "random_unit_vector", "transfer_function",
           "transfer_function_diagonal", "transfer_function_dplr"]

TransferFunction = Callable[[np.ndarray], np.ndarray]

# Largest (m, n, n) complex block solved at once by the dense transfer function (about 32 MB).
_MAX_BLOCK_ELEMENTS = 2_000_000


# ------------------------------------------------------------------------------------------------------------
# validation helpers


def _frequencies(w: object) -> np.ndarray:
    """``w`` as a finite real 1-D float64 array (a scalar becomes shape ``(1,)``)."""
    a = np.asarray(w)
    if a.ndim == 0:
        a = a.reshape(1)
    a = check_finite_array("w", a, ndim=1)
    if np.iscomplexobj(a):
        raise ValueError("w must be real (frequencies; s = i w)")
    return a.astype(np.float64)


def _io_vectors(n: int, B: object, C: object) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """``B`` as ``(n, p)``, ``C`` as ``(q, n)`` and the output shape tail ``C.shape[:-1] + B.shape[1:]``."""
    b = check_finite_array("B", B)
    c = check_finite_array("C", C)
    if b.ndim not in (1, 2) or b.shape[0] != n:
        raise ValueError(f"B must have shape ({n},) or ({n}, p), got {b.shape}")
    if c.ndim not in (1, 2) or c.shape[-1] != n:
        raise ValueError(f"C must have shape ({n},) or (q, {n}), got {c.shape}")
    tail = c.shape[:-1] + b.shape[1:]
    return b.reshape(n, -1).astype(complex), c.reshape(-1, n).astype(complex), tail


def _diagonal(name: str, Lambda: object) -> np.ndarray:
    lam = check_finite_array(name, Lambda, ndim=1)
    if lam.shape[0] < 1:
        raise ValueError(f"{name} must be non-empty")
    return lam.astype(complex)


# ------------------------------------------------------------------------------------------------------------
# transfer functions


def transfer_function(A: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray) -> np.ndarray:
    r"""``G(iw) = C (iw I - A)^{-1} B`` of a dense system, by one LU solve per frequency (batched).

    Args:
        A: ``(n, n)`` real or complex state matrix.
        B: ``(n,)`` or ``(n, p)`` input matrix.
        C: ``(n,)`` or ``(q, n)`` output matrix.
        w: ``(m,)`` real frequencies.

    Returns:
        complex128 array of shape ``(m,) + C.shape[:-1] + B.shape[1:]``: ``(m,)`` for a SISO system with 1-D
        ``B`` and ``C``, ``(m, q, p)`` for 2-D ones.

    This is the reference: backward stable for any ``A`` (also non-normal ones such as HiPPO), O(m n^3).
    """
    A = check_square_matrix("A", A)
    n = A.shape[0]
    b, c, tail = _io_vectors(n, B, C)
    w = _frequencies(w)
    out = np.empty((w.shape[0], c.shape[0], b.shape[1]), complex)
    step = max(1, _MAX_BLOCK_ELEMENTS // (n * n))
    eye = np.eye(n)
    for lo in range(0, w.shape[0], step):
        s = 1j * w[lo:lo + step]
        M = s[:, None, None] * eye - A  # (k, n, n)
        X = np.linalg.solve(M, np.broadcast_to(b, (s.shape[0],) + b.shape))  # (k, n, p)
        out[lo:lo + step] = np.einsum("qn,knp->kqp", c, X)
    return out.reshape((w.shape[0],) + tail)


def transfer_function_diagonal(Lambda: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray, *,
                               conj_sym: bool = False) -> np.ndarray:
    r"""``G(iw) = sum_k C~_k B~_k / (iw - lambda_k)`` of a diagonal system ``(Lambda, B~, C~)``.

    Args:
        Lambda: ``(n,)`` complex eigenvalues.
        B: ``(n,)`` or ``(n, p)`` input matrix in the eigenbasis (``B~ = V^{-1} B``).
        C: ``(n,)`` or ``(q, n)`` output matrix in the eigenbasis (``C~ = C V``).
        w: ``(m,)`` real frequencies.
        conj_sym: ``Lambda`` holds one mode of each conjugate pair (as layers with ``2 Re(.)`` do): the
            conjugate modes ``conj(C~_k B~_k) / (s - conj(lambda_k))`` are added, which makes the system real.

    Returns:
        complex128 array of shape ``(m,) + C.shape[:-1] + B.shape[1:]``. O(m n q p).
    """
    lam = _diagonal("Lambda", Lambda)
    n = lam.shape[0]
    b, c, tail = _io_vectors(n, B, C)
    w = _frequencies(w)
    s = 1j * w
    R = 1.0 / (s[:, None] - lam[None, :])  # (m, n)
    out = np.einsum("qn,mn,np->mqp", c, R, b)
    if conj_sym:
        Rc = 1.0 / (s[:, None] - lam.conj()[None, :])
        out = out + np.einsum("qn,mn,np->mqp", c.conj(), Rc, b.conj())
    return out.reshape((w.shape[0],) + tail)


def transfer_function_dplr(Lambda: np.ndarray, P: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray, *,
                           Q: np.ndarray | None = None) -> np.ndarray:
    r"""Transfer function of a diagonal-plus-low-rank system ``A = diag(Lambda) - P^T conj(Q)`` (S4).

    Computed by the Woodbury identity.

    With ``R(s) = diag(1 / (s - Lambda))`` and the rank-``r`` factors ``P``, ``Q`` of shape ``(r, n)``:

    .. math:: G(s) = C R B - (C R P^T) \, (I_r + \bar Q R P^T)^{-1} \, (\bar Q R B).

    For HiPPO-LegS in the unitary eigenbasis ``V`` of ``A_N``: ``Lambda = eig(A_N)``, ``P = Q = (V^H P_H)^T``,
    ``B = V^H B_H``, ``C = C_H V`` (the ``s4-legs`` initialization).

    Args:
        Lambda: ``(n,)`` complex eigenvalues of the diagonal part.
        P: ``(n,)`` or ``(r, n)`` low-rank factor.
        B: ``(n,)`` or ``(n, p)``.
        C: ``(n,)`` or ``(q, n)``.
        w: ``(m,)`` real frequencies.
        Q: ``(n,)`` or ``(r, n)`` second factor; default ``P`` (a Hermitian low-rank term).

    Returns:
        complex128 array of shape ``(m,) + C.shape[:-1] + B.shape[1:]``. O(m n r (p + q + r)).
    """
    lam = _diagonal("Lambda", Lambda)
    n = lam.shape[0]
    b, c, tail = _io_vectors(n, B, C)
    p_ = check_finite_array("P", P)
    q_ = p_ if Q is None else check_finite_array("Q", Q)
    for name, f in (("P", p_), ("Q", q_)):
        if f.ndim not in (1, 2) or f.shape[-1] != n:
            raise ValueError(f"{name} must have shape ({n},) or (r, {n}), got {f.shape}")
    p_ = p_.reshape(-1, n).astype(complex)
    q_ = q_.reshape(-1, n).astype(complex)
    if p_.shape != q_.shape:
        raise ValueError(f"P and Q must have the same shape, got {p_.shape} and {q_.shape}")
    r = p_.shape[0]
    w = _frequencies(w)
    R = 1.0 / (1j * w[:, None] - lam[None, :])  # (m, n)
    CRB = np.einsum("qn,mn,np->mqp", c, R, b)
    CRP = np.einsum("qn,mn,rn->mqr", c, R, p_)
    QRB = np.einsum("rn,mn,np->mrp", q_.conj(), R, b)
    K = np.eye(r) + np.einsum("jn,mn,kn->mjk", q_.conj(), R, p_)  # (m, r, r)
    out = CRB - CRP @ np.linalg.solve(K, QRB)
    return out.reshape((w.shape[0],) + tail)


def legs_low_rank_factor(n: int, w: np.ndarray) -> np.ndarray:
    r"""``1 + P^T (iw I - A_N)^{-1} P`` for HiPPO-LegS of size ``n``, shape ``(m,)``.

    ``G_DPLR(iw) = G_Diag(iw) / legs_low_rank_factor(n, w)`` for every output vector ``C`` (Sherman-Morrison
    with ``B_H = sqrt(2) P``), so S4D's relative error is ``1 - 1/factor``: large where the factor is large,
    i.e. near the eigenvalues ``-1/2 + i w_k`` of ``A_N``.
    """
    n = check_positive_int("n", n)
    lam, V = _normal_eig(n)
    _, P, _ = hippo_legs_nplr(n)
    Pt = V.conj().T @ P
    w = _frequencies(w)
    return 1.0 + (1.0 / (1j * w[:, None] - lam[None, :])) @ (np.abs(Pt) ** 2)


def _normal_eig(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of ``A_N = -I/2 + S`` via the Hermitian ``-i S``: real part exactly ``-1/2``, unitary V."""
    A_N, _, _ = hippo_legs_nplr(n)
    mu, V = np.linalg.eigh(-1j * (A_N + 0.5 * np.eye(n)))
    return -0.5 + 1j * mu, V


def random_unit_vector(n: int, seed: int = 0) -> np.ndarray:
    """A Gaussian vector of shape ``(n,)`` scaled to unit 2-norm (``numpy.random.default_rng(seed)``)."""
    n = check_positive_int("n", n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    v = np.random.default_rng(int(seed)).standard_normal(n)
    return v / np.linalg.norm(v)


def _siso_diagonal(lam: np.ndarray, residues: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_k residues_k / (iw - lam_k)`` for 1-D ``w`` (no validation: internal fast path)."""
    return (1.0 / (1j * w[:, None] - lam[None, :])) @ residues
