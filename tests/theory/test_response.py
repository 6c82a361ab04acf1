"""State responses and the response-preserving PTD term (ptdssm.theory.response).

The value of ``R(E)`` is checked against dense per-frequency solves (no eigendecomposition), its analytic gradient
against central finite differences of the value, on small ``n``.
"""

from __future__ import annotations

import numpy as np
import pytest

from ptdssm.theory.hippo import hippo_legs
from ptdssm.theory.response import response_grid, state_response, state_response_error


def _dense_R(A, E, B, w, power):
    """``(mean_j r_j^p)^(2/p)`` with every response from ``np.linalg.solve`` (no eig, no code of the module)."""
    n = A.shape[0]
    r = []
    for x in w:
        x0 = np.linalg.solve(1j * x * np.eye(n) - A, B)
        xe = np.linalg.solve(1j * x * np.eye(n) - (A + E), B)
        r.append(np.linalg.norm(xe - x0) / np.linalg.norm(x0))
    return float(np.mean(np.asarray(r) ** power) ** (2.0 / power))


def _perturbation(A, size, seed):
    G = np.random.default_rng(seed).standard_normal(A.shape)
    return G * (size * np.linalg.norm(A, 2) / np.linalg.norm(G, 2))


@pytest.mark.parametrize("power", [2.0, 4.0])
@pytest.mark.parametrize("general_B", [False, True])
def test_value_matches_dense_solves_and_gradient_matches_finite_differences(power, general_B):
    n = 6
    A, B_H = hippo_legs(n)
    B = np.random.default_rng(3).standard_normal(n) if general_B else B_H
    E = _perturbation(A, 0.05, seed=1)
    w = response_grid(A, 25)
    value, grad = state_response_error(A, E, w, B, power=power)
    assert value == pytest.approx(_dense_R(A, E, B, w, power), rel=1e-9)
    h = 1e-6 * np.linalg.norm(A, 2)
    fd = np.zeros_like(E)
    for i in range(n):
        for j in range(n):
            d = np.zeros_like(E)
            d[i, j] = h
            fd[i, j] = (_dense_R(A, E + d, B, w, power) - _dense_R(A, E - d, B, w, power)) / (2 * h)
    assert np.abs(grad - fd).max() <= 1e-6 * np.abs(fd).max()
    assert grad.dtype == np.float64 and grad.shape == (n, n)


def test_zero_perturbation_has_zero_error():
    A, _ = hippo_legs(5)
    value, grad = state_response_error(A, np.zeros((5, 5)), response_grid(A, 9))
    assert value < 1e-12 and np.abs(grad).max() < 1e-6


def test_state_response_matches_per_frequency_solves():
    A, B = hippo_legs(7)
    w = np.array([0.0, 0.3, 5.0, 300.0])
    X = state_response(A, B, w)
    ref = np.stack([np.linalg.solve(1j * x * np.eye(7) - A, B) for x in w], axis=1)
    np.testing.assert_allclose(X, ref, rtol=1e-12, atol=1e-14)
    # A non-triangular A goes through LU: same answer.
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((7, 7)))[0]
    np.testing.assert_allclose(state_response(Q @ A @ Q.T, Q @ B, w), Q @ ref, rtol=1e-10, atol=1e-12)
    # LegS remembers a constant input exactly: x(0) = -A^-1 B = e_0.
    np.testing.assert_allclose(X[:, 0], np.eye(7)[0], atol=1e-12)


def test_grid_spans_zero_to_beyond_every_eigenvalue():
    A, _ = hippo_legs(16)
    w = response_grid(A, 97)
    assert w.shape == (97,) and w[0] == 0.0 and np.all(np.diff(w) > 0)
    ratios = w[2:] / w[1:-1]
    np.testing.assert_allclose(ratios, ratios[0])  # log-spaced after w = 0
    assert w[-1] >= np.linalg.norm(A, 2)  # beyond |lambda| of A + E for ||E|| <= ||A|| / 4


@pytest.mark.parametrize(("kwargs", "name"), [({"E": np.ones((3, 3))}, "E"), ({"w": np.array([np.nan])}, "w"),
                                              ({"B": np.ones(3)}, "B")])
def test_bad_input(kwargs, name):
    A, _ = hippo_legs(4)
    args = {"A": A, "E": np.zeros((4, 4)), "w": np.array([0.0, 1.0]), **kwargs}
    with pytest.raises(ValueError, match=name):
        state_response_error(**args)
