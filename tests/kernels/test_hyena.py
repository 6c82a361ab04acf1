"""Hyena kernels: the order-N recurrence by FFT convolutions against its direct sums (and against NumPy's
``convolve``), the positional features and the decay window against their written-out formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptdssm.kernels.hyena import (
    decay_deltas,
    exponential_modulation,
    hyena_operator,
    hyena_recurrence,
    hyena_recurrence_ref,
    positional_features,
)
from ptdssm.kernels.shift import causal_conv_ref

from .common import assert_same_outputs_and_grads, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("N", [2, 3])
@pytest.mark.parametrize("Lh", [5, 19, 40])  # filters shorter than, as long as and longer than the input
def test_recurrence_matches_direct_sums(N, Lh):
    g = torch.Generator().manual_seed(N * 100 + Lh)
    B, L, H = 2, 19, 3
    v = torch.randn(B, L, H, dtype=f64, generator=g)
    x = torch.randn(N, B, L, H, dtype=f64, generator=g)
    h = torch.randn(N, H, Lh, dtype=f64, generator=g)
    bias = torch.randn(N, H, dtype=f64, generator=g)
    assert_same_outputs_and_grads(hyena_recurrence, hyena_recurrence_ref, (v, x, h, bias))
    assert_same_outputs_and_grads(lambda v, x, h: hyena_recurrence(v, x, h),
                                  lambda v, x, h: hyena_recurrence_ref(v, x, h), (v, x, h))


def test_recurrence_vs_numpy_convolve():
    """The definition written with ``np.convolve``: ``z <- x^n (h^n * z + b^n z)``, ``N`` times."""
    g = torch.Generator().manual_seed(0)
    N, B, L, H = 3, 2, 13, 2
    v = torch.randn(B, L, H, dtype=f64, generator=g)
    x = torch.randn(N, B, L, H, dtype=f64, generator=g)
    h = torch.randn(N, H, L, dtype=f64, generator=g)
    bias = torch.randn(N, H, dtype=f64, generator=g)
    y, inputs = hyena_recurrence(v, x, h, bias, return_inputs=True)
    z = v.numpy().copy()
    for n in range(N):
        np.testing.assert_allclose(inputs[n].numpy(), z, atol=1e-12)
        conv = np.array([[np.convolve(z[b, :, c], h[n, c].numpy())[:L] for c in range(H)] for b in range(B)])
        conv = conv.transpose(0, 2, 1)  # (B, L, H)
        z = x[n].numpy() * (conv + bias[n].numpy() * z)
    np.testing.assert_allclose(y.numpy(), z, atol=1e-11)


def test_recurrence_gradcheck():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(1, 6, 2, dtype=f64, generator=g, requires_grad=True)
    x = torch.randn(2, 1, 6, 2, dtype=f64, generator=g, requires_grad=True)
    h = torch.randn(2, 2, 6, dtype=f64, generator=g, requires_grad=True)
    b = torch.randn(2, 2, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(hyena_recurrence, (v, x, h, b))


def _operator_ref(p, w, b, k, *, order, safari):
    """The fused operator written out: the short conv's double sum, the split, the direct long-convolution sums."""
    H = p.shape[-1] // (order + 1)
    x = causal_conv_ref(p, w, b).split(H, dim=-1)  # x^1 .. x^N, v
    if safari:
        return hyena_recurrence_ref(x[0] * x[order], x[1:order], k)
    return hyena_recurrence_ref(x[order], x[:order], k)


