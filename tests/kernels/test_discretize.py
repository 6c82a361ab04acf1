"""Discretizations against the plain definition (``discretize_ref``: augmented expm / explicit inverse) and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ptdssm.kernels.cauchy import dplr_dense
from ptdssm.kernels.discretize import (
    conj_pair_to_real,
    discretize_dense,
    discretize_diag,
    discretize_dplr,
    discretize_ref,
)
from ptdssm.kernels.vandermonde import krylov_kernel

from .common import assert_same_outputs_and_grads, c128, f64, rand_lambda

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_diag_closed_forms(method):
    lam = rand_lambda(7)
    dt = torch.tensor([1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0], dtype=f64)
    log_z, gamma = discretize_diag(lam, dt, method)
    ln, dn = lam.numpy(), dt.numpy()
    if method == "zoh":
        zr, gr = np.exp(dn * ln), (np.exp(dn * ln) - 1) / ln
    else:
        zr, gr = (1 + dn * ln / 2) / (1 - dn * ln / 2), dn / (1 - dn * ln / 2)
    np.testing.assert_allclose(np.exp(log_z.numpy()), zr, rtol=1e-12)
    np.testing.assert_allclose(gamma.numpy(), gr, rtol=1e-9)
    with pytest.raises(ValueError, match="disc"):
        discretize_diag(lam, dt, "euler")


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_diag_matches_ref_outputs_and_grads(method):
    """Diagonal fast path vs the dense definition on ``A = diag(Lambda)`` (per mode a 1x1 system)."""
    g = torch.Generator().manual_seed(1)
    lam, dt = rand_lambda(5, gen=g), torch.rand(5, dtype=f64, generator=g) * 0.5 + 1e-3

    def fast(lam, dt):
        log_z, gamma = discretize_diag(lam, dt, method)
        return torch.stack([torch.exp(log_z), gamma])

    def ref(lam, dt):
        Ab, Bb = discretize_ref(lam[:, None, None], torch.ones(5, 1, dtype=c128), dt, method)
        return torch.stack([Ab[:, 0, 0], Bb[:, 0]])
    assert_same_outputs_and_grads(fast, ref, (lam, dt))


def test_zoh_gamma_accurate_in_float32_at_small_dt():
    lam = torch.tensor([-0.5 + 3j, -0.5 + 0.1j])
    dt = torch.tensor([1e-4, 1e-3])
    _, g32 = discretize_diag(lam, dt, "zoh")
    _, g64 = discretize_diag(lam.to(c128), dt.to(f64), "zoh")
    assert ((g32.to(c128) - g64).abs() / g64.abs()).max() < 1e-6


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_dense_matches_scipy_and_ref(method):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 5, 5, dtype=f64, generator=g) - 3 * torch.eye(5, dtype=f64)
    B = torch.randn(2, 5, dtype=f64, generator=g)
    dt = torch.tensor([0.01, 0.3], dtype=f64)
    Ab, Bb = discretize_dense(A, B, dt, method)
    for i in range(2):
        a, b, d = A[i].numpy(), B[i].numpy(), float(dt[i])
        if method == "zoh":
            ar = scipy.linalg.expm(d * a)
            br = np.linalg.solve(a, (ar - np.eye(5)) @ b)
        else:
            m = np.eye(5) - d * a / 2
            ar, br = np.linalg.solve(m, np.eye(5) + d * a / 2), np.linalg.solve(m, d * b)
        np.testing.assert_allclose(Ab[i].numpy(), ar, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(Bb[i].numpy(), br, rtol=1e-9, atol=1e-12)
    assert_same_outputs_and_grads(lambda *a: torch.cat([x.flatten() for x in discretize_dense(*a, method)]),
                                  lambda *a: torch.cat([x.flatten() for x in discretize_ref(*a, method)]),
                                  (A, B, dt))


@pytest.mark.parametrize("r", [1, 2, 3])
def test_discretize_dplr_matches_ref(r):
    g = torch.Generator().manual_seed(r)
    lam = rand_lambda(3, 4, gen=g)
    P = torch.randn(3, r, 4, dtype=c128, generator=g)
    B = torch.randn(3, 4, dtype=c128, generator=g)
    dt = torch.rand(3, dtype=f64, generator=g)
    a1, b1 = discretize_dplr(lam, P, B, dt)
    a2, b2 = discretize_dense(dplr_dense(lam, P), torch.cat([B, B.conj()], -1), dt, "bilinear")
    torch.testing.assert_close(a1, a2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b1, b2, rtol=1e-10, atol=1e-12)

    def fast(lam, P, B, dt):
        return torch.cat([x.flatten() for x in discretize_dplr(lam, P, B, dt)])

    def ref(lam, P, B, dt):
        Ab, Bb = discretize_ref(dplr_dense(lam, P), torch.cat([B, B.conj()], -1), dt, "bilinear")
        return torch.cat([Ab.flatten(), Bb.flatten()])
    assert_same_outputs_and_grads(fast, ref, (lam, P, B, dt))


def test_discretize_gradcheck_tiny():
    g = torch.Generator().manual_seed(4)
    lam = rand_lambda(2, 2, gen=g).requires_grad_()
    P = torch.randn(2, 1, 2, dtype=c128, generator=g, requires_grad=True)
    B = torch.randn(2, 2, dtype=c128, generator=g, requires_grad=True)
    dt = (torch.rand(2, dtype=f64, generator=g) * 0.1 + 0.01).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: discretize_dplr(*a)[0], (lam, P, B, dt))
    for method in ("zoh", "bilinear"):
        assert torch.autograd.gradcheck(lambda lam, dt, m=method: discretize_diag(lam, dt[:, None], m), (lam, dt))


def test_conj_pair_real_form_gives_same_kernel():
    g = torch.Generator().manual_seed(5)
    lam, P = rand_lambda(2, 3, gen=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    B, C = torch.randn(2, 3, dtype=c128, generator=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    Ab, Bb = discretize_dplr(lam, P, B, torch.tensor([0.05, 0.2], dtype=f64))
    ref = krylov_kernel(torch.cat([C, C.conj()], -1), Ab, Bb, 70)
    A_r, B_r, C_r = conj_pair_to_real(Ab, Bb, C)
    assert not A_r.is_complex()
    torch.testing.assert_close(krylov_kernel(C_r, A_r, B_r, 70), ref, rtol=1e-10, atol=1e-10)
