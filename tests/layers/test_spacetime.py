"""SpaceTime layer: recurrence == convolution, the preprocessing kernels against their formulas and a hand
computation, L1 normalization of a, the kernel's gain at init, the multi-head layout, the shift SSM, and the
contract for the non-default variants (preprocessing, shift, shared kernels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptdssm.kernels.companion import companion_matrix
from ptdssm.layers.spacetime import SpaceTime
from ptdssm.layers.spacetime_preprocess import (
    ResidualPreprocess,
    differencing_kernel,
    moving_average_residual_kernel,
    preprocess_kernels,
)

from . import contract

torch.set_num_threads(min(2, torch.get_num_threads()))
f64 = torch.float64


def _numpy_recurrence(layer: SpaceTime, z: np.ndarray) -> np.ndarray:
    """``x_t = A x_{t-1} + b z_t``, ``y_t = c^T x_t + D z_t`` per channel, with the dense A, in NumPy."""
    a, b, c = (t.detach().double().numpy() for t in layer.system(f64))
    idx = layer.kernel_index.numpy()
    D = np.zeros(layer.d_model) if layer.D is None else layer.D.detach().double().numpy()
    Bsz, L, H = z.shape
    y = np.zeros_like(z)
    for h in range(H):
        A = companion_matrix(torch.from_numpy(a[idx[h]])).numpy()
        for bb in range(Bsz):
            x = np.zeros(layer.d_state)
            for t in range(L):
                x = A @ x + b[idx[h]] * z[bb, t, h]
                y[bb, t, h] = c[idx[h]] @ x + D[h] * z[bb, t, h]
    return y


@pytest.mark.parametrize("kw", [{}, {"n_kernels": 2, "n_heads": 2}, {"kernel_method": "squaring"},
                                {"kind": "shift"}, {"norm_order": 0}])
def test_recurrence_equals_convolution(kw):
    torch.manual_seed(0)
    layer = SpaceTime(4, 5, **kw).double().eval()
    x = torch.randn(2, 23, 4, dtype=f64)
    np.testing.assert_allclose(layer(x).detach().numpy(), _numpy_recurrence(layer, x.numpy()), rtol=1e-9,
                               atol=1e-10)


def test_recurrence_equals_convolution_with_preprocessing():
    """The preprocessing FIR (a direct NumPy sum) followed by the companion recurrence == the layer."""
    torch.manual_seed(1)
    layer = SpaceTime(8, 4, preprocess=True, max_avg_window=6).double().eval()
    x = torch.randn(2, 19, 8, dtype=f64)
    k = layer.pre.kernel.numpy()
    z = np.zeros_like(x.numpy())
    for t in range(19):
        for j in range(min(k.shape[1], t + 1)):
            z[:, t] += k[:, j] * x.numpy()[:, t - j]
    np.testing.assert_allclose(layer(x).detach().numpy(), _numpy_recurrence(layer, z), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_differencing_kernel_is_binomial_and_repeated_differences(order):
    k = differencing_kernel(order).numpy()
    np.testing.assert_array_equal(k, [(-1) ** j * math.comb(order, j) for j in range(order + 1)])
    u = np.random.default_rng(order).normal(size=30)
    expected = u.copy()
    for _ in range(order):  # (1 - q) applied ``order`` times, zero before the start
        expected = expected - np.concatenate([[0.0], expected[:-1]])
    np.testing.assert_allclose(np.convolve(u, k)[:30], expected, atol=1e-12)


def test_moving_average_residual_by_hand():
    u = torch.tensor([[4.0, 2.0, 6.0, 0.0, 3.0]], dtype=f64)[..., None]  # (1, 5, 1)
    # channel 0 of a group of 2 is differencing order 0 (the identity), channel 1 a moving-average residual
    pre = ResidualPreprocess(2, max_diff_order=0, min_avg_window=3, max_avg_window=3, group=2).double()
    out = pre(u.expand(1, 5, 2).contiguous())[0, :, 1]
    # u_t - (u_t + u_{t-1} + u_{t-2}) / 3, zeros before the start
    hand = [4 - 4 / 3, 2 - 6 / 3, 6 - 12 / 3, 0 - 8 / 3, 3 - 9 / 3]
    np.testing.assert_allclose(out.numpy(), hand, atol=1e-12)
    np.testing.assert_allclose(pre(u.expand(1, 5, 2).contiguous())[0, :, 0].numpy(), u[0, :, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(moving_average_residual_kernel(3).numpy(), [2 / 3, -1 / 3, -1 / 3])


def test_preprocess_layout_groups_and_windows():
    torch.manual_seed(0)
    k, w = preprocess_kernels(20, max_diff_order=4, min_avg_window=4, max_avg_window=9, group=8)
    for h in range(20):
        s = h % 8
        if s <= 4:
            assert w[h] == 0
            torch.testing.assert_close(k[h, : s + 1], differencing_kernel(s))
            assert float(k[h, s + 1:].abs().sum()) == 0.0
        else:
            assert 4 <= int(w[h]) <= 9
            torch.testing.assert_close(k[h, : int(w[h])], moving_average_residual_kernel(int(w[h])))
    assert float(k[5:8].sum()) == pytest.approx(0.0, abs=1e-12)  # residuals of a mean have zero sum


def test_l1_normalization_of_a_only():
    """``norm_order=1`` divides ``a`` by its L1 norm (as the authors' CompanionSSM); ``b`` and ``c`` are used as
    they are (normalizing them too starved the SSM path: kernel gain ~0.1 at init)."""
    torch.manual_seed(0)
    layer = SpaceTime(3, 6)
    a, b, c = layer.system()
    torch.testing.assert_close(a.abs().sum(-1), torch.ones(3))
    torch.testing.assert_close(b, layer.b.detach())
    torch.testing.assert_close(c, layer.c.detach())
    x = torch.randn(2, 15, 3)
    y = layer(x)
    with torch.no_grad():  # the normalized system is invariant to rescaling the raw a
        layer.a.mul_(3.0)
    torch.testing.assert_close(layer(x), y, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        layer.a.mul_(1e-7)  # below the 1e-4 threshold: used as is
    a2, _, _ = layer.system()
    torch.testing.assert_close(a2, layer.a.detach())


def test_kernel_gain_at_init_is_order_one():
    """At the recipes' size (d = 64, L = 336) the default init gives the SSM path a total gain sum_l |k_l| of order
    1 per channel: neither negligible next to the skip D = 1 (L1-normalized b, c gave ~0.1) nor explosive (the
    authors' N(0, 1) init with b, c free gives ~300)."""
    torch.manual_seed(0)
    with torch.no_grad():
        gain = SpaceTime(128, 64).kernel(336).abs().sum(-1)
    assert 0.5 < float(gain.median()) < 5.0


def test_shared_kernels_and_shift_kernel():
    torch.manual_seed(0)
    layer = SpaceTime(12, 4, n_kernels=3, n_heads=2, kernel_repeat=2)
    assert (layer.n_kernels, layer.head_dim) == (3, 1)
    k = layer.kernel(10)
    assert layer.kernel_index.tolist() == [0, 0, 1, 1, 2, 2] * 2
    torch.testing.assert_close(k[0], k[1])
    torch.testing.assert_close(k[0], k[6])
    shift = SpaceTime(2, 4, kind="shift")
    c = shift.system()[2]
    torch.testing.assert_close(shift.kernel(7), torch.cat([c, torch.zeros(2, 3)], -1))
    assert [n for n, _ in shift.named_parameters()] == ["c", "D"]


def test_fast_and_squaring_layers_agree():
    torch.manual_seed(0)
    fast = SpaceTime(4, 16).double()
    slow = SpaceTime(4, 16, kernel_method="squaring").double()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, 200, 4, dtype=f64)
    torch.testing.assert_close(fast(x), slow(x), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize(("kw", "match"), [
    ({"d_state": 0}, "d_state"), ({"n_heads": 3}, "n_heads"), ({"n_kernels": 3}, "n_kernels"),
    ({"kernel_repeat": 0}, "kernel_repeat"), ({"kind": "diag"}, "kind"), ({"norm_order": 2}, "norm_order"),
    ({"kernel_init": "zeros"}, "kernel_init"), ({"kernel_method": "cauchy"}, "kernel_method"),
    ({"preprocess": True, "min_avg_window": 9, "max_avg_window": 4}, "min_avg_window"),
    ({"preprocess": True, "preprocess_group": 3}, "group"), ({"lr": -1.0}, "lr"),
])
def test_bad_options_are_one_line_errors(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        SpaceTime(4, **kw)
    assert "\n" not in str(info.value)


def test_bad_state_is_a_one_line_error():
    layer = SpaceTime(3, 4, preprocess=True, max_avg_window=5)
    with pytest.raises(ValueError, match="init_state") as info:
        layer.step(torch.randn(2, 3), torch.zeros(2, 3, 4))
    assert "\n" not in str(info.value)


VARIANTS = {"preprocess": {"preprocess": True, "max_avg_window": 6, "d_state": 8},
            "shift": {"kind": "shift", "d_state": 8},
            "heads": {"n_heads": 2, "d_state": 8}}


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.check_id)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_contract_of_variants(variant, check):
    def make(d_model, **kw):
        opts = dict(VARIANTS[variant])
        if variant == "heads" and d_model % 2:  # the checks use H = 3 or 4; two heads need an even width
            opts["n_heads"] = 1
        return SpaceTime(d_model, **{**opts, **kw})
    check(make)
