r"""Basis functions of an SSM: ``K_n(t) = (e^{tA} B)_n`` (*How to Train Your HiPPO*, Gu et al., ICLR 2023).

A time-invariant SSM ``x' = A x + B u`` started at rest has state ``x(t) = sum_s K(t - s) u(s)``: each state is the
inner product of the input history with one basis function of the *age* ``t - s``. For the HiPPO matrices in s4's
normalisation (:func:`ptdssm.theory.hippo.hippo_nplr`, window ``W = 2``):

======= ===================================================================== ==================================
measure ``K_n(t)``                                                            where
======= ===================================================================== ==================================
legs    ``sqrt(2n+1) P_n(2 e^{-t} - 1) e^{-t}`` (exact)                       all ``t >= 0``
legt    ``(1/W) sqrt(2n+1) P_n(1 - 2t/W)``                                    ``0 <= t < W``, then ``~ 0``
fout    ``(1/W) [1, 0, sqrt2 cos(2 pi k t/W), sqrt2 sin(2 pi k t/W), ...]``   ``0 <= t < W``, then ``~ 0``
======= ===================================================================== ==================================

LegT and FouT approximate a finite window with a finite state: the low orders are close (measured at ``n = 64``, first
8 orders: RMS 0.03 (LegT) and 0.01 (FouT) inside the window, 0.002 and 0.01 after it; smaller at ``n = 256``), FouT's
highest orders are not (its full-vector tail RMS stays near 0.11 for every ``n``: weak, not strong, truncation).
:func:`hippo_basis` computes ``K`` numerically (float64 ``scipy.linalg.expm`` of one grid step, then powers of it
on a uniform grid); :func:`basis_closed_form` gives the table above.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.polynomial import legendre

from .._checks import check_choice, check_finite_array, check_positive_float, check_positive_int
from .hippo import NPLR_MEASURES, S4_WINDOW, hippo_fout, hippo_legs, hippo_legt

__all__ = ["BASIS_MEASURES", "basis_closed_form", "basis_errors", "hippo_basis"]

#: Measures :func:`hippo_basis` and ``ptdssm analyze basis`` take.
BASIS_MEASURES = NPLR_MEASURES


def _system(measure: str, n: int, window: float) -> tuple[np.ndarray, np.ndarray]:
    if measure == "legs":
        return hippo_legs(n)
    return (hippo_legt if measure == "legt" else hippo_fout)(n, window)


def _check_t(t: object) -> np.ndarray:
    t = check_finite_array("t", t, ndim=1)
    if t.size == 0 or np.any(t < 0):
        raise ValueError("t must be a non-empty 1-D array of times >= 0")
    return t


def hippo_basis(measure: str, n: int, t: np.ndarray, *, window: float = S4_WINDOW) -> np.ndarray:
    r"""``K(t) = e^{tA} B`` of the named HiPPO system, shape ``(len(t), n)`` (float64).

    Args:
        measure: ``legs``, ``legt`` or ``fout``.
        n: state size.
        t: ``(T,)`` times ``>= 0``. On a uniform ascending grid ``K(t_0)`` comes from one ``expm`` and each next
            point from one product with ``expm(h A)``; otherwise every point is its own ``expm``.
        window: window of LegT and FouT in time units (default :data:`~ptdssm.theory.hippo.S4_WINDOW`, s4's).
    """
    measure = check_choice("measure", measure, BASIS_MEASURES)
    n = check_positive_int("n", n)
    W = check_positive_float("window", window)
    t = _check_t(t)
    A, B = _system(measure, n, W)
    out = np.empty((t.size, n))
    steps = np.diff(t)
    if t.size > 2 and np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-9, atol=0.0):
        step = scipy.linalg.expm(steps[0] * A)
        x = scipy.linalg.expm(t[0] * A) @ B
        for i in range(t.size):
            out[i] = x
            x = step @ x
        return out
    for i, ti in enumerate(t):
        out[i] = scipy.linalg.expm(ti * A) @ B
    return out


def basis_closed_form(measure: str, n: int, t: np.ndarray, *, window: float = S4_WINDOW) -> np.ndarray:
    """The closed forms of the module table, ``(len(t), n)``; LegT and FouT are 0 for ``t >= window``."""
    measure = check_choice("measure", measure, BASIS_MEASURES)
    n = check_positive_int("n", n)
    W = check_positive_float("window", window)
    t = _check_t(t)
    k = np.arange(n)
    if measure == "legs":
        x = 2.0 * np.exp(-t) - 1.0
        return np.sqrt(2 * k + 1) * legendre.legvander(x, n - 1) * np.exp(-t)[:, None]
    inside = (t < W)[:, None]
    if measure == "legt":
        return inside * np.sqrt(2 * k + 1) * legendre.legvander(1.0 - 2.0 * t / W, n - 1) / W
    out = np.zeros((t.size, n))
    out[:, 0] = 1.0
    for c in range(2, n, 2):
        w = 2.0 * np.pi * (c // 2) / W
        out[:, c] = np.sqrt(2.0) * np.cos(w * t)
        if c + 1 < n:
            out[:, c + 1] = np.sqrt(2.0) * np.sin(w * t)
    return inside * out / W


def basis_errors(measure: str, n: int, t: np.ndarray, K: np.ndarray, *, window: float = S4_WINDOW,
                 low_orders: int = 8) -> dict[str, float | None]:
    """RMS distances of a computed basis ``K (len(t), n)`` from :func:`basis_closed_form`.

    Away from the jumps at ``t = 0`` and ``t = W`` (``W = window``), where a truncated basis rings:

    - ``rms_low_window``: orders ``< low_orders`` on ``0.025 W <= t <= 0.9 W``;
    - ``rms_low_after``: the same orders on ``t >= 1.15 W`` (the window has closed: ``K ~ 0``);
    - ``rms_all_after``: every order on ``t >= 1.15 W`` (FouT's stays near 0.11 at every ``n``).

    ``None`` where ``t`` has no point in the range. For LegS (no window; its closed form is exact) the same ranges
    are used.
    """
    ref = basis_closed_form(measure, n, t, window=window)
    err = np.asarray(K, dtype=float) - ref
    lo = slice(0, min(check_positive_int("low_orders", low_orders), n))
    inside = (t >= 0.025 * window) & (t <= 0.9 * window)
    after = t >= 1.15 * window

    def rms(a: np.ndarray) -> float | None:
        return float(np.sqrt(np.mean(a**2))) if a.size else None

    return {"rms_low_window": rms(err[inside][:, lo]), "rms_low_after": rms(err[after][:, lo]),
            "rms_all_after": rms(err[after])}
