r"""The paper's three LegS systems (S4, S4D/S5, S4-PTD) and their comparison at one ``n`` (float64).

- ``G_DPLR``: ``(A_H, B_H, C)``, what S4 computes (diagonal-plus-low-rank, through the Woodbury identity);
- ``G_Diag``: ``(A_N, B_H, C)`` with the normal part ``A_N = A_H + P P^T`` diagonalized by a unitary ``V``
  (S4D-LegS / S5): ``Lambda = eig(A_N)``, ``B~ = V^H B_H``, ``C~ = C V``;
- ``G_PTD``: ``(A_H + E, B_H, C)`` from :func:`~ptdssm.theory.ptd.perturb_then_diagonalize`:
  ``B~ = V~^{-1} B_H``, ``C~ = C V~``.

:func:`transfer_analysis` gives the sup and output-L2 errors of S4D and S4-PTD against S4 (module
:mod:`ptdssm.theory.transfer` has the math).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_finite_array, check_positive_int
from .frequency_norms import _pole_points, output_l2_error, sup_norm
from .hippo import hippo_legs_nplr
from .init import ptd_options
from .ptd import PTDResult, perturb_then_diagonalize
from .transfer_functions import TransferFunction, _frequencies, _normal_eig, _siso_diagonal, random_unit_vector

__all__ = ["PTD_KEYS", "PaperSystems", "paper_systems", "transfer_analysis", "transfer_curves"]

#: The PTD diagnostics a :func:`transfer_analysis` row reports (which decomposition was compared, and how good it is).
PTD_KEYS = ("objective", "pairs", "response_weight", "kappa", "relative_perturbation", "max_real",
            "real_eigenvalues", "response_error", "seconds", "cached")


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
        **ptd_kwargs: passed to :func:`~ptdssm.theory.ptd.perturb_then_diagonalize` over the options of the
            default PTD init ``ptd`` (:func:`~ptdssm.theory.init.ptd_options`; ``objective``, ``pairs``, ``gamma``,
            ``seed`` is ``ptd_seed`` here, ``method``, ...).
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
        kwargs = ptd_options("ptd", ptd_kwargs)
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


def transfer_analysis(n: int, C: np.ndarray | None = None, *, seed: int = 0, ptd: bool | PTDResult = True,
                      grid_points: int = 4000, **ptd_kwargs: object) -> dict:
    r"""S4D and S4-PTD against S4 at size ``n``: the numbers of the paper's transfer-function comparison.

    Returns a JSON-ready dict with keys ``n``, ``seed`` (of ``C``), ``spike_frequency``
    (``w_max = max Im eig A_N``),
    ``sup_dplr`` (``sup |G_DPLR|``), ``sup_diag_error`` and ``sup_diag_error_frequency``
    (``sup |G_Diag - G_DPLR|`` and its argmax), ``sup_ptd_error`` and ``sup_ptd_error_frequency``,
    ``l2_exp_diag``, ``l2_exp_ptd``, ``l2_impulse_diag``, ``l2_impulse_ptd`` (:func:`output_l2_error` of Diag
    resp. PTD against DPLR for ``u = e^{-t}`` and the unit impulse), and ``ptd`` (the PTD diagnostics
    :data:`PTD_KEYS`: which decomposition, ``objective`` and ``pairs``, and its ``kappa``,
    ``relative_perturbation``, ...; ``None`` where a diagnostic does not apply). The PTD keys are ``None`` when
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
            ptd={k: d.get(k) for k in PTD_KEYS},
        )
    else:
        row.update(sup_ptd_error=None, sup_ptd_error_frequency=None, l2_exp_ptd=None, l2_impulse_ptd=None,
                   ptd=None)
    return row
