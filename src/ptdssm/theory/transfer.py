r"""Transfer functions of linear state-space systems, their sup norms and output L2 errors (float64).

A continuous-time system ``x' = A x + B u``, ``y = C x`` has the transfer function

.. math:: G(s) = C (sI - A)^{-1} B, \qquad s = i\omega,

and for a diagonal system ``(Lambda, B~, C~)`` (``A = diag(Lambda)``) it is the partial-fraction sum

.. math:: G(s) = \sum_k \frac{\tilde C_k \tilde B_k}{s - \lambda_k}.

The paper compares three systems built on HiPPO-LegS of size ``n`` (see :func:`paper_systems`):

- ``G_DPLR``: ``(A_H, B_H, C)``, what S4 computes (diagonal-plus-low-rank, through the Woodbury identity);
- ``G_Diag``: ``(A_N, B_H, C)`` with the normal part ``A_N = A_H + P P^T`` diagonalized by a unitary ``V``
  (S4D-LegS / S5): ``Lambda = eig(A_N)``, ``B~ = V^H B_H``, ``C~ = C V``;
- ``G_PTD``: ``(A_H + E, B_H, C)`` from :func:`~ptdssm.theory.ptd.perturb_then_diagonalize`:
  ``B~ = V~^{-1} B_H``, ``C~ = C V~``.

Because ``A_H = A_N - P P^T`` and ``B_H = sqrt(2) P``, the Sherman-Morrison formula gives, for **every** ``C``
(checked against dense solves in the tests),

.. math:: G_{DPLR}(s) = \frac{G_{Diag}(s)}{1 + P^T (sI - A_N)^{-1} P}

(:func:`legs_low_rank_factor` is the denominator). For a general ``B`` the Woodbury form
``C R B - (C R P)(P^T R B) / (1 + P^T R P)``, ``R = (sI - A_N)^{-1}``, is needed
(:func:`transfer_function_dplr`); it reduces to the identity above when ``B`` is parallel to ``P``.

S4D's error ``G_Diag - G_DPLR`` has Theta(1) spikes at the imaginary parts of ``eig(A_N)`` (the largest at
``w_max ~ n^2 / pi``) for every ``n`` (weak, not strong, convergence); PTD's error stays bounded (strong
convergence).
:func:`sup_norm` estimates ``sup_w |G(iw)|`` with a log grid plus the pole frequencies and local refinement;
:func:`output_l2_error` integrates ``|(G_1 - G_2)(iw) U(iw)|^2`` over ``w`` (Parseval).

Frequencies ``w`` are real and 1-D (shape ``(m,)``); ``s = i w``. All results are complex128.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import scipy.optimize

from .._checks import check_choice, check_finite_array, check_positive_int, check_square_matrix
from .hippo import hippo_legs_nplr
from .ptd import PTDResult, perturb_then_diagonalize

__all__ = [
    "transfer_function",
    "transfer_function_diagonal",
    "transfer_function_dplr",
    "legs_low_rank_factor",
    "random_unit_vector",
    "PaperSystems",
    "paper_systems",
    "transfer_curves",
    "SupNorm",
    "sup_norm",
    "output_l2_error",
    "transfer_analysis",
    "INPUTS",
]

TransferFunction = Callable[[np.ndarray], np.ndarray]

# Laplace transforms U(s) of the test inputs of the paper: u(t) = e^-t (t >= 0) and the unit impulse delta(t).
INPUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": lambda s: 1.0 / (s + 1.0),
    "impulse": lambda s: np.ones_like(s),
}
_INPUT_POLES = {"exp": np.array([-1.0 + 0j]), "impulse": np.zeros(0, complex)}

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


# ------------------------------------------------------------------------------------------------------------
# the three systems of the paper


def _siso_diagonal(lam: np.ndarray, residues: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_k residues_k / (iw - lam_k)`` for 1-D ``w`` (no validation: internal fast path)."""
    return (1.0 / (1j * w[:, None] - lam[None, :])) @ residues


