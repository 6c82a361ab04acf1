r"""Sup norms and output L2 errors of SISO transfer functions on the imaginary axis (float64).

:func:`sup_norm` estimates ``sup_w |G(iw)|`` with a log grid plus the pole frequencies and local refinement;
:func:`output_l2_error` integrates ``|(G_1 - G_2)(iw) U(iw)|^2`` over ``w`` (Parseval) for the paper's test inputs
:data:`INPUTS`. Near a pole ``p`` the magnitude of a transfer function is a Lorentzian of half-width ``|Re p|``,
far narrower than any log grid at high ``w``, so both place points at the pole frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import scipy.optimize

from .._checks import check_choice, check_finite_array, check_positive_int
from .transfer_functions import TransferFunction

__all__ = ["INPUTS", "SupNorm", "output_l2_error", "sup_norm"]

# Laplace transforms U(s) of the test inputs of the paper: u(t) = e^-t (t >= 0) and the unit impulse delta(t).
INPUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": lambda s: 1.0 / (s + 1.0),
    "impulse": lambda s: np.ones_like(s),
}
_INPUT_POLES = {"exp": np.array([-1.0 + 0j]), "impulse": np.zeros(0, complex)}


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
