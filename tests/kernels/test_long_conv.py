"""Long-convolution kernels: Squash and Smooth against their definitions (and NumPy), the FFT convolution against
direct sums, the ring-buffer step against the convolution; float64 outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.kernels.long_conv import (
    long_conv,
    long_conv_ref,
    long_conv_step,
    regularize,
    smooth,
    smooth_ref,
    squash,
    squash_ref,
)

from .common import assert_same_outputs_and_grads, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("lam", [0.0, 0.1, 0.7])
def test_squash_is_the_soft_threshold(lam):
    g = torch.Generator().manual_seed(1)
    k = torch.randn(3, 40, dtype=f64, generator=g)
    kn = k.numpy()
    expected = np.sign(kn) * np.maximum(np.abs(kn) - lam, 0.0)  # NumPy, written from the paper's formula
    np.testing.assert_allclose(squash(k, lam).numpy(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(squash_ref(k, lam).numpy(), expected, rtol=0, atol=1e-15)
    if lam > 0:
        assert_same_outputs_and_grads(lambda x: squash(x, lam), lambda x: squash_ref(x, lam), (k,))
        kk = k.clone().requires_grad_()
        squash(kk, lam).sum().backward()  # subgradient: 1 outside the dead zone, 0 inside
        np.testing.assert_array_equal(kk.grad.numpy(), (np.abs(kn) > lam).astype(float))


@pytest.mark.parametrize(("width", "Lk"), [(1, 9), (3, 17), (7, 30), (7, 4), (5, 1)])
def test_smooth_is_zero_padded_average_pooling(width, Lk):
    g = torch.Generator().manual_seed(width * 100 + Lk)
    k = torch.randn(2, 3, Lk, dtype=f64, generator=g)
    box = np.ones(width) / width
    expected = np.stack([[np.convolve(row, box, mode="full")[width // 2: width // 2 + Lk] for row in ch]
                         for ch in k.numpy()])  # NumPy: the centred box filter, zeros outside the kernel
    np.testing.assert_allclose(smooth(k, width).numpy(), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(smooth_ref(k, width).numpy(), expected, rtol=0, atol=1e-14)
    assert_same_outputs_and_grads(lambda x: smooth(x, width), lambda x: smooth_ref(x, width), (k,))


@pytest.mark.parametrize("n", [1, 5, 12, 40, 100])
def test_regularize_truncated_is_exact(n):
    """Only the first n taps, computed from the raw taps j < n + (p-1)/2, equal the full regularized kernel's."""
    g = torch.Generator().manual_seed(n)
    k = torch.randn(3, 40, dtype=f64, generator=g) * 0.3
    full = squash_ref(smooth_ref(k, 5), 0.05)
    torch.testing.assert_close(regularize(k, 0.05, 5, n), full[:, :n], rtol=0, atol=1e-15)
    torch.testing.assert_close(regularize(k, 0.05, 5), full, rtol=0, atol=1e-15)


@pytest.mark.parametrize("bad", [0, 2, 4, -1, 3.0, True])
def test_smooth_width_errors(bad):
    with pytest.raises(ValueError, match="smooth width") as info:
        smooth(torch.zeros(2, 5), bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="lam"):
        squash(torch.zeros(3), -0.1)


def _np_conv(u, k, kb, D):
    """Direct sums in NumPy: y_t = sum_{j<=t} k_j u_{t-j} + sum_{j<=L-1-t} kb_j u_{t+j} + D u_t."""
    B, L, H = u.shape
    y = np.zeros_like(u)
    for t in range(L):
        for j in range(min(t + 1, k.shape[-1])):
            y[:, t] += k[:, j] * u[:, t - j]
        if kb is not None:
            for j in range(min(L - t, kb.shape[-1])):
                y[:, t] += kb[:, j] * u[:, t + j]
    return y + (0 if D is None else D * u)


@pytest.mark.parametrize("Lk", [1, 7, 23, 40])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_long_conv_matches_direct_sums(Lk, bidirectional):
    g = torch.Generator().manual_seed(Lk + 100 * bidirectional)
    B, L, H = 2, 23, 3
    u = torch.randn(B, L, H, dtype=f64, generator=g)
    k = torch.randn(H, Lk, dtype=f64, generator=g)
    kb = torch.randn(H, Lk, dtype=f64, generator=g) if bidirectional else None
    D = torch.randn(H, dtype=f64, generator=g)
    expected = _np_conv(u.numpy(), k.numpy(), None if kb is None else kb.numpy(), D.numpy())
    np.testing.assert_allclose(long_conv_ref(u, k, kb, D).numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(long_conv(u, k, kb, D).numpy(), expected, rtol=1e-10, atol=1e-10)
    inputs = (u, k, D) if kb is None else (u, k, kb, D)

    def fast(*a):
        return long_conv(a[0], a[1], a[2] if kb is not None else None, a[-1])

    def ref(*a):
        return long_conv_ref(a[0], a[1], a[2] if kb is not None else None, a[-1])
    assert_same_outputs_and_grads(fast, ref, inputs)


@pytest.mark.parametrize("Lk", [1, 6, 30])
def test_ring_buffer_step_matches_convolution(Lk):
    g = torch.Generator().manual_seed(Lk)
    B, L, H = 2, 19, 3
    u = torch.randn(B, L, H, dtype=f64, generator=g)
    k = torch.randn(H, Lk, dtype=f64, generator=g)
    D = torch.randn(H, dtype=f64, generator=g)
    buf = torch.zeros(B, H, Lk, dtype=f64)
    ys = []
    for t in range(L):
        y, buf = long_conv_step(buf, u[:, t], k, D)
        ys.append(y)
        assert buf.shape == (B, H, Lk)
    torch.testing.assert_close(torch.stack(ys, 1), long_conv_ref(u, k, None, D), rtol=1e-12, atol=1e-12)
    # the buffer holds the last L_k inputs, newest first
    last = u[:, max(0, L - Lk):].flip(1).transpose(1, 2)
    torch.testing.assert_close(buf[..., : last.shape[-1]], last, rtol=0, atol=0)


def test_gradcheck_regularized_convolution():
    g = torch.Generator().manual_seed(3)
    u = torch.randn(1, 9, 2, dtype=f64, generator=g, requires_grad=True)
    k = (torch.randn(2, 12, dtype=f64, generator=g) * 0.5).requires_grad_()
    D = torch.randn(2, dtype=f64, generator=g, requires_grad=True)

    def fn(u, k, D):
        kk = regularize(k, 0.05, 3, u.shape[1])
        return long_conv(u, kk, None, D)
    assert torch.autograd.gradcheck(fn, (u, k, D))