@dataclass(frozen=True)
class PaperSystems:
    r"""HiPPO-LegS of size ``n`` seen by S4 (DPLR), S4D/S5 (Diag) and S4-PTD, with one output vector ``C``.

    Attributes:
        n: state size.
        C: ``(n,)`` real output vector.
        B: ``(n,)`` ``B_H``.
        P: ``(n,)`` low-rank factor, ``B_H = sqrt(2) P``.
        A_H: ``(n, n)`` HiPPO-LegS.
        A_N: ``(n, n)`` normal part ``A_H + P P^T``.
        normal_eigenvalues: ``(n,)`` ``eig(A_N) = -1/2 + i w_k`` (sorted by ``w_k``).
        normal_V: ``(n, n)`` unitary eigenvectors of ``A_N``.
        ptd: the PTD decomposition of ``A_H + E``, or ``None`` if not requested.

    The methods :meth:`dplr`, :meth:`diag` and :meth:`ptd_tf` map ``(m,)`` real frequencies to ``(m,)``
    complex values. The eigenbasis vectors are computed once at construction, so one evaluation costs O(m n).
    """

    n: int
    C: np.ndarray
    B: np.ndarray
    P: np.ndarray
    A_H: np.ndarray
    A_N: np.ndarray
    normal_eigenvalues: np.ndarray
    normal_V: np.ndarray
    ptd: PTDResult | None

    def __post_init__(self) -> None:
        Vh = self.normal_V.conj().T
        Bt, Ct, Pt = Vh @ self.B, self.C @ self.normal_V, Vh @ self.P
        # Residues of C~_k B~_k / (s - lambda_k) and of the Woodbury pieces C R P, P^T R B, P^T R P.
        object.__setattr__(self, "_res_cb", Ct * Bt)
        object.__setattr__(self, "_res_cp", Ct * Pt)
        object.__setattr__(self, "_res_pb", Pt.conj() * Bt)
        object.__setattr__(self, "_res_pp", np.abs(Pt) ** 2)
        if self.ptd is not None:
            object.__setattr__(self, "_res_ptd", (self.C @ self.ptd.V) * (self.ptd.V_inv @ self.B))

    @property
    def spike_frequency(self) -> float:
        """``w_max = max_k Im eig(A_N)`` (about ``n^2 / pi``): where S4D's largest spike sits."""
        return float(self.normal_eigenvalues.imag.max())

    def dplr(self, w: np.ndarray) -> np.ndarray:
        r"""``G_DPLR(iw)``: Woodbury in the unitary eigenbasis of ``A_N`` (as S4 does),
        ``C R B - (C R P)(P^T R B) / (1 + P^T R P)``; agrees with a dense solve to ~1e-14 relative."""
        w = _frequencies(w)
        lam = self.normal_eigenvalues
        crb = _siso_diagonal(lam, self._res_cb, w)  # type: ignore[attr-defined]
        crp = _siso_diagonal(lam, self._res_cp, w)  # type: ignore[attr-defined]
        prb = _siso_diagonal(lam, self._res_pb, w)  # type: ignore[attr-defined]
        prp = _siso_diagonal(lam, self._res_pp, w)  # type: ignore[attr-defined]
        return crb - crp * prb / (1.0 + prp)

    def diag(self, w: np.ndarray) -> np.ndarray:
        """``G_Diag(iw)``: ``A_N`` diagonalized, ``B~ = V^H B_H``, ``C~ = C V`` (S4D-LegS/S5)."""
        return _siso_diagonal(self.normal_eigenvalues, self._res_cb, _frequencies(w))  # type: ignore[attr-defined]

    def ptd_tf(self, w: np.ndarray) -> np.ndarray:
        """``G_PTD(iw)``: ``Lambda~``, ``B~ = V~^{-1} B_H``, ``C~ = C V~`` (S4-PTD)."""
        if self.ptd is None:
            raise ValueError("ptd was not computed: build with paper_systems(..., ptd=True)")
        return _siso_diagonal(self.ptd.eigenvalues, self._res_ptd, _frequencies(w))  # type: ignore[attr-defined]

    def transfer(self, name: str, w: np.ndarray) -> np.ndarray:
        """``G(iw)`` of ``name`` in ``"dplr"``, ``"diag"``, ``"ptd"``."""
        check_choice("system", name, ("dplr", "diag", "ptd"))
        return {"dplr": self.dplr, "diag": self.diag, "ptd": self.ptd_tf}[name](w)

    def poles(self, name: str) -> np.ndarray:
        """Poles of the named system (used to place refinement points and quadrature breakpoints)."""
        check_choice("system", name, ("dplr", "diag", "ptd"))
        if name == "dplr":
            return -np.arange(1.0, self.n + 1.0) + 0j  # eig(A_H) = -1, ..., -n exactly (lower triangular)
        if name == "diag":
            return self.normal_eigenvalues
        if self.ptd is None:
            raise ValueError("ptd was not computed: build with paper_systems(..., ptd=True)")
        return self.ptd.eigenvalues


