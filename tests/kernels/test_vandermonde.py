"""Vandermonde / Krylov / S4D kernels against their plain definitions (explicit powers, one step at a time)."""

from __future__ import annotations

import pytest
import torch

from ptdssm.kernels.discretize import discretize_dplr
from ptdssm.kernels.vandermonde import (
    krylov_kernel,
    krylov_kernel_ref,
    s4d_kernel,
    s4d_kernel_ref,
    vandermonde_kernel,
    vandermonde_kernel_ref,
)

from .common import assert_same_outputs_and_grads, c128, f64, rand_lambda

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("L", [1, 7, 64, 100, 1000])
def test_vandermonde_matches_ref(L):
    g = torch.Generator().manual_seed(L)
    log_z = rand_lambda(3, 5, gen=g) * 0.01
    c = torch.randn(2, 3, 5, dtype=c128, generator=g)
    K = vandermonde_kernel(c, log_z, L)
    assert K.shape == (2, 3, L)
    ref = (c[..., None] * torch.exp(log_z[..., None] * torch.arange(L, dtype=f64))).sum(-2).real
    torch.testing.assert_close(K, ref, rtol=1e-10, atol=1e-10)
    assert_same_outputs_and_grads(lambda c, z: vandermonde_kernel(c, z, L),
                                  lambda c, z: vandermonde_kernel_ref(c, z, L), (c, log_z))
    K32 = vandermonde_kernel(c.to(torch.complex64), log_z.to(torch.complex64), L)
    assert K32.dtype == torch.float32
    assert (K32.double() - ref).norm() / ref.norm() < 1e-5


def test_vandermonde_errors():
    with pytest.raises(ValueError, match="L must be"):
        vandermonde_kernel(torch.ones(3, dtype=c128), torch.zeros(3, dtype=c128), 0)
    with pytest.raises(ValueError, match="does not end"):
        vandermonde_kernel(torch.ones(2, 4, dtype=c128), torch.zeros(2, 3, dtype=c128), 5)


def test_vandermonde_gradcheck():
    g = torch.Generator().manual_seed(1)
    log_z = (rand_lambda(2, 3, gen=g) * 0.1).requires_grad_()
    c = torch.randn(2, 3, dtype=c128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, z: vandermonde_kernel(c, z, 11, block=4), (c, log_z))


def test_long_kernels_stay_small():
    """L = 16384 with H=8, m=32: blocked tables only (a naive (H, m, L) complex tensor would be 33 MB here)."""
    log_z = torch.complex(-torch.rand(8, 32) * 0.01, torch.randn(8, 32)).to(torch.complex64)
    c = torch.randn(8, 32, dtype=torch.complex64)
    K = vandermonde_kernel(c, log_z, 16384)
    ref = vandermonde_kernel_ref(c.to(c128), log_z.to(c128), 16384)
    assert (K.double() - ref).norm() / ref.norm() < 1e-5


@pytest.mark.parametrize("L", [1, 5, 64, 300])
def test_krylov_kernel_matches_ref(L):
    g = torch.Generator().manual_seed(L)
    lam, P = rand_lambda(2, 3, gen=g), torch.randn(2, 1, 3, dtype=c128, generator=g)
    B, C = torch.randn(2, 3, dtype=c128, generator=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    dt = torch.rand(2, dtype=f64, generator=g) * 0.1
    Ab, Bb = discretize_dplr(lam, P, B, dt)
    Cf = torch.cat([C, C.conj()], -1)
    assert_same_outputs_and_grads(lambda C, A, B: krylov_kernel(C, A, B, L),
                                  lambda C, A, B: krylov_kernel_ref(C, A, B, L), (Cf, Ab, Bb))


def test_krylov_gradcheck_real():
    g = torch.Generator().manual_seed(3)
    A = (0.3 * torch.randn(2, 3, 3, dtype=f64, generator=g)).requires_grad_()
    B = torch.randn(2, 3, dtype=f64, generator=g, requires_grad=True)
    C = torch.randn(1, 2, 3, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda C, A, B: krylov_kernel(C, A, B, 9, block=2), (C, A, B))


@pytest.mark.parametrize(("disc", "conj_sym"), [("zoh", True), ("bilinear", True), ("zoh", False)])
def test_s4d_kernel_matches_ref(disc, conj_sym):
    g = torch.Generator().manual_seed(7)
    H, m, L = 3, 4, 50
    lam = rand_lambda(H, m, gen=g)
    B = torch.randn(H, m, dtype=c128, generator=g)
    C = torch.randn(2, H, m, dtype=c128, generator=g)
    dt = torch.rand(H, dtype=f64, generator=g) * 0.1 + 1e-3
    K = s4d_kernel(lam, B, C, dt, L, disc, conj_sym)
    assert K.shape == (2, H, L) and K.dtype == f64
    assert_same_outputs_and_grads(lambda *a: s4d_kernel(*a, L, disc, conj_sym),
                                  lambda *a: s4d_kernel_ref(*a, L, disc, conj_sym), (lam, B, C, dt))


def test_s4d_kernel_gradcheck():
    g = torch.Generator().manual_seed(8)
    lam = rand_lambda(2, 2, gen=g).requires_grad_()
    B = torch.randn(2, 2, dtype=c128, generator=g, requires_grad=True)
    C = torch.randn(1, 2, 2, dtype=c128, generator=g, requires_grad=True)
    dt = (torch.rand(2, dtype=f64, generator=g) * 0.1 + 0.01).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: s4d_kernel(*a, 10), (lam, B, C, dt))
