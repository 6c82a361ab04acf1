"""Companion kernels (SpaceTime): the roots-of-unity algorithm against repeated squaring and explicit matrix powers
(float64, outputs and gradients), the state kernel, the O(d) step and the closed-loop rollout against the explicit
(A + b k^T) loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.kernels.companion import (
    closed_loop_rollout,
    closed_loop_rollout_ref,
    companion_final_state,
    companion_kernel,
    companion_kernel_krylov,
    companion_kernel_ref,
    companion_matrix,
    companion_state_kernel,
    companion_state_kernel_ref,
    companion_step,
    l1_normalize,
)

from .common import assert_same_outputs_and_grads, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


def _system(d: int, *batch: int, seed: int = 0, positive: bool = False) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(*batch, d, dtype=f64, generator=g) if positive else torch.randn(*batch, d, dtype=f64, generator=g)
    return (l1_normalize(a), torch.randn(*batch, d, dtype=f64, generator=g),
            torch.randn(*batch, d, dtype=f64, generator=g))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_companion_matrix_is_shift_plus_last_column():
    a = torch.arange(1.0, 5.0, dtype=f64)
    A = companion_matrix(a)
    expected = np.zeros((4, 4))
    expected[1:, :-1] = np.eye(3)
    expected[:, -1] = a.numpy()
    np.testing.assert_array_equal(A.numpy(), expected)


@pytest.mark.parametrize(("d", "L"), [(1, 1), (1, 7), (3, 2), (5, 17), (16, 8), (8, 64), (33, 65), (20, 100)])
@pytest.mark.parametrize("radius", [None, 1.0])
def test_fast_equals_squaring_equals_matrix_powers(d, L, radius):
    """Three independent computations agree in float64 (d > L, L odd, L not a power of two included)."""
    a, b, c = _system(d, 2, 3, seed=d * 100 + L)
    if radius == 1.0:  # |a|_1 = 1/2 keeps |det(I - zA)| >= 1/2 on the unit circle (see the test below for |a|_1 = 1)
        a = a / 2
    ref = companion_kernel_ref(a, b, c, L)
    torch.testing.assert_close(companion_kernel_krylov(a, b, c, L), ref, rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(companion_kernel(a, b, c, L, radius=radius), ref, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("L", [1024, 4096])
def test_fast_equals_squaring_at_length(L):
    a, b, c = _system(64, 4, seed=L)
    ref = companion_kernel_krylov(a, b, c, L)
    assert rel(companion_kernel(a, b, c, L), ref) < 1e-12
    assert rel(companion_kernel(a.float(), b.float(), c.float(), L).double(), ref) < 1e-5


@pytest.mark.parametrize(("d", "L"), [(1, 64), (4, 1024), (64, 512)])
def test_eigenvalue_at_one_is_handled_by_the_default_radius(d, L):
    """``a >= 0``, ``|a|_1 = 1`` puts an eigenvalue at z = 1: the unit-circle form divides by zero (or nearly),
    the default circle ``rho^L = 1/2`` stays accurate."""
    a, b, c = _system(d, 2, seed=d, positive=True)
    ref = companion_kernel_krylov(a, b, c, L)
    assert rel(companion_kernel(a, b, c, L), ref) < 1e-11
    assert rel(companion_kernel(a.float(), b.float(), c.float(), L).double(), ref) < 1e-4
    unit = companion_kernel(a, b, c, L, radius=1.0)
    assert not torch.isfinite(unit).all() or rel(unit, ref) > 1e-8


def test_gradients_fast_vs_matrix_powers():
    a, b, c = _system(6, 3, seed=1)
    assert_same_outputs_and_grads(lambda a, b, c: companion_kernel(a, b, c, 20),
                                  lambda a, b, c: companion_kernel_ref(a, b, c, 20), (a, b, c), rtol=1e-9)
    assert_same_outputs_and_grads(lambda a, b, c: companion_kernel_krylov(a, b, c, 13),
                                  lambda a, b, c: companion_kernel_ref(a, b, c, 13), (a, b, c), rtol=1e-9)


def test_gradcheck_tiny():
    a, b, c = (t.requires_grad_() for t in _system(3, 2, seed=5))
    assert torch.autograd.gradcheck(lambda a, b, c: companion_kernel(a, b, c, 5), (a, b, c))
    assert torch.autograd.gradcheck(lambda a, b, c: companion_kernel(a, b, c, 2), (a, b, c))


def test_broadcasting_kernels_over_heads_and_channels():
    a, b, _ = _system(5, 4, seed=2)
    c = torch.randn(3, 4, 5, dtype=f64)
    out = companion_kernel(a, b, c, 9)
    assert out.shape == (3, 4, 9)
    torch.testing.assert_close(out[1], companion_kernel_ref(a, b, c[1], 9), rtol=1e-10, atol=1e-12)


def test_state_kernel_against_matrix_powers_and_the_recurrence():
    a, b, _ = _system(7, 3, seed=3)
    X = companion_state_kernel(a, b, 30)
    torch.testing.assert_close(X, companion_state_kernel_ref(a, b, 30), rtol=1e-10, atol=1e-12)
    u = torch.randn(2, 3, 30, dtype=f64)
    x = torch.zeros(2, 3, 7, dtype=f64)
    for t in range(30):
        x = companion_step(x, a, b, u[:, :, t])
    torch.testing.assert_close(torch.einsum("hdl,bhl->bhd", X, u.flip(-1)), x, rtol=1e-10, atol=1e-12)


def test_step_is_the_dense_matrix_times_the_state():
    a, b, _ = _system(6, 4, seed=4)
    x, u = torch.randn(2, 4, 6, dtype=f64), torch.randn(2, 4, dtype=f64)
    dense = (companion_matrix(a) @ x[..., None])[..., 0] + b * u[..., None]
    torch.testing.assert_close(companion_step(x, a, b, u), dense, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("T", [1, 2, 7, 16, 33])
def test_closed_loop_rollout_equals_explicit_loop(T):
    """Doubling of the rows ``c^T M^h``, ``k^T M^h`` == a numpy loop ``x <- (A + b k^T) x`` (and the torch ref)."""
    a, b, c = _system(5, 3, seed=T)
    k = l1_normalize(torch.randn(3, 5, dtype=f64))
    x0 = torch.randn(2, 3, 5, dtype=f64)
    y, u = closed_loop_rollout(a, b, c, k, x0, T)
    y_ref, u_ref = closed_loop_rollout_ref(a, b, c, k, x0, T)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(u, u_ref, rtol=1e-10, atol=1e-12)
    M = companion_matrix(a).numpy() + b.numpy()[:, :, None] * k.numpy()[:, None, :]
    for bb in range(2):
        for h in range(3):
            x = x0[bb, h].numpy()
            for t in range(T):
                np.testing.assert_allclose(y[bb, t, h].item(), c[h].numpy() @ x, rtol=1e-9, atol=1e-11)
                np.testing.assert_allclose(u[bb, t, h].item(), k[h].numpy() @ x, rtol=1e-9, atol=1e-11)
                x = M[h] @ x


def test_l1_normalize_keeps_tiny_rows():
    x = torch.tensor([[3.0, -1.0], [1e-5, -2e-5]], dtype=f64)
    out = l1_normalize(x)
    torch.testing.assert_close(out[0], torch.tensor([0.75, -0.25], dtype=f64))
    torch.testing.assert_close(out[1], x[1], rtol=0, atol=0)


def test_bad_length_is_a_one_line_error():
    a, b, c = _system(3, 1)
    for L in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="L must be"):
            companion_kernel(a, b, c, L)
    with pytest.raises(ValueError, match="radius"):
        companion_kernel(a, b, c, 4, radius=1.5)


@pytest.mark.parametrize(("n", "d"), [(1, 4), (3, 6), (30, 7), (64, 8)])
def test_final_state_equals_state_kernel_and_recurrence(n, d):
    """From one scalar convolution and two Toeplitz products == the state kernel contracted with the window == the
    O(d) recurrence (windows shorter than d included)."""
    a, b, _ = _system(d, 3, seed=n)
    u = torch.randn(2, n, 3, dtype=f64)
    x = torch.zeros(2, 3, d, dtype=f64)
    for t in range(n):
        x = companion_step(x, a, b, u[:, t])
    torch.testing.assert_close(companion_final_state(a, b, u), x, rtol=1e-10, atol=1e-12)
    X = companion_state_kernel(a, b, n)
    torch.testing.assert_close(torch.einsum("hdl,blh->bhd", X, u.flip(1)), x, rtol=1e-10, atol=1e-12)