def paper_systems(n: int, C: np.ndarray | None = None, *, seed: int = 0, ptd: bool | PTDResult = True,
                  **ptd_kwargs: object) -> PaperSystems:
    """The three LegS systems of the paper at size ``n`` (see :class:`PaperSystems`).

    Args:
        n: state size.
        C: ``(n,)`` real output vector; default :func:`random_unit_vector` ``(n, seed)``.
        seed: seed of the default ``C``.
        ptd: ``True`` to compute (or load from cache) the PTD decomposition of ``A_H``, ``False`` to skip it,
            or a :class:`~ptdssm.theory.ptd.PTDResult` of an ``n x n`` HiPPO-LegS to use.
        **ptd_kwargs: passed to :func:`~ptdssm.theory.ptd.perturb_then_diagonalize` (``gamma``, ``seed`` is
            ``ptd_seed`` here, ``method``, ...).
    """
    n = check_positive_int("n", n)
    C = random_unit_vector(n, seed) if C is None else check_finite_array("C", C, ndim=1)
    if C.shape != (n,):
        raise ValueError(f"C must have shape ({n},), got {C.shape}")
    if np.iscomplexobj(C):
        raise ValueError("C must be real")
    A_N, P, B = hippo_legs_nplr(n)
    A_H = A_N - np.outer(P, P)
    lam, V = _normal_eig(n)
    if isinstance(ptd, PTDResult):
        if ptd.A.shape != (n, n) or not np.allclose(ptd.A, A_H):
            raise ValueError(f"ptd must be a decomposition of HiPPO-LegS of size {n}")
        res: PTDResult | None = ptd
    elif ptd:
        kwargs = dict(ptd_kwargs)
        if "ptd_seed" in kwargs:
            kwargs["seed"] = kwargs.pop("ptd_seed")
        res = perturb_then_diagonalize(n=n, **kwargs)  # type: ignore[arg-type]
    else:
        res = None
    return PaperSystems(n, C.astype(np.float64), B, P, A_H, A_N, lam, V, res)


def transfer_curves(systems: PaperSystems, points: int = 2000, w_min: float = 1e-2,
                    w_max: float | None = None) -> dict[str, np.ndarray]:
    """``|G(iw)|`` of the paper's systems on a plotting grid that resolves S4D's spikes.

    The grid is ``points`` log-spaced frequencies in ``[w_min, w_max]`` (default ``w_max = 10 (w_spike + 1)``)
    merged with ``Im lambda_k + {0, +-1/2} |Re lambda_k|`` for the eigenvalues of ``A_N`` (the spike tops).
    Returns ``{"w": (m,), "dplr": (m,), "diag": (m,), "ptd": (m,)}`` (``ptd`` only if computed).
    """
    points = check_positive_int("points", points, minimum=2)
    top = 10.0 * (systems.spike_frequency + 1.0) if w_max is None else float(w_max)
    if not (0 < w_min < top):
        raise ValueError(f"w_min must be in (0, w_max), got w_min={w_min!r}, w_max={top!r}")
    lam = systems.normal_eigenvalues
    spikes = _pole_points(lam[lam.imag > 0], (0.0, -0.5, 0.5))
    w = np.unique(np.concatenate([np.logspace(math.log10(w_min), math.log10(top), points),
                                  spikes[(spikes >= w_min) & (spikes <= top)]]))
    out = {"w": w, "dplr": np.abs(systems.dplr(w)), "diag": np.abs(systems.diag(w))}
    if systems.ptd is not None:
        out["ptd"] = np.abs(systems.ptd_tf(w))
    return out


# ------------------------------------------------------------------------------------------------------------
# sup norm


