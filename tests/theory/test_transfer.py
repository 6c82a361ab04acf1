"""Transfer functions, sup norms and output L2 errors (ptdssm.theory.transfer).

Every formula is checked against an independent computation: a dense ``np.linalg.solve`` per frequency for the
transfer functions, closed forms for the sup norm and the L2 norm, and the time-domain controllability Gramian
(a Lyapunov equation, no frequencies involved) for the Parseval integrals. The paper's qualitative claims are
asserted with bounds taken from measurements (quoted next to each bound).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from ptdssm.theory.hippo import hippo_legs, hippo_legs_nplr
from ptdssm.theory.transfer import (
    legs_low_rank_factor,
    output_l2_error,
    paper_systems,
    random_unit_vector,
    sup_norm,
    transfer_analysis,
    transfer_curves,
    transfer_function,
    transfer_function_diagonal,
    transfer_function_dplr,
)

RNG = np.random.default_rng(1234)


def dense_reference(A: np.ndarray, B: np.ndarray, C: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One LU solve per frequency, no vectorization: ``C (iwI - A)^{-1} B``."""
    n = A.shape[0]
    return np.array([C @ np.linalg.solve(1j * x * np.eye(n) - A, B) for x in w])


def gramian_l2(A1: np.ndarray, A2: np.ndarray, B: np.ndarray, C: np.ndarray, inputs: str) -> float:
    """||y_1 - y_2||_{L2(0, inf)} in the time domain: sqrt(c^T X c) with A X + X A^T + b b^T = 0 for the
    difference system [A1, 0; 0, A2], [B; B], [C, -C], cascaded with the filter 1/(s+1) for u = e^-t."""
    n = A1.shape[0]
    A = scipy.linalg.block_diag(A1, A2)
    b = np.concatenate([B, B])
    c = np.concatenate([C, -C])
    if inputs == "exp":  # input state z' = -z + delta, u = z
        A = np.block([[A, b[:, None]], [np.zeros((1, 2 * n)), -np.ones((1, 1))]])
        b = np.r_[np.zeros(2 * n), 1.0]
        c = np.r_[c, 0.0]
    X = scipy.linalg.solve_continuous_lyapunov(A, -np.outer(b, b))
    return math.sqrt(float(c @ X @ c))


# ------------------------------------------------------------------------------------------------------------
# transfer functions against dense solves


def test_dense_transfer_function_matches_per_frequency_solve():
    n = 7
    A = RNG.standard_normal((n, n)) - 3 * np.eye(n)
    B, C = RNG.standard_normal(n), RNG.standard_normal(n)
    w = np.linspace(-20, 20, 41)
    G = transfer_function(A, B, C, w)
    assert G.shape == (41,) and G.dtype == np.complex128
    np.testing.assert_allclose(G, dense_reference(A, B, C, w), rtol=1e-12, atol=1e-14)
    # MIMO shapes: (m, q, p)
    Bm, Cm = RNG.standard_normal((n, 3)), RNG.standard_normal((2, n))
    Gm = transfer_function(A, Bm, Cm, w)
    assert Gm.shape == (41, 2, 3)
    np.testing.assert_allclose(Gm[:, 1, 2], dense_reference(A, Bm[:, 2], Cm[1], w), rtol=1e-12, atol=1e-14)
    assert transfer_function(A, Bm, C, w).shape == (41, 3)
    assert transfer_function(A, B, C, 2.0).shape == (1,)  # a scalar frequency


def test_diagonal_transfer_function_matches_dense():
    n = 6
    lam = -RNG.uniform(0.1, 2, n) + 1j * RNG.uniform(-10, 10, n)
    V = RNG.standard_normal((n, n)) + 1j * RNG.standard_normal((n, n))
    A = V @ np.diag(lam) @ np.linalg.inv(V)
    B, C = RNG.standard_normal(n), RNG.standard_normal(n)
    w = np.linspace(-15, 15, 31)
    G = transfer_function_diagonal(lam, np.linalg.solve(V, B), C @ V, w)
    np.testing.assert_allclose(G, dense_reference(A, B, C, w), rtol=1e-10)
    # conj_sym: half the modes plus their conjugates equal the full (real) system
    half = lam[:3]
    b, c = RNG.standard_normal(3) + 1j, RNG.standard_normal(3) - 2j
    full = transfer_function_diagonal(np.r_[half, half.conj()], np.r_[b, b.conj()], np.r_[c, c.conj()], w)
    np.testing.assert_allclose(transfer_function_diagonal(half, b, c, w, conj_sym=True), full, rtol=1e-12)


