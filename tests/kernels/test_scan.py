"""Diagonal scans (chunked cumsum, FFT) against the one-step loop ``diag_scan_ref``."""

from __future__ import annotations

import pytest
import torch

from ptdssm.kernels.scan import diag_scan, diag_scan_chunked, diag_scan_fft, diag_scan_ref

from .common import assert_same_outputs_and_grads, c128, rand_lambda

torch.set_num_threads(min(2, torch.get_num_threads()))


def _loop(log_z, v):  # independent of the module: the recurrence written out
    x, out = torch.zeros_like(v[:, 0]), []
    for k in range(v.shape[1]):
        x = torch.exp(log_z) * x + v[:, k]
        out.append(x)
    return torch.stack(out, 1)


@pytest.mark.parametrize("L", [1, 13, 64, 200])
def test_diag_scans_match_ref(L):
    g = torch.Generator().manual_seed(L)
    log_z = rand_lambda(6, gen=g) * 0.05
    v = torch.randn(2, L, 6, dtype=c128, generator=g)
    ref = diag_scan_ref(log_z, v)
    torch.testing.assert_close(ref, _loop(log_z, v), rtol=0, atol=0)
    for chunk in (1, 8, 64):
        torch.testing.assert_close(diag_scan_chunked(log_z, v, chunk), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(diag_scan_fft(log_z, v), ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(diag_scan(log_z, v), ref, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError):
        diag_scan(log_z, v, "loop")


@pytest.mark.parametrize("method", ["chunked", "fft"])
def test_diag_scan_grads_match_ref(method):
    g = torch.Generator().manual_seed(11)
    log_z = rand_lambda(4, gen=g) * 0.1
    v = torch.randn(2, 37, 4, dtype=c128, generator=g)
    assert_same_outputs_and_grads(lambda z, v: diag_scan(z, v, method, chunk=8), diag_scan_ref, (log_z, v),
                                  rtol=1e-8, atol=1e-9)


def test_diag_scan_shape_errors():
    with pytest.raises(ValueError, match="expected v"):
        diag_scan(torch.zeros(3, dtype=c128), torch.zeros(2, 5, 4, dtype=c128))


def test_diag_scan_gradcheck():
    g = torch.Generator().manual_seed(2)
    log_z = (rand_lambda(3, gen=g) * 0.1).requires_grad_()
    v = torch.randn(1, 10, 3, dtype=c128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, v: diag_scan_chunked(z, v, 4), (log_z, v))