@dataclass(frozen=True)
class SupNorm:
    """Estimate of ``sup_w |G(iw)|``: the largest value found and where (``>= 0`` for real systems)."""

    value: float
    frequency: float
    evaluations: int


def _pole_points(poles: np.ndarray, offsets: tuple[float, ...]) -> np.ndarray:
    """``Im p + c |Re p|`` for every pole ``p`` and offset ``c`` (Lorentzian half-widths around each peak)."""
    if poles.size == 0:
        return np.zeros(0)
    width = np.maximum(np.abs(poles.real), 1e-8)
    return (poles.imag[:, None] + np.asarray(offsets)[None, :] * width[:, None]).ravel()


def sup_norm(G: TransferFunction, *, poles: np.ndarray | None = None, w_min: float = 1e-3,
             w_max: float | None = None, grid_points: int = 4000, refine: int = 24,
             conjugate_symmetric: bool = True) -> SupNorm:
    r"""Estimate ``sup_w |G(iw)|`` of a vectorized SISO transfer function ``G: (m,) -> (m,)``.

    1. Evaluate on a log grid of ``grid_points`` frequencies in ``[w_min, w_max]`` plus ``w = 0`` plus, for
       every pole ``p`` in ``poles``, the points ``Im p + c |Re p|``, ``c in {0, +-1/2, +-1, +-2}``: near a
       pole ``|G|`` is a Lorentzian of half-width ``|Re p|``, far narrower than the log grid spacing at high
       ``w`` (S4D's spikes at ``w ~ n^2/pi`` are about 1 wide), so the pole frequencies must be on the grid.
    2. Refine the ``refine`` largest local maxima of the grid with bounded Brent maximization on the interval
       between their grid neighbours.

    Every value reported is an actual ``|G(iw)|``, so the estimate is a lower bound of the supremum, and it is
    the supremum up to the refinement tolerance whenever each peak is on or next to a grid point (true for
    peaks caused by the given poles, which is the use here).

    Args:
        G: vectorized transfer function of real frequencies.
        poles: complex poles of ``G`` (or of the systems whose difference ``G`` is).
        w_min: smallest positive grid frequency.
        w_max: largest grid frequency; default ``10 max(1, |p|)`` over the poles.
        grid_points: log-grid size.
        refine: how many local maxima to refine.
        conjugate_symmetric: ``|G(-iw)| = |G(iw)|`` (a real system): search ``w >= 0`` only; else both signs.
    """
    p = np.zeros(0, complex) if poles is None else check_finite_array("poles", poles, ndim=1).astype(complex)
    if not (w_min > 0 and math.isfinite(w_min)):
        raise ValueError(f"w_min must be a finite number > 0, got {w_min!r}")
    if w_max is None:
        w_max = 10.0 * max(1.0, float(np.abs(p).max()) if p.size else 1.0)
    if not (math.isfinite(w_max) and w_max > w_min):
        raise ValueError(f"w_max must be finite and > w_min, got {w_max!r}")
    grid_points = check_positive_int("grid_points", grid_points, minimum=2)
    refine = check_positive_int("refine", refine, minimum=0)
    pos = np.logspace(math.log10(w_min), math.log10(w_max), grid_points)
    extra = _pole_points(p, (0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.0))
    if conjugate_symmetric:
        grid = np.concatenate([[0.0], pos, np.abs(extra)])
    else:
        grid = np.concatenate([[0.0], pos, -pos, extra])
    grid = np.unique(grid)
    vals = np.abs(np.asarray(G(grid))).reshape(-1)
    if vals.shape != grid.shape:
        raise ValueError(f"G must map (m,) frequencies to (m,) values, got {vals.shape} for m={grid.size}")
    if not np.all(np.isfinite(vals)):
        raise ValueError("G returned NaN or inf on the frequency grid")
    evals = grid.size
    best_i = int(np.argmax(vals))
    best_v, best_w = float(vals[best_i]), float(grid[best_i])
    # Local maxima of the sampled |G| (ends included), largest first.
    left = np.concatenate([[-np.inf], vals[:-1]])
    right = np.concatenate([vals[1:], [-np.inf]])
    peaks = np.flatnonzero((vals >= left) & (vals >= right))
    peaks = peaks[np.argsort(-vals[peaks])][:refine]
    for i in peaks:
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        if b <= a:
            continue
        res = scipy.optimize.minimize_scalar(lambda x: -float(np.abs(G(np.array([x])))[0]), bounds=(a, b),
                                             method="bounded",
                                             options={"xatol": 1e-10 * max(1.0, abs(a), abs(b))})
        evals += int(res.nfev)
        if np.isfinite(res.fun) and -res.fun > best_v:
            best_v, best_w = float(-res.fun), float(res.x)
    return SupNorm(best_v, abs(best_w) if conjugate_symmetric else best_w, evals)


