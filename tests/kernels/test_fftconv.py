"""FFT convolutions (``(B, H, L)`` and the ``(B, L, H)`` autograd Function) against direct ``O(L^2)`` sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.kernels.fftconv import fft_conv, fft_conv_blh, fft_conv_ref, two_sided_kernel

from .common import assert_same_outputs_and_grads, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


def test_fft_conv_causal_and_bidirectional_vs_numpy():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 20, dtype=f64, generator=g)
    kf, kb = torch.randn(3, 20, dtype=f64, generator=g), torch.randn(3, 20, dtype=f64, generator=g)
    D = torch.randn(3, dtype=f64, generator=g)
    y = fft_conv(u, kf, D=D)
    un, kfn, kbn = u.numpy(), kf.numpy(), kb.numpy()
    ref = np.stack([[np.convolve(un[b, h], kfn[h])[:20] for h in range(3)] for b in range(2)]) + un * D.numpy()[:, None]
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-10)
    np.testing.assert_allclose(fft_conv_ref(u, kf, D=D).numpy(), ref, atol=1e-10)
    y2 = fft_conv(u, kf, kb)
    anti = np.stack([[np.convolve(un[b, h][::-1], kbn[h])[:20][::-1] for h in range(3)] for b in range(2)])
    np.testing.assert_allclose(y2.numpy(), ref - un * D.numpy()[:, None] + anti, atol=1e-10)
    np.testing.assert_allclose(fft_conv_ref(u, kf, kb).numpy(), y2.numpy(), atol=1e-10)
    assert two_sided_kernel(kf, kb).shape == (3, 40)
    padded = torch.nn.functional.pad(kf[:, :5], (0, 15))  # shorter kernel is zero-padded
    np.testing.assert_allclose(fft_conv(u, kf[:, :5]).numpy(), fft_conv(u, padded).numpy())


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("L", [1, 17, 64])
def test_fft_conv_matches_ref_outputs_and_grads(bidir, L):
    g = torch.Generator().manual_seed(L)
    u = torch.randn(2, 3, L, dtype=f64, generator=g)
    k, kb = torch.randn(3, L, dtype=f64, generator=g), torch.randn(3, L, dtype=f64, generator=g)
    D = torch.randn(3, dtype=f64, generator=g)
    if bidir:
        assert_same_outputs_and_grads(fft_conv, fft_conv_ref, (u, k, kb, D))
    else:
        assert_same_outputs_and_grads(lambda u, k, D: fft_conv(u, k, D=D), lambda u, k, D: fft_conv_ref(u, k, D=D),
                                      (u, k, D))


@pytest.mark.parametrize("bidir", [False, True])
def test_fft_conv_blh_matches_ref_outputs_and_grads(bidir):
    """The (B, L, H) path with its hand-written backward (``_FFTConvBLH``), at a size that takes the blocked
    transpose (``L H >= 4096``) and at a tiny one."""
    for L, H in ((9, 2), (300, 16)):
        g = torch.Generator().manual_seed(L)
        u = torch.randn(2, L, H, dtype=f64, generator=g)
        k, kb = torch.randn(H, L, dtype=f64, generator=g), torch.randn(H, L, dtype=f64, generator=g)
        D = torch.randn(H, dtype=f64, generator=g)

        def ref(u, k, kb, D):
            return fft_conv_ref(u.transpose(1, 2), k, kb if bidir else None, D).transpose(1, 2)
        assert_same_outputs_and_grads(lambda u, k, kb, D: fft_conv_blh(u, k, kb if bidir else None, D), ref,
                                      (u, k, kb, D))
        with torch.no_grad():  # the no-autograd branch
            torch.testing.assert_close(fft_conv_blh(u, k, kb if bidir else None, D), ref(u, k, kb, D))


def test_fft_conv_gradcheck():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(1, 6, 2, dtype=f64, generator=g, requires_grad=True)
    k = torch.randn(2, 6, dtype=f64, generator=g, requires_grad=True)
    kb = torch.randn(2, 6, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, k, kb: fft_conv_blh(u, k, kb), (u, k, kb))
    assert torch.autograd.gradcheck(lambda u, k: fft_conv(u.transpose(1, 2), k), (u, k))
