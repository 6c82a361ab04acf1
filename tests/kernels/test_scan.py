"""Diagonal scans (chunked cumsum, FFT, windowed sum of the fast modes) against the one-step loop ``diag_scan_ref``."""

from __future__ import annotations

import pytest
import torch

from ptdssm.kernels import scan as S
from ptdssm.kernels.scan import diag_scan, diag_scan_chunked, diag_scan_fft, diag_scan_ref

from .common import assert_same_outputs_and_grads, c128, f64, rand_lambda

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


# Re log z of modes of mixed decay (chunks of 32: fast when 32 |Re log z| > 30): slow ones, two on either side of the
# threshold 30/32 = 0.9375, moderately fast ones whose windowed sum needs its full length (|z|^W must reach e^-40), and
# PTD's fastest (Re lambda = -860 with dt = 0.1). Interleaved, so that the gather path has to put them back in place.
MIXED = [-0.01, -86.0, -0.3, -0.95, -0.93, -5.0, -0.001, -1.2, -40.0, -0.6]


def _mixed(re, L, seed=0, dtype=c128):
    g = torch.Generator().manual_seed(seed)
    re = torch.tensor(re, dtype=f64)
    log_z = torch.complex(re, torch.randn(len(re), dtype=f64, generator=g) * 3)
    v = torch.randn(2, L, len(re), dtype=c128, generator=g).to(dtype)
    return log_z, v


def _order(log_z, how):
    if how == "interleaved":
        return torch.arange(len(log_z))
    order = torch.argsort(log_z.real, descending=True)  # fast modes last: the split path
    return order if how == "ordered" else order.flip(0)  # fast modes first: gathered


@pytest.mark.parametrize("how", ["interleaved", "ordered", "fast_first"])
@pytest.mark.parametrize(("L", "chunk"), [(1, 32), (13, 32), (200, 32), (200, 8), (77, 1)])
def test_modes_of_mixed_decay_match_ref(how, L, chunk):
    log_z, v = _mixed(MIXED, L, seed=L + chunk)
    o = _order(log_z, how)
    log_z, v = log_z[o], v[..., o]
    assert_same_outputs_and_grads(lambda z, v: diag_scan_chunked(z, v, chunk), diag_scan_ref, (log_z, v),
                                  rtol=1e-11, atol=1e-12)
    parts = S.diag_scan_split(log_z, v, chunk)
    n_fast = int((log_z.real * min(chunk, L) < -30).sum())
    if how == "ordered" and 0 < n_fast < len(log_z):  # two groups: chunked slow modes, windowed fast modes
        assert [p.shape[-1] for p in parts] == [len(log_z) - n_fast, n_fast]
    else:
        assert len(parts) == 1
    torch.testing.assert_close(torch.cat(parts, -1), diag_scan_ref(log_z, v), rtol=1e-11, atol=1e-12)


def test_all_modes_fast_and_growing_modes():
    log_z, v = _mixed([-86.0, -2.0, -1.0, -31.0], 150, seed=3)  # every mode fast for chunks of 32
    assert_same_outputs_and_grads(diag_scan_chunked, diag_scan_ref, (log_z, v), rtol=1e-11, atol=1e-12)
    log_z, v = _mixed([0.02, -86.0, -0.3], 150, seed=4)  # a growing mode stays in the chunks (a smaller T there)
    assert_same_outputs_and_grads(diag_scan_chunked, diag_scan_ref, (log_z, v), rtol=1e-10, atol=1e-10)


def test_fast_modes_in_float32():
    # The window of the fast modes is sized for fp32's rounding (|z|^W <= e^-20): relative to the float64 loop.
    log_z, v = _mixed(MIXED, 300, seed=5, dtype=torch.complex64)
    log_z = log_z.to(torch.complex64)  # the loop in float64 from the same rounded log z
    ref = diag_scan_ref(log_z.to(c128), v.to(c128))
    for o in (_order(log_z, "interleaved"), _order(log_z, "ordered")):
        x = diag_scan_chunked(log_z[o], v[..., o])
        assert x.dtype == torch.complex64
        err = (x.to(c128) - ref[..., o]).abs().amax((0, 1)) / ref[..., o].abs().amax((0, 1))
        assert float(err.max()) < 2e-6


def test_decay_order():
    log_z, _ = _mixed(MIXED, 1)
    o = S.decay_order(log_z, 4096)
    assert o is not None and sorted(o.tolist()) == list(range(len(MIXED)))
    assert torch.all(log_z.real[o][:-1] >= log_z.real[o][1:])
    assert S.decay_order(log_z[o], 4096) is None  # already ordered
    assert S.decay_order(log_z[log_z.real > -0.9], 4096) is None  # no fast mode
    # T = min(chunk, L): fast when T Re log z < -30 (T = 1: -86 and -40; T = 8: also -5)
    assert S.decay_order(log_z, 1) is not None and S.decay_order(log_z, 4096, chunk=1) is not None
    assert S.decay_order(log_z[log_z.real > -30], 1) is None and S.decay_order(log_z[log_z.real > -30], 8) is not None


@pytest.mark.parametrize("how", ["interleaved", "ordered"])
def test_diag_scan_gradcheck_fast_modes(how):
    log_z, v = _mixed([-0.05, -86.0, -0.5, -10.0], 11, seed=6)  # chunks of 4: fast when Re log z < -7.5
    o = _order(log_z, how)
    leaves = (log_z[o].detach().requires_grad_(), v[..., o][:1].detach().requires_grad_())
    assert torch.autograd.gradcheck(lambda z, v: diag_scan_chunked(z, v, 4), leaves)