# ------------------------------------------------------------------------------------------------------------
# output L2 errors


def _breakpoints(poles: np.ndarray, conjugate_symmetric: bool) -> np.ndarray:
    """Quadrature breakpoints: each pole's frequency and its Lorentzian half-widths, merged when too close."""
    pts = _pole_points(poles, (0.0, -1.0, 1.0, -4.0, 4.0))
    if conjugate_symmetric:
        pts = np.abs(pts)
        pts = np.concatenate([[0.0], pts])
    pts = np.unique(pts)
    keep = [pts[0]]
    for x in pts[1:]:  # merge points closer than 1e-3 relative: a panel that thin carries no information
        if x - keep[-1] > 1e-3 * max(1.0, abs(x)):
            keep.append(x)
    return np.asarray(keep)


def output_l2_error(G1: TransferFunction, G2: TransferFunction,
                    inputs: str | Callable[[np.ndarray], np.ndarray] = "exp", *,
                    poles: np.ndarray | None = None, conjugate_symmetric: bool = True,
                    epsrel: float = 1e-8) -> float:
    r"""``||y_1 - y_2||_{L2(0, inf)}``: the L2 norm of the output difference of two systems for one input.

    By Parseval, with ``U`` the Laplace transform of the input,

    .. math:: \|y_1 - y_2\|_{L^2(0,\infty)}^2 = \frac{1}{2\pi} \int_{-\infty}^{\infty}
              |(G_1 - G_2)(i\omega) \, U(i\omega)|^2 \, d\omega,

    integrated with adaptive Gauss-Kronrod (``scipy.integrate.quad``) on panels between breakpoints at every
    pole frequency ``Im p`` and ``Im p +- |Re p|, +- 4|Re p|`` (the integrand is a sum of Lorentzian-like
    peaks of half-width ``|Re p|``; without the breakpoints quad would step over S4D's narrow spikes at large
    ``w``), and on the tail beyond the last breakpoint with quad's transformation of the infinite interval.
    For real systems (``conjugate_symmetric``) the integral is twice the one over ``w >= 0``.

    Args:
        G1, G2: vectorized SISO transfer functions ``(m,) -> (m,)``.
        inputs: ``"exp"`` (``u = e^{-t}``, ``U(s) = 1/(s+1)``), ``"impulse"`` (``u = delta``, ``U = 1``) or a
            vectorized callable ``U(s)`` of complex ``s``.
        poles: poles of ``G1`` and ``G2`` (both), used as breakpoints.
        conjugate_symmetric: both systems are real (``G(-iw) = conj G(iw)``).
        epsrel: relative tolerance of each quad call.

    Returns:
        The L2 norm (time-domain normalization, so e.g. the impulse response of ``1/(s+1)`` has norm
        ``1/sqrt(2)``). The integral must converge: ``(G_1 - G_2) U = O(1/w)`` or faster at infinity.
    """
    if isinstance(inputs, str):
        check_choice("inputs", inputs, INPUTS)
        U = INPUTS[inputs]
        in_poles = _INPUT_POLES[inputs]
    elif callable(inputs):
        U, in_poles = inputs, np.zeros(0, complex)
    else:
        raise ValueError(f"inputs must be one of {sorted(INPUTS)} or a callable U(s), got {inputs!r}")
    p = np.zeros(0, complex) if poles is None else check_finite_array("poles", poles, ndim=1).astype(complex)
    p = np.concatenate([p, in_poles])

    def f(x: float) -> float:
        w = np.array([x])
        return float(np.abs((G1(w) - G2(w)) * U(1j * w))[0] ** 2)

    bps = _breakpoints(p, conjugate_symmetric)
    if not conjugate_symmetric:
        bps = np.unique(np.concatenate([bps, [0.0]]))
    total = 0.0
    opts = {"epsabs": 0.0, "epsrel": epsrel, "limit": 200}
    for a, b in zip(bps[:-1], bps[1:], strict=True):
        total += scipy.integrate.quad(f, a, b, **opts)[0]
    total += scipy.integrate.quad(f, bps[-1], np.inf, **opts)[0]
    if not conjugate_symmetric:
        total += scipy.integrate.quad(f, -np.inf, bps[0], **opts)[0]
    else:
        total *= 2.0
    return math.sqrt(total / (2.0 * math.pi))


