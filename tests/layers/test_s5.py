"""S5 / S5-PTD: forward and step against a float64 NumPy MIMO recurrence, ``d_state`` meaning, gradients,
freezing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptdssm import S5
from ptdssm.kernels.scan import decay_order

from . import contract
from .common import bidir_sum, disc, gradcheck_layer, make, np64, param, rel, skip

torch.set_num_threads(min(2, torch.get_num_threads()))

CASES = [dict(), dict(init="ptd", d_state=8), dict(init="s5-ptd", d_state=8, blocks=2),
         dict(blocks=2, C_init="lecun_normal", disc="bilinear"), dict(conj_sym=False, C_init="complex_normal"),
         dict(scan="fft", stability="clip")]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CASES]


def reference(layer, u):
    """x_k = Lambda_bar x_{k-1} + B_bar u_k (MIMO, shared by the channels), y = f Re(C~ x) + D u (float64)."""
    lam = np64(layer.eigenvalues())
    z, gam = disc(lam, np64(layer.step_sizes()), layer.disc)
    Bb = gam[:, None] * param(layer, "B")
    f = 2.0 if layer.conj_sym else 1.0

    def run(uu, C):
        x, ys = np.zeros((u.shape[0], len(lam)), complex), []
        for k in range(u.shape[1]):
            x = z * x + uu[:, k] @ Bb.T
            ys.append(f * (x @ C.T).real)
        return np.stack(ys, 1)
    return bidir_sum(run, param(layer, "C"), u) + skip(layer, u)


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_forward_matches_float64_recurrence(kw):
    layer = make(S5, perturb=0.05, **kw)
    u = torch.randn(2, 300, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel(y, reference(layer, u.double().numpy())) < 1e-4


def test_forward_long_and_bidirectional():
    layer = make(S5, H=2, bidirectional=True, perturb=0.05)
    u = torch.randn(1, 1024, 2)
    assert rel(layer(u), reference(layer, u.double().numpy())) < 1e-4


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_step_matches_forward(kw):
    contract.check_step_matches_forward(lambda H, **o: make(S5, H=H, perturb=0.05, **kw, **o), L=200)


@pytest.mark.parametrize(("init", "n_modes"), [("s5-legs", 8), ("ptd-paper", 16), ("s5-ptd-paper", 16),
                                              ("ptd-response", 8), ("s5-ptd-response", 8)])
def test_d_state_is_the_order_of_the_real_state_matrix(init, n_modes):
    layer = make(S5, H=3, d_state=16, init=init, blocks=2)
    assert layer.d_state == 16 and layer.n_modes == n_modes
    assert layer.eigenvalues().shape == (n_modes,) and layer.step_sizes().shape == (n_modes,)
    assert layer.state_dict()["B"].shape == (n_modes, 3, 2)


def _with_fast_modes(layer):
    """Modes 1, 4, 6 made as fast as PTD's (Re lambda -860, -300, -12 with dt = 0.1: Re log z down to -86, too fast
    for the scan's chunks of 32), interleaved with slow ones so that the layer must reorder its modes."""
    with torch.no_grad():
        idx = torch.tensor([1, 4, 6])
        layer.A_re[idx] = torch.tensor([860.0, 300.0, 12.0], dtype=layer.A_re.dtype).log()
        layer.log_dt[idx] = math.log(0.1)
    log_z, _, _ = layer._discrete()
    assert decay_order(log_z.detach(), 300) is not None  # the split path is taken
    return layer


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fast_modes_match_float64_recurrence_and_the_fft_scan(bidirectional):
    layer = _with_fast_modes(make(S5, perturb=0.05, bidirectional=bidirectional))
    u = torch.randn(2, 300, 3)
    assert rel(layer(u), reference(layer, u.double().numpy())) < 1e-4
    # Gradients of every parameter and the input: chunked (modes reordered, fast ones windowed) vs the FFT scan.
    layer = layer.double()
    u = u.double().requires_grad_()
    out = {}
    for scan in ("chunked", "fft"):
        layer.scan = scan
        layer.zero_grad()
        u.grad = None
        y = layer(u)
        (y * torch.sin(torch.arange(y.numel(), dtype=y.dtype)).view_as(y)).sum().backward()
        out[scan] = [y.detach(), u.grad.clone()] + [p.grad.clone() for p in layer.parameters()]
    for a, b in zip(out["chunked"], out["fft"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9 * float(b.abs().max()))


def test_gradcheck_tiny_float64():
    for kw in (dict(), dict(bidirectional=True)):
        assert gradcheck_layer(make(S5, H=2, d_state=4, perturb=0.05, **kw).double())


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_every_trainable_param_gets_a_finite_grad(kw):
    contract.check_gradients_reach_every_parameter(lambda H, **o: make(S5, H=H, **kw, **o))


def test_freeze_flags():
    layer = make(S5, freeze_A=True, freeze_B=True, freeze_dt=True)
    assert set(dict(layer.named_parameters())) == {"C", "D"}
    assert {"A_re", "A_im", "B", "log_dt"} <= set(dict(layer.named_buffers()))
    layer(torch.randn(1, 20, 3)).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    assert not [n for n, p in layer.named_parameters() if hasattr(p, "_optim")]


def test_state_dict_keys_unchanged():
    sd = make(S5, H=3, d_state=8).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "D": (3,), "A_re": (4,), "A_im": (4,), "B": (4, 3, 2), "C": (1, 3, 4, 2), "log_dt": (4,)}


def test_constructor_errors():
    with pytest.raises(ValueError, match="stability"):
        S5(4, 8, stability="none")
    with pytest.raises(ValueError, match="C_init"):
        S5(4, 8, C_init="zeros")
    with pytest.raises(ValueError, match="divisible"):
        S5(4, 6, blocks=4)
    with pytest.raises(ValueError, match="scan"):
        S5(4, 8, scan="loop")