def test_dplr_transfer_function_matches_dense_rank_two():
    n, r = 8, 2
    lam = -RNG.uniform(0.1, 2, n) + 1j * RNG.uniform(-10, 10, n)
    P = RNG.standard_normal((r, n)) + 1j * RNG.standard_normal((r, n))
    Q = RNG.standard_normal((r, n)) + 1j * RNG.standard_normal((r, n))
    A = np.diag(lam) - P.T @ Q.conj()
    B, C = RNG.standard_normal(n), RNG.standard_normal(n)
    w = np.linspace(-15, 15, 31)
    G = transfer_function_dplr(lam, P, B, C, w, Q=Q)
    np.testing.assert_allclose(G, dense_reference(A, B, C, w), rtol=1e-10)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_legs_identity_dplr_equals_diag_over_low_rank_factor(n):
    """G_DPLR = G_Diag / (1 + P^T (sI - A_N)^{-1} P) with B = B_H, for an arbitrary C (Sherman-Morrison with
    B_H = sqrt2 P: C-dependent terms cancel). Checked with dense solves only."""
    A_N, P, B = hippo_legs_nplr(n)
    A_H, _ = hippo_legs(n)
    C = RNG.standard_normal(n)
    w = np.r_[0.0, np.logspace(-2, math.log10(2 * n * n), 60)]
    g_dplr = dense_reference(A_H, B, C, w)
    g_diag = dense_reference(A_N, B, C, w)
    factor = np.array([1 + P @ np.linalg.solve(1j * x * np.eye(n) - A_N, P) for x in w])
    np.testing.assert_allclose(g_diag / factor, g_dplr, rtol=1e-11 * n)
    np.testing.assert_allclose(legs_low_rank_factor(n, w), factor, rtol=1e-11 * n)
    # The library's fast paths (unitary eigenbasis of A_N, Woodbury) against the dense solves
    sys_ = paper_systems(n, C, ptd=False)
    np.testing.assert_allclose(sys_.dplr(w), g_dplr, rtol=1e-11 * n, atol=1e-14)
    np.testing.assert_allclose(sys_.diag(w), g_diag, rtol=1e-11 * n, atol=1e-14)