# ------------------------------------------------------------------------------------------------------------
# the paper's comparison at one n


def transfer_analysis(n: int, C: np.ndarray | None = None, *, seed: int = 0, ptd: bool | PTDResult = True,
                      grid_points: int = 4000, **ptd_kwargs: object) -> dict:
    r"""S4D and S4-PTD against S4 at size ``n``: the numbers of the paper's transfer-function comparison.

    Returns a JSON-ready dict with keys ``n``, ``seed`` (of ``C``), ``spike_frequency``
    (``w_max = max Im eig A_N``),
    ``sup_dplr`` (``sup |G_DPLR|``), ``sup_diag_error`` and ``sup_diag_error_frequency``
    (``sup |G_Diag - G_DPLR|`` and its argmax), ``sup_ptd_error`` and ``sup_ptd_error_frequency``,
    ``l2_exp_diag``, ``l2_exp_ptd``, ``l2_impulse_diag``, ``l2_impulse_ptd`` (:func:`output_l2_error` of Diag
    resp. PTD against DPLR for ``u = e^{-t}`` and the unit impulse), and ``ptd`` (the PTD diagnostics
    ``kappa``, ``relative_perturbation``, ``max_real``, ``cached``). The PTD keys are ``None`` when
    ``ptd=False``.
    """
    sys_ = paper_systems(n, C, seed=seed, ptd=ptd, **ptd_kwargs)
    p_dplr, p_diag = sys_.poles("dplr"), sys_.poles("diag")
    sup_dplr = sup_norm(sys_.dplr, poles=p_dplr, w_max=10.0 * sys_.spike_frequency + 10.0,
                        grid_points=grid_points)

    def diff(a: TransferFunction, b: TransferFunction) -> TransferFunction:
        return lambda w: a(w) - b(w)

    both = np.concatenate([p_dplr, p_diag])
    sup_diag = sup_norm(diff(sys_.diag, sys_.dplr), poles=both, grid_points=grid_points)
    row: dict = {
        "n": sys_.n,
        "seed": seed,
        "spike_frequency": sys_.spike_frequency,
        "sup_dplr": sup_dplr.value,
        "sup_diag_error": sup_diag.value,
        "sup_diag_error_frequency": sup_diag.frequency,
        "l2_exp_diag": output_l2_error(sys_.diag, sys_.dplr, "exp", poles=both),
        "l2_impulse_diag": output_l2_error(sys_.diag, sys_.dplr, "impulse", poles=both),
    }
    if sys_.ptd is not None:
        both_ptd = np.concatenate([p_dplr, sys_.poles("ptd")])
        sup_ptd = sup_norm(diff(sys_.ptd_tf, sys_.dplr), poles=both_ptd, grid_points=grid_points)
        d = sys_.ptd.diagnostics
        row.update(
            sup_ptd_error=sup_ptd.value,
            sup_ptd_error_frequency=sup_ptd.frequency,
            l2_exp_ptd=output_l2_error(sys_.ptd_tf, sys_.dplr, "exp", poles=both_ptd),
            l2_impulse_ptd=output_l2_error(sys_.ptd_tf, sys_.dplr, "impulse", poles=both_ptd),
            ptd={k: d.get(k) for k in ("kappa", "relative_perturbation", "max_real", "cached")},
        )
    else:
        row.update(sup_ptd_error=None, sup_ptd_error_frequency=None, l2_exp_ptd=None, l2_impulse_ptd=None,
                   ptd=None)
    return row
