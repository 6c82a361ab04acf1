"""HiPPO matrices against their closed forms and against the ODEs they are defined by.

The ODE checks are independent of the matrix formulas: the coefficients of an input on the measure's orthonormal
basis are computed by Gauss-Legendre quadrature, their time derivative by central differences, and compared with
``A c + B u`` (LegS: divided by ``t``).
"""

import numpy as np
import pytest
from numpy.polynomial import legendre

from ptdssm import hippo, hippo_fout, hippo_lagt, hippo_legs, hippo_legs_nplr, hippo_legt

NODES, WEIGHTS = legendre.leggauss(200)


def _integrate(fn, a: float, b: float) -> np.ndarray:
    x = 0.5 * (b - a) * NODES + 0.5 * (b + a)
    return 0.5 * (b - a) * (fn(x) @ WEIGHTS)


def _legendre_basis(n: int, s: np.ndarray) -> np.ndarray:
    """``sqrt(2i+1) P_i(2s - 1)``, orthonormal on [0, 1]; shape (n, len(s))."""
    return np.stack([np.sqrt(2 * i + 1) * legendre.Legendre.basis(i)(2 * s - 1) for i in range(n)])


def test_legs_closed_form_and_spectrum():
    n = 7
    A, B = hippo_legs(n)
    for i in range(n):
        assert B[i] == pytest.approx(np.sqrt(2 * i + 1))
        for j in range(n):
            expected = -np.sqrt((2 * i + 1) * (2 * j + 1)) if i > j else (-(i + 1) if i == j else 0.0)
            assert A[i, j] == pytest.approx(expected)
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(A).real), -np.arange(n, 0, -1), atol=1e-6)


def test_legs_is_the_scaled_legendre_ode():
    n, t, h = 6, 1.3, 1e-4
    f = lambda x: np.sin(3 * x) + x**2  # noqa: E731  (LegS is exact for any input)

    def coeffs(t):
        return _integrate(lambda x: f(x) * _legendre_basis(n, x / t), 0.0, t) / t

    A, B = hippo_legs(n)
    dc = (coeffs(t + h) - coeffs(t - h)) / (2 * h)
    np.testing.assert_allclose(dc, (A @ coeffs(t) + B * f(t)) / t, atol=1e-6)


def test_legt_is_the_sliding_window_legendre_ode():
    n, t, h = 6, 2.0, 1e-4
    f = lambda x: 1 - 2 * x + 0.5 * x**3 - 0.1 * x**5  # noqa: E731  (degree < n: the window is represented exactly)

    def coeffs(t):
        return _integrate(lambda x: f(x) * _legendre_basis(n, x - (t - 1)), t - 1.0, t)

    A, B = hippo_legt(n)
    dc = (coeffs(t + h) - coeffs(t - h)) / (2 * h)
    np.testing.assert_allclose(dc, A @ coeffs(t) + B * f(t), atol=1e-6)


def test_fout_is_the_sliding_window_fourier_ode():
    n, t, h = 7, 0.37, 1e-5
    f = lambda x: 0.3 + np.cos(2 * np.pi * x) - 0.7 * np.sin(6 * np.pi * x)  # noqa: E731  (in the span of the basis)

    def basis(s):
        rows = [np.ones_like(s)]
        for k in range(1, (n + 1) // 2 + 1):
            rows += [np.sqrt(2) * np.cos(2 * np.pi * k * s), np.sqrt(2) * np.sin(2 * np.pi * k * s)]
        return np.stack(rows[:n])

    def coeffs(t):
        return _integrate(lambda x: f(x) * basis(x - (t - 1)), t - 1.0, t)

    A, B = hippo_fout(n)
    dc = (coeffs(t + h) - coeffs(t - h)) / (2 * h)
    np.testing.assert_allclose(dc, A @ coeffs(t) + B * f(t), atol=1e-5)


def test_lagt_structure():
    A, B = hippo_lagt(9)
    np.testing.assert_allclose(A + A.T, -np.outer(B, B), atol=1e-14)
    np.testing.assert_allclose(np.diag(A), -0.5)
    assert np.all(np.triu(A, 1) == 0)


@pytest.mark.parametrize("n", [1, 2, 8, 33])
def test_nplr_split(n):
    A_H, B = hippo_legs(n)
    A_N, P, B2 = hippo_legs_nplr(n)
    np.testing.assert_allclose(A_N - np.outer(P, P), A_H, atol=1e-12)
    np.testing.assert_allclose(A_N + A_N.T, -np.eye(n), atol=1e-12)
    np.testing.assert_allclose(B2, np.sqrt(2) * P, atol=1e-14)
    np.testing.assert_array_equal(B, B2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="n must be"):
        hippo_legs(bad)


def test_unknown_measure():
    with pytest.raises(ValueError, match="measure"):
        hippo("legx", 4)
