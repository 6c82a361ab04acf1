r"""AR(p) series with known coefficients: the synthetic forecasting task whose best predictor is known.

``x_t = sum_{k=1}^{p} phi_k x_{t-k} + sigma e_t``, ``e_t ~ N(0, 1)`` i.i.d., started at zero and run ``burn_in``
steps before the kept ``n`` (so the kept part is stationary). The process is stationary iff every root of the
characteristic polynomial ``z^p - phi_1 z^{p-1} - ... - phi_p`` lies strictly inside the unit circle.

The default coefficients put two damped oscillations together: poles ``0.995 e^{+-2 pi i / 24}`` (a slow
"daily" cycle of period 24) and ``0.95 e^{+-2 pi i / 7}``; ``phi`` is read off the product of the two quadratic
factors ``(z^2 - 2 r cos(theta) z + r^2)``. With these, the h-step-ahead error of the optimal predictor keeps growing
over a horizon of 96 steps, so a model that rolls the recurrence forward beats one that does not by a wide margin.

The best predictor of ``x_{t+h}`` given the past is the recurrence rolled forward with the noise set to zero; with
``phi`` estimated by least squares on the training split it is the oracle of
:func:`ptdssm.experiments.forecast_baselines.ar_oracle`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ...errors import DataError

__all__ = ["DEFAULT_POLES", "ar_coefficients_from_poles", "check_stationary", "default_phi", "simulate_ar"]

#: ``(modulus, period)`` of each complex pole pair of the default AR(4) (module docstring).
DEFAULT_POLES = ((0.995, 24.0), (0.95, 7.0))


def ar_coefficients_from_poles(poles: Sequence[tuple[float, float]]) -> list[float]:
    """``phi`` of the AR process whose characteristic roots are ``r e^{+-2 pi i / period}`` for each
    ``(r, period)``: ``z^p - phi_1 z^{p-1} - ... - phi_p = prod (z^2 - 2 r cos(2 pi / period) z + r^2)``."""
    poly = np.array([1.0])
    for r, period in poles:
        poly = np.convolve(poly, [1.0, -2.0 * r * math.cos(2.0 * math.pi / period), r * r])
    return [float(-c) for c in poly[1:]]


def default_phi() -> list[float]:
    """The default AR(4) coefficients (:data:`DEFAULT_POLES`)."""
    return ar_coefficients_from_poles(DEFAULT_POLES)


def check_stationary(phi: Sequence[float]) -> None:
    """Raise a one-line :class:`~ptdssm.errors.DataError` naming ``data.options.phi`` unless every characteristic
    root has modulus < 1."""
    phi = [float(v) for v in phi]
    if not phi:
        raise DataError("data.options.phi must hold at least one coefficient")
    roots = np.roots([1.0, *(-v for v in phi)])
    largest = float(np.abs(roots).max())
    if largest >= 1.0:
        raise DataError(f"data.options.phi {phi} is not stationary: a characteristic root has modulus "
                        f"{largest:.4f} >= 1")


def simulate_ar(phi: Sequence[float], n: int, *, sigma: float = 1.0, seed: int = 0, burn_in: int = 1000) -> np.ndarray:
    """``n`` steps of the AR process (module docstring), float64 ``(n,)``, seeded by ``seed``."""
    check_stationary(phi)
    from scipy.signal import lfilter

    e = sigma * np.random.default_rng(seed).standard_normal(n + burn_in)
    x = lfilter([1.0], [1.0, *(-float(v) for v in phi)], e)  # the recurrence, started at zero
    return np.asarray(x[burn_in:], dtype=np.float64)
