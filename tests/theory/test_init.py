"""Initialization registry: each init reproduces the matrix it claims to diagonalize."""

import numpy as np
import pytest
import scipy.linalg

from ptdssm import INITS, hippo_legs, hippo_legs_nplr, ssm_init
from ptdssm.theory.init import DEFAULT_PTD, MIN_PAIRS_SIZE, PTD_PRESETS, ptd_options


def _impulse_response(init, C, t):
    """sum_k (C V)_k B~_k exp(lambda_k t) over the kept modes, times 2 and real part under conj_sym."""
    h = np.exp(np.outer(t, init.Lambda)) @ ((C @ init.V) * init.B)
    return 2 * h.real if init.conj_sym else h


def test_s4d_legs_diagonalizes_the_normal_part():
    n = 16
    A_N, _, B_H = hippo_legs_nplr(n)
    full = ssm_init("s4d-legs", n, conj_sym=False)
    np.testing.assert_allclose(full.Lambda.real, -0.5, atol=1e-12)
    np.testing.assert_allclose(full.V.conj().T @ full.V, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(full.V @ np.diag(full.Lambda) @ full.V_inv, A_N, atol=1e-10)
    np.testing.assert_allclose(full.B, full.V_inv @ B_H, atol=1e-12)
    # Conjugate symmetry: half the modes and 2 Re give the exact impulse response of (A_N, B_H, C).
    half = ssm_init("s4d-legs", n)
    assert half.n_modes == n // 2 and half.conj_sym and np.all(half.Lambda.imag > 0)
    C = np.random.default_rng(0).standard_normal(n)
    t = np.linspace(0, 3, 7)
    dense = np.array([C @ scipy.linalg.expm(A_N * s) @ B_H for s in t])
    np.testing.assert_allclose(_impulse_response(half, C, t), dense, atol=1e-9)
    np.testing.assert_allclose(_impulse_response(full, C, t).real, dense, atol=1e-9)


def test_s4_legs_is_dplr_of_hippo():
    n = 12
    A_H, _ = hippo_legs(n)
    init = ssm_init("s4-legs", n, conj_sym=False)
    p = init.P[0]
    dplr = np.diag(init.Lambda) - np.outer(p, p.conj())
    np.testing.assert_allclose(init.V @ dplr @ init.V.conj().T, A_H, atol=1e-10)
    assert ssm_init("s4-legs", n).P.shape == (1, n // 2)


def test_s4d_lin_inv_real_formulas():
    n = 8
    k = np.arange(n // 2)
    np.testing.assert_allclose(ssm_init("s4d-lin", n).Lambda, -0.5 + 1j * np.pi * k)
    np.testing.assert_allclose(ssm_init("s4d-inv", n).Lambda, -0.5 + 1j * n / np.pi * (n / (2 * k + 1) - 1))
    real = ssm_init("s4d-real", n)
    np.testing.assert_allclose(real.Lambda, -np.arange(1, n + 1))
    assert not real.conj_sym


@pytest.mark.parametrize(("name", "n_modes"), [("ptd-paper", 16), ("ptd-response", 8), ("ptd-paper-pairs", 8)])
def test_ptd_init_is_a_decomposition_of_the_perturbed_hippo(name, n_modes):
    n = 16
    A_H, B_H = hippo_legs(n)
    init = ssm_init(name, n, conj_sym=False)
    E = init.V @ np.diag(init.Lambda) @ init.V_inv - A_H
    assert np.abs(E.imag).max() < 1e-9
    assert np.linalg.norm(E.real, 2) / np.linalg.norm(A_H, 2) == pytest.approx(
        init.diagnostics["relative_perturbation"], rel=1e-6)
    np.testing.assert_allclose(init.B, init.V_inv @ B_H, atol=1e-12)
    assert init.n_modes == n and np.all(init.Lambda.real < 0) and init.name == name
    half = ssm_init(name, n)  # the preset's own mode count: n/2 for the pairs-only ones
    assert half.n_modes == n_modes and half.conj_sym == (n_modes < n)
    # with conjugate symmetry, the kept modes plus their conjugates realize the same A + E
    if half.conj_sym:
        full = np.concatenate([half.V, half.V.conj()], 1), np.concatenate([half.Lambda, half.Lambda.conj()])
        np.testing.assert_allclose((full[0] * full[1]) @ np.linalg.inv(full[0]), A_H + E.real, atol=1e-8 * n * n)


def test_ptd_names_are_presets_of_the_solver():
    assert ptd_options("ptd-paper") == {"objective": "paper", "pairs": False}
    assert ptd_options("s5-ptd-response") == ptd_options("ptd-response") == {"objective": "response", "pairs": True}
    assert ptd_options("ptd") == ptd_options(DEFAULT_PTD) == ptd_options("s5-ptd")
    assert ptd_options("ptd-response", {"pairs": False})["pairs"] is False
    assert ssm_init("ptd", 8).diagnostics["objective"] == PTD_PRESETS[DEFAULT_PTD]["objective"]
    # blocks below MIN_PAIRS_SIZE keep their real eigenvalues unless pairs=True is explicit
    tiny = ssm_init("s5-ptd-response", 8, blocks=4)
    assert MIN_PAIRS_SIZE > 2 and not tiny.diagnostics["pairs"] and not tiny.conj_sym and tiny.n_modes == 8
    assert ssm_init("s5-ptd-response", 8, blocks=4, pairs=True, max_iter=50).n_modes == 4
    with pytest.raises(ValueError, match="init"):
        ptd_options("s4d-legs")


@pytest.mark.parametrize("name", ["s5-legs", "s5-ptd", "s5-ptd-paper"])
def test_s5_block_diagonal(name):
    P, J = 24, 3
    init = ssm_init(name, P, blocks=J)
    block = ssm_init("s4d-legs" if name == "s5-legs" else name.removeprefix("s5-"), P // J)
    assert init.blocks == J
    np.testing.assert_allclose(init.Lambda, np.tile(block.Lambda, J))
    np.testing.assert_allclose(init.V_inv @ init.V, np.eye(init.n_modes), atol=1e-8)
    assert np.all(init.V[: P // J, block.n_modes:] == 0)  # off-diagonal blocks are exactly zero


def test_registry_names_and_bad_input():
    assert set(INITS) == {"s4d-legs", "s4d-lin", "s4d-inv", "s4d-real", "s4-legs", "s5-legs", "ptd", "s5-ptd",
                          "s4-legt", "s4-fout", "s4d-legt", "s4d-fout",
                          "ptd-paper", "ptd-paper-pairs", "ptd-response", "s5-ptd-paper", "s5-ptd-paper-pairs",
                          "s5-ptd-response"}
    with pytest.raises(ValueError, match="init"):
        ssm_init("s4d-fancy", 8)
    with pytest.raises(ValueError, match="n must be"):
        ssm_init("s4d-legs", 0)
    with pytest.raises(ValueError, match="even"):
        ssm_init("s4d-legs", 7)
    with pytest.raises(ValueError, match="divisible"):
        ssm_init("s5-legs", 10, blocks=3)
    with pytest.raises(ValueError, match="blocks"):
        ssm_init("s4d-lin", 8, blocks=2)
    with pytest.raises(ValueError, match="PTD options"):
        ssm_init("s4d-legs", 8, gamma=3.0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_ptd_is_complex(n):
    # Small matrices can have only real eigenvalues; the arrays must still be complex128 (S5-PTD with P/J = 2).
    init = ssm_init("ptd", n)
    assert init.Lambda.dtype == np.complex128 and init.V.dtype == np.complex128 and init.V_inv.dtype == np.complex128
