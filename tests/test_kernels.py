"""Kernels against direct float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ptdssm.kernels import (
    diag_scan,
    diag_scan_chunked,
    diag_scan_fft,
    discretize_dense,
    discretize_diag,
    dplr_kernel,
    fft_conv,
    vandermonde_kernel,
)
from ptdssm.kernels.cauchy import dplr_dense
from ptdssm.kernels.discretize import discretize_dplr
from ptdssm.kernels.fftconv import two_sided_kernel
from ptdssm.kernels.vandermonde import krylov_kernel

torch.set_num_threads(min(2, torch.get_num_threads()))
f64, c128 = torch.float64, torch.complex128


def _rand_lambda(*shape, gen=None):
    return torch.complex(-torch.rand(*shape, dtype=f64, generator=gen) - 0.05,
                         torch.randn(*shape, dtype=f64, generator=gen) * 5)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_diag(method):
    lam = _rand_lambda(7)
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


def test_zoh_gamma_accurate_in_float32_at_small_dt():
    lam = torch.tensor([-0.5 + 3j, -0.5 + 0.1j])
    dt = torch.tensor([1e-4, 1e-3])
    _, g32 = discretize_diag(lam, dt, "zoh")
    _, g64 = discretize_diag(lam.to(c128), dt.to(f64), "zoh")
    assert ((g32.to(c128) - g64).abs() / g64.abs()).max() < 1e-6


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_discretize_dense(method):
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


@pytest.mark.parametrize("r", [1, 2, 3])
def test_discretize_dplr_matches_dense(r):
    g = torch.Generator().manual_seed(r)
    lam = _rand_lambda(3, 4, gen=g)
    P = torch.randn(3, r, 4, dtype=c128, generator=g)
    B = torch.randn(3, 4, dtype=c128, generator=g)
    dt = torch.rand(3, dtype=f64, generator=g)
    a1, b1 = discretize_dplr(lam, P, B, dt)
    a2, b2 = discretize_dense(dplr_dense(lam, P), torch.cat([B, B.conj()], -1), dt, "bilinear")
    torch.testing.assert_close(a1, a2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b1, b2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("L", [1, 7, 64, 100, 1000])
def test_vandermonde_matches_naive(L):
    g = torch.Generator().manual_seed(L)
    log_z = _rand_lambda(3, 5, gen=g) * 0.01
    c = torch.randn(2, 3, 5, dtype=c128, generator=g)
    K = vandermonde_kernel(c, log_z, L)
    ref = (c[..., None] * torch.exp(log_z[..., None] * torch.arange(L, dtype=f64))).sum(-2).real
    assert K.shape == (2, 3, L)
    torch.testing.assert_close(K, ref, rtol=1e-10, atol=1e-10)
    K32 = vandermonde_kernel(c.to(torch.complex64), log_z.to(torch.complex64), L)
    assert K32.dtype == torch.float32
    assert (K32.double() - ref).norm() / ref.norm() < 1e-5


def test_vandermonde_gradcheck():
    g = torch.Generator().manual_seed(1)
    log_z = (_rand_lambda(2, 3, gen=g) * 0.1).requires_grad_()
    c = torch.randn(2, 3, dtype=c128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, z: vandermonde_kernel(c, z, 11, block=4), (c, log_z))


@pytest.mark.parametrize("L", [1, 5, 64, 300])
def test_krylov_kernel_matches_powers(L):
    g = torch.Generator().manual_seed(L)
    lam, P = _rand_lambda(2, 3, gen=g), torch.randn(2, 1, 3, dtype=c128, generator=g)
    B, C = torch.randn(2, 3, dtype=c128, generator=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    dt = torch.rand(2, dtype=f64, generator=g) * 0.1
    Ab, Bb = discretize_dplr(lam, P, B, dt)
    Cf = torch.cat([C, C.conj()], -1)
    K = krylov_kernel(Cf, Ab, Bb, L)
    x, ref = Bb.clone(), []
    for _ in range(L):
        ref.append((Cf * x).sum(-1).real)
        x = (Ab @ x[..., None])[..., 0]
    torch.testing.assert_close(K, torch.stack(ref, -1), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("L", [2, 16, 257, 1024])
def test_cauchy_dplr_kernel_matches_dense_powers(r, L):
    g = torch.Generator().manual_seed(10 * r + L)
    H, m = 3, 4
    lam, P = _rand_lambda(H, m, gen=g), torch.randn(H, r, m, dtype=c128, generator=g) * 0.5
    B, C = torch.randn(H, m, dtype=c128, generator=g), torch.randn(2, H, m, dtype=c128, generator=g)
    dt = torch.rand(H, dtype=f64, generator=g) * 0.1 + 1e-3
    Ab, Bb = discretize_dplr(lam, P, B, dt)
    Cf = torch.cat([C, C.conj()], -1)
    ref = krylov_kernel(Cf, Ab, Bb, L)
    Ct = (Cf - (Cf[:, :, None] @ torch.linalg.matrix_power(Ab, L))[:, :, 0])[..., :m]
    for chunk in (1 << 21, 37):  # one chunk, and many small ones
        K = dplr_kernel(Ct, B, P, lam, dt, L, chunk_elems=chunk)
        torch.testing.assert_close(K, ref, rtol=1e-8, atol=1e-9)


def test_cauchy_gradcheck_chunked_checkpoint():
    g = torch.Generator().manual_seed(3)
    lam = _rand_lambda(2, 2, gen=g).requires_grad_()
    P = torch.randn(2, 1, 2, dtype=c128, generator=g, requires_grad=True)
    B = torch.randn(2, 2, dtype=c128, generator=g, requires_grad=True)
    C = torch.randn(1, 2, 2, dtype=c128, generator=g, requires_grad=True)
    dt = (torch.rand(2, dtype=f64, generator=g) * 0.1 + 0.01).requires_grad_()
    fn = lambda C, B, P, lam, dt: dplr_kernel(C, B, P, lam, dt, 12, chunk_elems=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (C, B, P, lam, dt))


def test_fft_conv_causal_and_bidirectional():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 20, dtype=f64, generator=g)
    kf, kb = torch.randn(3, 20, dtype=f64, generator=g), torch.randn(3, 20, dtype=f64, generator=g)
    D = torch.randn(3, dtype=f64, generator=g)
    y = fft_conv(u, kf, D=D)
    un, kfn, kbn = u.numpy(), kf.numpy(), kb.numpy()
    ref = np.stack([[np.convolve(un[b, h], kfn[h])[:20] for h in range(3)] for b in range(2)]) + un * D.numpy()[:, None]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-10)
    y2 = fft_conv(u, kf, kb)
    anti = np.stack([[np.convolve(un[b, h][::-1], kbn[h])[:20][::-1] for h in range(3)] for b in range(2)])
    np.testing.assert_allclose(y2.numpy(), ref - un * D.numpy()[:, None] + anti, atol=1e-10)
    assert two_sided_kernel(kf, kb).shape == (3, 40)
    # shorter kernel is zero-padded
    padded = torch.nn.functional.pad(kf[:, :5], (0, 15))
    np.testing.assert_allclose(fft_conv(u, kf[:, :5]).numpy(), fft_conv(u, padded).numpy())


def _scan_ref(log_z, v):
    x, out = torch.zeros_like(v[:, 0]), []
    for k in range(v.shape[1]):
        x = torch.exp(log_z) * x + v[:, k]
        out.append(x)
    return torch.stack(out, 1)


@pytest.mark.parametrize("L", [1, 13, 64, 200])
def test_diag_scans_match_loop(L):
    g = torch.Generator().manual_seed(L)
    log_z = _rand_lambda(6, gen=g) * 0.05
    v = torch.randn(2, L, 6, dtype=c128, generator=g)
    ref = _scan_ref(log_z, v)
    for chunk in (1, 8, 64):
        torch.testing.assert_close(diag_scan_chunked(log_z, v, chunk), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(diag_scan_fft(log_z, v), ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(diag_scan(log_z, v), ref, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError):
        diag_scan(log_z, v, "loop")


def test_diag_scan_gradcheck():
    g = torch.Generator().manual_seed(2)
    log_z = (_rand_lambda(3, gen=g) * 0.1).requires_grad_()
    v = torch.randn(1, 10, 3, dtype=c128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, v: diag_scan_chunked(z, v, 4), (log_z, v))


def test_long_kernels_stay_small():
    """L = 16384 with H=8, m=32: blocked tables only (a naive (H, m, L) complex tensor would be 33 MB here)."""
    log_z = torch.complex(-torch.rand(8, 32) * 0.01, torch.randn(8, 32)).to(torch.complex64)
    c = torch.randn(8, 32, dtype=torch.complex64)
    K = vandermonde_kernel(c, log_z, 16384)
    ref = (c[..., None] * torch.exp(log_z[..., None].to(c128) * torch.arange(16384, dtype=f64))).sum(-2).real
    assert (K.double() - ref).norm() / ref.norm() < 1e-5


def test_conj_pair_real_form_gives_same_kernel():
    from ptdssm.kernels.discretize import conj_pair_to_real

    g = torch.Generator().manual_seed(5)
    lam, P = _rand_lambda(2, 3, gen=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    B, C = torch.randn(2, 3, dtype=c128, generator=g), torch.randn(2, 2, 3, dtype=c128, generator=g)
    Ab, Bb = discretize_dplr(lam, P, B, torch.tensor([0.05, 0.2], dtype=f64))
    ref = krylov_kernel(torch.cat([C, C.conj()], -1), Ab, Bb, 70)
    A_r, B_r, C_r = conj_pair_to_real(Ab, Bb, C)
    assert not A_r.is_complex()
    torch.testing.assert_close(krylov_kernel(C_r, A_r, B_r, 70), ref, rtol=1e-10, atol=1e-10)
