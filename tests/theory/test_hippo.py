"""HiPPO matrices against their closed forms and against the ODEs they are defined by.

The ODE checks are independent of the matrix formulas: the coefficients of an input on the measure's orthonormal
basis are computed by Gauss-Legendre quadrature, their time derivative by central differences, and compared with
``A c + B u`` (LegS: divided by ``t``).
"""

import numpy as np
import pytest
from numpy.polynomial import legendre

from ptdssm import hippo, hippo_fout, hippo_lagt, hippo_legs, hippo_legs_nplr, hippo_legt
from ptdssm.theory.hippo import hippo_nplr

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


@pytest.mark.parametrize("window", [1.0, 2.0])
def test_legt_is_the_sliding_window_legendre_ode(window):
    # c(t) = (1/W) int_{t-W}^t f(x) g((x - t + W)/W) dx with g the orthonormal Legendre basis on [0, 1]
    n, t, h, W = 6, 2.0, 1e-4, window
    f = lambda x: 1 - 2 * x + 0.5 * x**3 - 0.1 * x**5  # noqa: E731  (degree < n: the window is represented exactly)

    def coeffs(t):
        return _integrate(lambda x: f(x) * _legendre_basis(n, (x - (t - W)) / W), t - W, t) / W

    A, B = hippo_legt(n, window=W)
    dc = (coeffs(t + h) - coeffs(t - h)) / (2 * h)
    np.testing.assert_allclose(dc, A @ coeffs(t) + B * f(t), atol=1e-6)
    if W == 2.0:  # s4's normalisation is LegT on a window of 2
        np.testing.assert_array_equal(hippo("legt", n, window=2.0)[0], A)


def _fourier_basis(n: int, age: np.ndarray) -> np.ndarray:
    """s4's FouT layout [1, dead, cos 2 pi k a, sin 2 pi k a, ...] (sqrt2 on the harmonics), orthonormal on [0, 1]."""
    rows = [np.ones_like(age), np.zeros_like(age)]
    for k in range(1, n // 2 + 1):
        rows += [np.sqrt(2) * np.cos(2 * np.pi * k * age), np.sqrt(2) * np.sin(2 * np.pi * k * age)]
    return np.stack(rows[:n])


@pytest.mark.parametrize("window", [1.0, 2.0])
def test_fout_is_the_sliding_window_fourier_ode(window):
    # c(t) = (1/W) int_{t-W}^t f(x) g((t - x)/W) dx (g of the age); f periodic with period W and in the span, so the
    # closure of the dropped end u(t - W) is exact and the ODE holds to quadrature accuracy
    n, t, h, W = 8, 0.37, 1e-5, window
    f = lambda x: 0.3 + np.cos(2 * np.pi * x / W) - 0.7 * np.sin(6 * np.pi * x / W)  # noqa: E731

    def coeffs(t):
        return _integrate(lambda x: f(x) * _fourier_basis(n, (t - x) / W), t - W, t) / W

    A, B = hippo_fout(n, window=W)
    dc = (coeffs(t + h) - coeffs(t - h)) / (2 * h)
    np.testing.assert_allclose(dc, A @ coeffs(t) + B * f(t), atol=1e-5)
    # the paper's FouT: skew-symmetric minus a rank-one dissipation, A + A^T = -W B B^T; at W = 2 (s4's) A + B B^T is
    # skew-symmetric
    np.testing.assert_allclose(A + A.T, -W * np.outer(B, B), atol=1e-12)
    assert np.all(A[1] == 0) and np.all(A[:, 1] == 0) and B[1] == 0  # the dead state


def test_s4_normalisation_of_fout():
    # s4's transition('fout', N): frequencies pi k on (cos_k, sin_k) = (2k, 2k+1), minus b b^T, B = b
    n = 10
    A, B = hippo_fout(n, window=2.0)
    b = np.array([1, 0, np.sqrt(2), 0, np.sqrt(2), 0, np.sqrt(2), 0, np.sqrt(2), 0])
    np.testing.assert_allclose(B, b)
    S = A + np.outer(b, b)
    np.testing.assert_allclose(S, -S.T, atol=1e-15)
    for k in range(1, n // 2):
        assert S[2 * k, 2 * k + 1] == pytest.approx(-np.pi * k) and S[2 * k + 1, 2 * k] == pytest.approx(np.pi * k)
    assert np.count_nonzero(S) == 2 * (n // 2 - 1)


@pytest.mark.parametrize(("measure", "rank"), [("legs", 1), ("legt", 2), ("fout", 1)])
@pytest.mark.parametrize("n", [1, 2, 9, 16])
def test_nplr_forms(measure, rank, n):
    A, B = hippo(measure, n, window=2.0) if measure != "legs" else hippo_legs(n)
    A_N, P, B2 = hippo_nplr(measure, n)
    assert P.shape == (rank, n)
    np.testing.assert_allclose(A_N - P.T @ P, A, atol=1e-12)
    np.testing.assert_array_equal(B, B2)
    # normal: a multiple of I plus a skew-symmetric matrix (S4 diagonalizes it with a unitary basis)
    c = np.mean(np.diag(A_N))
    np.testing.assert_allclose(A_N - c * np.eye(n) + (A_N - c * np.eye(n)).T, 0, atol=1e-12)
    assert c == pytest.approx(-0.5 if measure == "legs" else 0.0)


def test_window_option_errors():
    with pytest.raises(ValueError, match="window"):
        hippo_legt(4, window=0)
    with pytest.raises(ValueError, match="window"):
        hippo("legs", 4, window=2.0)
    with pytest.raises(ValueError, match="measure"):
        hippo_nplr("lagt", 4)


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
