"""Tables of the paper's numerical analyses, shared by ``ptdssm analyze`` and ``ptdssm reproduce``.

* :func:`transfer_rows`: per state size ``n``, sup and L2 errors of S4D (Diag) and S4-PTD against S4 (DPLR).
* :func:`conditioning_row`: eigenvector condition numbers of the exact, PTD and random-perturbation decompositions.
* :func:`kappa_vs_perturbation`: kappa against ``||E||`` for optimized versus random perturbations (one ``n``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..theory.transfer import PaperSystems

__all__ = ["FLOAT64_EIG_SATURATION", "MAX_N", "check_sizes", "conditioning_row", "conditioning_series",
           "eigenvector_condition", "finite_or_none", "random_kappas", "kappa_vs_perturbation", "transfer_rows"]

FLOAT64_EIG_SATURATION = 1e15  # kappa above ~1/eps(float64) = 4.5e15 is not resolved by a float64 eig

#: Largest state size the analyses take. The PTD solve costs O(n^3) per iteration, up to 2000 iterations: measured
#: on the project's 2-core VM, ~40 s at n = 128 and ~4 CPU-minutes (11 min wall on a loaded machine) at n = 256; n =
#: 512 is hours, and n = 100000 would need 75 GiB for one float64 matrix.
MAX_N = 512


def check_sizes(ns: Iterable[object], what: str = "--n") -> list[int]:
    """The state sizes ``ns`` as ints, each in ``1 .. MAX_N``; a one-line ``ValueError`` naming ``what`` otherwise
    (``ptdssm analyze`` and ``ptdssm reproduce`` check here, before any work)."""
    from .._checks import check_positive_int

    out = [check_positive_int(what, n) for n in ns]
    if not out:
        raise ValueError(f"{what} needs at least one state size")
    big = [n for n in out if n > MAX_N]
    if big:
        raise ValueError(f"{what} {big[0]} is above the limit {MAX_N}: the PTD solve costs O(n^3) per iteration "
                         f"(n = 128 takes ~40 s, n = 256 ~4 CPU-minutes), so n = {big[0]} would run for hours or "
                         f"exhaust memory")
    return out


def finite_or_none(x: float | None) -> float | None:
    """JSON has no inf/NaN: map them to null."""
    return float(x) if x is not None and math.isfinite(x) else None


_TRANSFER_MEAN_KEYS = ("sup_dplr", "sup_diag_error", "sup_ptd_error", "l2_exp_diag", "l2_exp_ptd",
                       "l2_impulse_diag", "l2_impulse_ptd")


def transfer_rows(ns: Iterable[int], seeds: Sequence[int], ptd_kwargs: dict,
                  curves: bool = False) -> tuple[list[dict], list[dict]]:
    """Per ``n``: :func:`~ptdssm.theory.transfer.transfer_analysis` averaged over the output vectors ``C`` of
    ``seeds`` (one PTD decomposition per ``n``), and, with ``curves``, the plotting panels."""
    from ..theory.transfer import paper_systems, transfer_analysis

    rows, panels = [], []
    for n in ns:
        systems = paper_systems(n, seed=seeds[0], **ptd_kwargs)
        per_seed = [transfer_analysis(n, seed=s, ptd=systems.ptd) for s in seeds]
        first = per_seed[0]
        row = {"n": n, "spike_frequency": first["spike_frequency"]}
        for key in _TRANSFER_MEAN_KEYS:
            row[key] = float(np.mean([r[key] for r in per_seed]))
        row["sup_diag_error_frequency"] = first["sup_diag_error_frequency"]
        row["sup_ptd_error_frequency"] = first["sup_ptd_error_frequency"]
        row["ptd"] = first["ptd"]
        rows.append(row)
        if curves:
            panels.append({"n": n, "spike_frequency": systems.spike_frequency, **_curve_panel(systems)})
    return rows, panels


def _curve_panel(systems: PaperSystems) -> dict:
    from ..theory.transfer import transfer_curves

    c = transfer_curves(systems)
    return {"w": c.pop("w"), "curves": c}


def eigenvector_condition(A: np.ndarray) -> float:
    """2-norm condition number of the unit-column eigenvectors of ``A`` from float64 ``np.linalg.eig``."""
    _, V = np.linalg.eig(A)
    V = V / np.linalg.norm(V, axis=0, keepdims=True)
    s = np.linalg.svd(V, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


def random_kappas(A: np.ndarray, epsilon: float, trials: int) -> np.ndarray:
    """kappa of ``A + E`` for ``trials`` Gaussian ``E`` (seeds ``0..trials-1``) with ``||E||_2 = epsilon ||A||_2``,
    diagonalized as is: no stability fix, which would change ``||E||`` (the question is only how well-conditioned a
    random perturbation of that size makes ``V``)."""
    from ..theory.ptd import random_perturbation

    return np.array([eigenvector_condition(A + random_perturbation(A, epsilon, t)) for t in range(trials)])


def conditioning_series(rows: Sequence[dict]) -> dict[str, list[float]]:
    """The curves of the kappa-vs-n figure from :func:`conditioning_row` rows (``NaN`` where kappa is infinite)."""
    return {
        "exact eig of $A_H$ (float64)": [math.nan if r["kappa_exact"] is None else r["kappa_exact"] for r in rows],
        "PTD (optimized $E$)": [r["kappa_ptd"] for r in rows],
        "random $E$, same $\\|E\\|$ (median)": [r["kappa_random_median"] for r in rows],
    }


def conditioning_row(n: int, *, gamma: float, ptd_seed: int, trials: int) -> dict:
    """kappa of the float64 eigendecomposition of ``A_H`` vs PTD vs random Gaussian ``E`` of PTD's size.

    Keys: ``n``, ``kappa_exact``, ``exact_saturated``, ``kappa_ptd``, ``relative_perturbation_ptd``,
    ``kappa_random_median`` / ``_min`` / ``_max`` (over ``trials`` seeds), ``relative_perturbation_random``,
    ``kappa_random_over_ptd``, ``max_real_ptd``.
    """
    from ..theory.hippo import hippo_legs
    from ..theory.ptd import perturb_then_diagonalize

    A, _ = hippo_legs(n)
    kappa_exact = eigenvector_condition(A)
    ptd = perturb_then_diagonalize(n=n, gamma=gamma, seed=ptd_seed)
    eps = ptd.relative_perturbation
    k_rnd = random_kappas(A, eps, trials)
    return {
        "n": n,
        "kappa_exact": finite_or_none(kappa_exact),
        "exact_saturated": bool(not math.isfinite(kappa_exact) or kappa_exact > FLOAT64_EIG_SATURATION),
        "kappa_ptd": ptd.kappa,
        "relative_perturbation_ptd": eps,
        "kappa_random_median": float(np.median(k_rnd)),
        "kappa_random_min": float(k_rnd.min()),
        "kappa_random_max": float(k_rnd.max()),
        "relative_perturbation_random": eps,  # exactly PTD's, by construction
        "kappa_random_over_ptd": float(np.median(k_rnd) / ptd.kappa),
        "max_real_ptd": ptd.diagnostics["max_real"],
    }


def kappa_vs_perturbation(n: int = 32, *, gammas: Sequence[float] = (25.0, 50.0, 100.0, 200.0, 400.0),
                          epsilons: Sequence[float] = (0.01, 0.03, 0.1, 0.3), trials: int = 5) -> dict:
    """kappa(V) against ``||E||_2 / ||A||_2``: optimized PTD over ``gammas`` vs random Gaussian ``E`` over ``epsilons``
    (median over ``trials`` seeds), for HiPPO-LegS of size ``n``.

    Returns:
        ``{"n", "optimized": [{"gamma", "relative_perturbation", "kappa"}], "random": [{"epsilon", "kappa_median",
        "kappa_min", "kappa_max"}]}``.
    """
    from ..theory.hippo import hippo_legs
    from ..theory.ptd import perturb_then_diagonalize

    A, _ = hippo_legs(n)
    optimized = []
    for g in gammas:
        res = perturb_then_diagonalize(n=n, gamma=g)
        optimized.append({"gamma": g, "relative_perturbation": res.relative_perturbation, "kappa": res.kappa})
    random = []
    for eps in epsilons:
        ks = random_kappas(A, eps, trials)
        random.append({"epsilon": eps, "kappa_median": float(np.median(ks)), "kappa_min": float(np.min(ks)),
                       "kappa_max": float(np.max(ks))})
    return {"n": n, "optimized": optimized, "random": random}