def test_identity_needs_woodbury_for_general_B():
    """For B not parallel to P the simple quotient is wrong; the Woodbury form is right."""
    n = 8
    A_N, P, _ = hippo_legs_nplr(n)
    A_H = A_N - np.outer(P, P)
    B, C = RNG.standard_normal(n), RNG.standard_normal(n)
    w = np.linspace(0, 50, 26)
    ref = dense_reference(A_H, B, C, w)
    quotient = dense_reference(A_N, B, C, w) / legs_low_rank_factor(n, w)
    assert np.max(np.abs(quotient - ref)) > 1e-3
    lam, V = np.linalg.eig(A_N)
    Vi = np.linalg.inv(V)
    got = transfer_function_dplr(lam, Vi @ P, Vi @ B, C @ V, w, Q=V.conj().T @ P)
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_ptd_system_matches_dense_perturbed_matrix():
    sys_ = paper_systems(8)
    w = np.linspace(0, 100, 51)
    ref = dense_reference(sys_.A_H + sys_.ptd.E, sys_.B, sys_.C, w)
    np.testing.assert_allclose(sys_.ptd_tf(w), ref, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# sup norm and L2 errors against closed forms / time domain


def test_sup_norm_of_a_narrow_lorentzian():
    """G = 1/(s - p), p = -0.01 + 1000i: sup |G| = 1/0.01 = 100 at w = 1000, a peak 0.02 wide at w = 1000
    that a 4000-point log grid alone would miss (spacing ~ 5 there)."""
    p = -0.01 + 1000j
    G = lambda w: 1.0 / (1j * w - p)  # noqa: E731
    res = sup_norm(G, poles=np.array([p]), conjugate_symmetric=False)
    assert res.value == pytest.approx(100.0, rel=1e-9)
    assert res.frequency == pytest.approx(1000.0, abs=1e-6)
    blind = sup_norm(G, conjugate_symmetric=False, w_max=1e4, refine=0)
    assert blind.value < 50  # without the pole the grid misses it: refinement points matter


def test_sup_norm_matches_brute_force_grid():
    sys_ = paper_systems(16, ptd=False)
    both = np.r_[sys_.poles("dplr"), sys_.poles("diag")]
    res = sup_norm(lambda w: sys_.diag(w) - sys_.dplr(w), poles=both)
    w = np.linspace(0, 3 * sys_.spike_frequency, 400_001)  # spacing 6e-4, peaks are ~1 wide
    brute = np.max(np.abs(sys_.diag(w) - sys_.dplr(w)))
    assert brute <= res.value * (1 + 1e-12)  # a lower bound of the sup can't be beaten by a grid ...
    assert res.value <= brute * (1 + 1e-5)  # ... and the grid comes within its resolution of it


def test_output_l2_error_closed_form():
    one = lambda w: 1.0 / (1j * w + 1.0)  # noqa: E731 - impulse response e^-t
    zero = lambda w: np.zeros_like(w, dtype=complex)  # noqa: E731
    # ||e^-t||_2 = 1/sqrt2; input e^-t gives y = t e^-t with ||y||_2 = 1/2
    assert output_l2_error(one, zero, "impulse", poles=np.array([-1 + 0j])) == pytest.approx(2 ** -0.5, rel=1e-9)
    assert output_l2_error(one, zero, "exp", poles=np.array([-1 + 0j])) == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("inputs", ["exp", "impulse"])
def test_output_l2_error_matches_time_domain_gramian(inputs):
    sys_ = paper_systems(16)
    both = np.r_[sys_.poles("dplr"), sys_.poles("diag")]
    got = output_l2_error(sys_.diag, sys_.dplr, inputs, poles=both)
    assert got == pytest.approx(gramian_l2(sys_.A_N, sys_.A_H, sys_.B, sys_.C, inputs), rel=1e-7)
    both = np.r_[sys_.poles("dplr"), sys_.poles("ptd")]
    got = output_l2_error(sys_.ptd_tf, sys_.dplr, inputs, poles=both)
    assert got == pytest.approx(gramian_l2(sys_.A_H + sys_.ptd.E, sys_.A_H, sys_.B, sys_.C, inputs), rel=1e-7)


# ------------------------------------------------------------------------------------------------------------
# the paper's claims (Section 4 of the spec), as numbers

DIAG_SIZES = (8, 16, 32, 64, 128)
PTD_SIZES = (8, 16, 32)  # PTD at 64/128 costs ~10-30 s each uncached; the CLI covers them


@pytest.fixture(scope="module")
def diag_rows():
    """Diag vs DPLR for C = random_unit_vector(n, seed=0), n = 8..128 (no PTD needed: ~5 s)."""
    return {n: transfer_analysis(n, seed=0, ptd=False) for n in DIAG_SIZES}


@pytest.fixture(scope="module")
def ptd_rows():
    return {n: transfer_analysis(n, seed=0) for n in PTD_SIZES}


def test_spike_frequency_matches_reference(diag_rows):
    # Spec section 4 (independent float64/mpmath figures): w_max = max Im eig(A_N).
    reference = {8: 19.86, 16: 80.97, 32: 325.43, 64: 1303.27, 128: 5214.67}
    for n, row in diag_rows.items():
        assert row["spike_frequency"] == pytest.approx(reference[n], abs=0.01)
        assert row["spike_frequency"] == pytest.approx(n * n / math.pi, rel=0.03)


def test_s4d_sup_error_does_not_shrink(diag_rows):
    """Measured (seed 0): sup|Diag - DPLR| = 4.9, 9.4, 5.0, 13.8, 12.5 for n = 8..128 while sup|G_DPLR| =
    0.35, 0.32, 0.30, 0.20, 0.18 (spec: 4.2-17.6 vs 0.19-0.44, mean of 5 C). Bounds: every error >= 3 (Theta(1),
    min measured 4.9), >= 10 x sup|G_DPLR| (min measured 14x), and the n = 128 error is not below n = 8's
    (measured 2.5x above)."""
    sup = np.array([diag_rows[n]["sup_diag_error"] for n in DIAG_SIZES])
    ref = np.array([diag_rows[n]["sup_dplr"] for n in DIAG_SIZES])
    assert np.all(sup >= 3.0), sup
    assert np.all(sup >= 10 * ref), sup / ref
    assert sup[-1] >= sup[0]
    # and the spike itself: at w_max the S4D error is O(1) (measured >= 3) while |G_DPLR| is tiny there
    for n in DIAG_SIZES:
        sys_ = paper_systems(n, ptd=False)
        wm = np.array([sys_.spike_frequency])
        assert abs(sys_.diag(wm) - sys_.dplr(wm))[0] >= 1.0


def test_s4d_l2_error_weak_but_not_strong(diag_rows):
    """e^-t input: 0.233, 0.123, 0.076, 0.045, 0.029 (measured, seed 0; spec mean of 5 C: 0.26 ... 0.095):
    strictly decreasing, and n = 128 at most a quarter of n = 8 (measured 0.12).
    Impulse: 3.5, 6.7, 4.4, 10.9, 10.3 (spec: 3.1 ... 12.2): not decreasing: never below 0.8x n = 8's value and
    n = 128 above n = 8 (measured 2.9x)."""
    exp = np.array([diag_rows[n]["l2_exp_diag"] for n in DIAG_SIZES])
    imp = np.array([diag_rows[n]["l2_impulse_diag"] for n in DIAG_SIZES])
    assert np.all(np.diff(exp) < 0), exp
    assert exp[-1] <= 0.25 * exp[0], exp
    assert np.all(imp >= 0.8 * imp[0]), imp
    assert imp[-1] > imp[0], imp


def test_ptd_sup_error_stays_small(diag_rows, ptd_rows):
    """PTD removes the spikes: sup|PTD - DPLR| measured 0.21-0.77 for n = 8, 16, 32 (4-13% of S4D's 4.9-9.4;
    spec with the paper's matrices: 0.05-0.5). Note it is NOT a small fraction of sup|G_DPLR| (0.30-0.35): the
    PTD perturbation (||E|| ~ 4% of ||A_H||, i.e. O(1) absolute) moves the low-frequency response, where
    |G_DPLR| lives (G_DPLR(0) = C_0 exactly), by the same order; what PTD buys is no growth with n and no spikes.
    Bounds: <= 0.3 x S4D's sup error (measured max 0.13), <= 4 x sup|G_DPLR| (measured max 2.4), and at S4D's
    spike frequency <= 0.1 x S4D's error there."""
    for n in PTD_SIZES:
        row = ptd_rows[n]
        assert row["sup_diag_error"] == pytest.approx(diag_rows[n]["sup_diag_error"], rel=1e-12)
        assert row["sup_ptd_error"] <= 0.3 * row["sup_diag_error"], row
        assert row["sup_ptd_error"] <= 4.0 * row["sup_dplr"], row
        assert row["l2_impulse_ptd"] <= 0.4 * row["l2_impulse_diag"], row
        sys_ = paper_systems(n)
        wm = np.array([sys_.spike_frequency])
        assert abs(sys_.ptd_tf(wm) - sys_.dplr(wm))[0] <= 0.1 * abs(sys_.diag(wm) - sys_.dplr(wm))[0]


def test_transfer_curves_resolve_the_spike():
    sys_ = paper_systems(16, ptd=False)
    c = transfer_curves(sys_, points=500)
    assert set(c) == {"w", "dplr", "diag"}
    i = int(np.argmin(np.abs(c["w"] - sys_.spike_frequency)))
    assert c["w"][i] == pytest.approx(sys_.spike_frequency, rel=1e-12)  # the spike top is on the grid
    assert c["diag"][i] > 10 * c["dplr"][i]


# ------------------------------------------------------------------------------------------------------------
# validation


def test_bad_input_names_the_argument():
    A = -np.eye(3)
    B = C = np.ones(3)
    w = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="A"):
        transfer_function(np.ones((3, 2)), B, C, w)
    with pytest.raises(ValueError, match="A contains NaN"):
        transfer_function(np.full((3, 3), np.nan), B, C, w)
    with pytest.raises(ValueError, match="B must have shape"):
        transfer_function(A, np.ones(4), C, w)
    with pytest.raises(ValueError, match="C must have shape"):
        transfer_function(A, B, np.ones((2, 4)), w)
    with pytest.raises(ValueError, match="w contains NaN"):
        transfer_function(A, B, C, np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="w must have 1"):
        transfer_function(A, B, C, np.ones((2, 2)))
    with pytest.raises(ValueError, match="w must be real"):
        transfer_function(A, B, C, np.array([1j]))
    with pytest.raises(ValueError, match="Lambda"):
        transfer_function_diagonal(np.array([np.nan, -1.0]), np.ones(2), np.ones(2), w)
    with pytest.raises(ValueError, match="P must have shape"):
        transfer_function_dplr(-np.ones(3), np.ones(4), B, C, w)
    with pytest.raises(ValueError, match="n must be"):
        paper_systems(0)
    with pytest.raises(ValueError, match="C must have shape"):
        paper_systems(4, np.ones(3), ptd=False)
    with pytest.raises(ValueError, match="inputs"):
        output_l2_error(lambda x: x, lambda x: x, "step")
    with pytest.raises(ValueError, match="seed"):
        random_unit_vector(3, seed=1.5)
    with pytest.raises(ValueError, match="w_min"):
        sup_norm(lambda x: x, w_min=0.0)
