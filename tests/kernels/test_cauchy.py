"""S4's Cauchy + Woodbury kernel against its plain definition (dense resolvents at the roots of unity) and dense
matrix powers."""

from __future__ import annotations

import pytest
import torch

from ptdssm.kernels.cauchy import dplr_dense, dplr_kernel, dplr_kernel_ref
from ptdssm.kernels.discretize import discretize_dplr
from ptdssm.kernels.vandermonde import krylov_kernel_ref

from .common import assert_same_outputs_and_grads, c128, f64, rand_lambda

torch.set_num_threads(min(2, torch.get_num_threads()))


def _system(seed, H=3, m=4, r=1, S=2):
    g = torch.Generator().manual_seed(seed)
    lam, P = rand_lambda(H, m, gen=g), torch.randn(H, r, m, dtype=c128, generator=g) * 0.5
    B, C = torch.randn(H, m, dtype=c128, generator=g), torch.randn(S, H, m, dtype=c128, generator=g)
    dt = torch.rand(H, dtype=f64, generator=g) * 0.1 + 1e-3
    return lam, P, B, C, dt


def _c_tilde(lam, P, B, C, dt, L):
    Ab, _ = discretize_dplr(lam, P, B, dt)
    Cf = torch.cat([C, C.conj()], -1)
    return (Cf - (Cf[:, :, None] @ torch.linalg.matrix_power(Ab, L))[:, :, 0])[..., : lam.shape[-1]]


def test_dplr_dense_definition():
    lam, P, _, _, _ = _system(0, H=1, m=2, r=2)
    A = dplr_dense(lam, P)[0]
    lf, pf = torch.cat([lam[0], lam[0].conj()]), torch.cat([P[0], P[0].conj()], -1)
    ref = torch.diag(lf) - sum(torch.outer(pf[i], pf[i].conj()) for i in range(2))
    torch.testing.assert_close(A, ref)


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("L", [2, 16, 257, 1024])
def test_cauchy_dplr_kernel_matches_dense_powers(r, L):
    lam, P, B, C, dt = _system(10 * r + L, r=r)
    Ab, Bb = discretize_dplr(lam, P, B, dt)
    ref = krylov_kernel_ref(torch.cat([C, C.conj()], -1), Ab, Bb, L)
    Ct = _c_tilde(lam, P, B, C, dt, L)
    for chunk in (1 << 21, 37):  # one chunk, and many small ones
        K = dplr_kernel(Ct, B, P, lam, dt, L, chunk_elems=chunk)
        torch.testing.assert_close(K, ref, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("r", [1, 2])
def test_cauchy_matches_ref_outputs_and_grads(r):
    L = 24
    lam, P, B, C, dt = _system(5 + r, r=r)
    Ct = _c_tilde(lam, P, B, C, dt, L).detach()
    assert_same_outputs_and_grads(lambda *a: dplr_kernel(*a, L, chunk_elems=16),
                                  lambda *a: dplr_kernel_ref(*a, L), (Ct, B, P, lam, dt), rtol=1e-8, atol=1e-9)


def test_cauchy_gradcheck_chunked_checkpoint():
    g = torch.Generator().manual_seed(3)
    lam = rand_lambda(2, 2, gen=g).requires_grad_()
    P = torch.randn(2, 1, 2, dtype=c128, generator=g, requires_grad=True)
    B = torch.randn(2, 2, dtype=c128, generator=g, requires_grad=True)
    C = torch.randn(1, 2, 2, dtype=c128, generator=g, requires_grad=True)
    dt = (torch.rand(2, dtype=f64, generator=g) * 0.1 + 0.01).requires_grad_()
    fn = lambda C, B, P, lam, dt: dplr_kernel(C, B, P, lam, dt, 12, chunk_elems=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (C, B, P, lam, dt))
