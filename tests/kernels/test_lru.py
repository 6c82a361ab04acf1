"""The LRU map: the parallel form (GEMM, diagonal scan, GEMM) against the step-by-step recurrence and against its
convolution form, float64 outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.kernels.lru import lru_forward, lru_forward_ref

from .common import assert_same_outputs_and_grads, c128, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


def _system(m=5, H=3, ch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = 0.5 + 0.49 * torch.rand(m, dtype=f64, generator=g)
    phase = 2 * np.pi * torch.rand(m, dtype=f64, generator=g)
    log_lam = torch.complex(torch.log(r), phase)
    Bn = torch.randn(m, H, dtype=c128, generator=g)
    C = torch.randn(ch, H, m, dtype=c128, generator=g)
    D = torch.randn(H, dtype=f64, generator=g)
    return log_lam, Bn, C, D


def _conv_form(u, log_lam, Bn, C, D, bidirectional):
    """NumPy: y_t = sum_j Re(C lambda^j Bn) u_{t-j} (+ the same over the future with C_b) + D u_t."""
    u, lam, Bn, C, D = u.numpy(), np.exp(log_lam.numpy()), Bn.numpy(), C.numpy(), D.numpy()
    L = u.shape[1]
    K = [np.stack([(c * lam ** j) @ Bn for j in range(L)]).real for c in C]  # (L, H, H) per direction
    y = np.zeros_like(u)
    for t in range(L):
        for j in range(t + 1):
            y[:, t] += u[:, t - j] @ K[0][j].T
        if bidirectional:
            for j in range(L - t):
                y[:, t] += u[:, t + j] @ K[1][j].T
    return y + D * u


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("scan", ["chunked", "fft"])
def test_lru_forward_matches_recurrence_and_convolution(bidirectional, scan):
    log_lam, Bn, C, D = _system(ch=2 if bidirectional else 1, seed=int(bidirectional))
    u = torch.randn(2, 45, 3, dtype=f64, generator=torch.Generator().manual_seed(7))
    ref = lru_forward_ref(u, log_lam, Bn, C, D, bidirectional)
    np.testing.assert_allclose(ref.numpy(), _conv_form(u, log_lam, Bn, C, D, bidirectional), rtol=1e-10,
                               atol=1e-10)
    torch.testing.assert_close(lru_forward(u, log_lam, Bn, C, D, bidirectional, scan), ref, rtol=1e-10,
                               atol=1e-10)
    assert_same_outputs_and_grads(lambda *a: lru_forward(*a, bidirectional=bidirectional, scan=scan),
                                  lambda *a: lru_forward_ref(*a, bidirectional=bidirectional),
                                  (u, log_lam, Bn, C, D), rtol=1e-8, atol=1e-9)


def test_lru_forward_returns_the_causal_states():
    log_lam, Bn, C, D = _system(seed=3)
    u = torch.randn(2, 30, 3, dtype=f64)
    _, x = lru_forward(u, log_lam, Bn, C, D, return_states=True)
    lam, state = torch.exp(log_lam), torch.zeros(2, 5, dtype=c128)
    for k in range(30):
        state = lam * state + u[:, k].to(c128) @ Bn.T
        torch.testing.assert_close(x[:, k], state, rtol=1e-10, atol=1e-12)


def test_lru_forward_shape_errors():
    log_lam, Bn, C, D = _system()
    with pytest.raises(ValueError, match="expected u"):
        lru_forward(torch.zeros(2, 5, 4, dtype=f64), log_lam, Bn, C, D)


def test_lru_gradcheck():
    log_lam, Bn, C, D = _system(m=2, H=2, seed=5)
    u = torch.randn(1, 8, 2, dtype=f64)
    ins = tuple(t.clone().requires_grad_() for t in (u, log_lam, Bn, C, D))
    assert torch.autograd.gradcheck(lambda *a: lru_forward(*a, scan="chunked"), ins)