@pytest.mark.parametrize("order,safari", [(2, False), (3, False), (2, True), (3, True)])
@pytest.mark.parametrize("K,bias", [(3, True), (1, False), (5, True)])  # K = 5 > L - 1 for the L = 4 case
@pytest.mark.parametrize("L", [4, 17])
def test_fused_operator_matches_direct_sums(order, safari, K, bias, L):
    g = torch.Generator().manual_seed(order * 1000 + K * 10 + L + safari)
    B, H = 3, 2
    M = order - 1 if safari else order
    p = torch.randn(B, L, (order + 1) * H, dtype=f64, generator=g)
    w = torch.randn((order + 1) * H, K, dtype=f64, generator=g)
    b = torch.randn((order + 1) * H, dtype=f64, generator=g) if bias else None
    k = torch.randn(M, H, L, dtype=f64, generator=g)
    inputs = (p, w, k) if b is None else (p, w, k, b)

    def fused(p, w, k, b=None):
        return hyena_operator(p, w, b, k, order=order, safari=safari)

    def ref(p, w, k, b=None):
        return _operator_ref(p, w, b, k, order=order, safari=safari)

    assert_same_outputs_and_grads(fused, ref, inputs)
    with torch.no_grad():  # the forward-only path (nothing saved)
        torch.testing.assert_close(fused(*inputs), ref(*inputs), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("safari", [False, True])
def test_fused_operator_in_channel_blocks(monkeypatch, safari):
    """Long sequences run the FFTs on blocks of channels (uneven here: 2 + 1 channels); same result."""
    import ptdssm.kernels.hyena as kh

    L, H, order = 17, 3, 3
    monkeypatch.setattr(kh, "_BLOCK_BYTES", 2 * (L + 1) * 16)  # two complex128 spectra of L + 1
    assert [(c.start, c.stop) for c in kh._channel_blocks(H, L, f64)] == [(0, 2), (2, 3)]
    g = torch.Generator().manual_seed(11)
    M = order - 1 if safari else order
    p = torch.randn(2, L, (order + 1) * H, dtype=f64, generator=g)
    w = torch.randn((order + 1) * H, 3, dtype=f64, generator=g)
    b = torch.randn((order + 1) * H, dtype=f64, generator=g)
    k = torch.randn(M, H, L, dtype=f64, generator=g)
    assert_same_outputs_and_grads(lambda p, w, b, k: hyena_operator(p, w, b, k, order=order, safari=safari),
                                  lambda p, w, b, k: _operator_ref(p, w, b, k, order=order, safari=safari),
                                  (p, w, b, k))


def test_fused_operator_gradcheck_and_shape_error():
    g = torch.Generator().manual_seed(5)
    p = torch.randn(2, 5, 6, dtype=f64, generator=g, requires_grad=True)
    w = torch.randn(6, 3, dtype=f64, generator=g, requires_grad=True)
    b = torch.randn(6, dtype=f64, generator=g, requires_grad=True)
    k = torch.randn(2, 2, 5, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, w, b, k: hyena_operator(p, w, b, k, order=2), (p, w, b, k))
    with pytest.raises(ValueError, match="order") as info:
        hyena_operator(p, w, b, k[:1], order=2)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("l_max,emb_dim", [(1, 3), (10, 3), (64, 5), (100, 33)])
def test_positional_features_formula(l_max, emb_dim):
    z, t = positional_features(l_max, emb_dim, dtype=f64)
    assert z.shape == (l_max, emb_dim) and t.shape == (l_max,)
    bands = (emb_dim - 1) // 2
    f = np.linspace(1e-4, bands - 1, bands)
    for k in range(l_max):
        tk = k / (l_max - 1) if l_max > 1 else 0.0
        assert abs(t[k].item() - tk) < 1e-15
        row = [tk] + [math.cos(fj * 2 * math.pi * k / l_max) for fj in f] + \
              [-math.sin(fj * 2 * math.pi * k / l_max) for fj in f]
        np.testing.assert_allclose(z[k].numpy(), row, atol=1e-12)


@pytest.mark.parametrize("emb_dim", [2, 4, 1])
def test_positional_features_emb_dim_error(emb_dim):
    with pytest.raises(ValueError, match="emb_dim") as info:
        positional_features(8, emb_dim)
    assert "\n" not in str(info.value)


def test_decay_window_reaches_target_at_its_times():
    """The fastest channel's window is ``target`` at ``t = fast``, the slowest at ``t = slow``, and the window is
    ``exp(-t |delta|) + shift`` in between."""
    fast, slow, target = 0.3, 1.5, 1e-2
    d = decay_deltas(7, fast, slow, target)
    assert (d < 0).all()
    np.testing.assert_allclose(math.exp(-fast * abs(d[-1].item())), target, rtol=1e-12)
    np.testing.assert_allclose(math.exp(-slow * abs(d[0].item())), target, rtol=1e-12)
    np.testing.assert_allclose(np.diff(d.numpy()), np.full(6, (d[-1] - d[0]).item() / 6), rtol=1e-10)
    t = torch.linspace(0, 1, 11, dtype=f64)
    h = torch.randn(2, 7, 11, dtype=f64)
    out = exponential_modulation(h, t, d, shift=0.05)
    ref = h.numpy() * (np.exp(-t.numpy()[None, :] * np.abs(d.numpy())[:, None]) + 0.05)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-13)


def test_decay_deltas_errors():
    for kw in ({"target": 1.5}, {"fast_decay_pct": 2.0, "slow_decay_pct": 1.0}):
        with pytest.raises(ValueError) as info:
            decay_deltas(4, **kw)
        assert "\n" not in str(info.value)
