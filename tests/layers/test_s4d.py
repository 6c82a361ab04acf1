"""S4D / S4-PTD: forward and step against a float64 NumPy recurrence, the kernel against ``s4d_kernel_ref``,
``d_state`` meaning, gradients, freezing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm import S4D
from ptdssm.kernels.vandermonde import s4d_kernel_ref

from . import contract
from .common import bidir_sum, disc, gradcheck_layer, make, np64, param, rel, skip, tile

torch.set_num_threads(min(2, torch.get_num_threads()))

CASES = [dict(init=i) for i in ("s4d-legs", "s4d-lin", "s4d-inv", "s4d-real")] + [
    dict(init="ptd", d_state=8), dict(init="s4d-legs", disc="bilinear"), dict(init="s4d-lin", conj_sym=False),
    dict(init="s4d-inv", stability="reflect", n_ssm=1), dict(init="s4d-legs", stability="clip")]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) for c in CASES]


def reference(layer, u):
    """x_k = Lambda_bar x_{k-1} + B_bar u_k per channel, y = f Re(C x) + D u (float64)."""
    H = layer.d_model
    lam, B = tile(np64(layer.eigenvalues()), H), tile(param(layer, "B"), H)
    z, gam = disc(lam, np64(layer.step_sizes())[:, None], layer.disc)
    f = 2.0 if layer.conj_sym else 1.0

    def run(uu, C):
        x, ys = np.zeros((u.shape[0], H, lam.shape[1]), complex), []
        for k in range(u.shape[1]):
            x = z * x + gam * B * uu[:, k, :, None]
            ys.append(f * (C * x).sum(-1).real)
        return np.stack(ys, 1)
    return bidir_sum(run, param(layer, "C"), u) + skip(layer, u)


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_forward_matches_float64_recurrence(kw):
    layer = make(S4D, perturb=0.05, **kw)
    u = torch.randn(2, 300, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel(y, reference(layer, u.double().numpy())) < 1e-4


def test_forward_long_and_bidirectional():
    layer = make(S4D, H=2, bidirectional=True, perturb=0.05)
    u = torch.randn(1, 1024, 2)
    assert rel(layer(u), reference(layer, u.double().numpy())) < 1e-4


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_step_matches_forward(kw):
    contract.check_step_matches_forward(lambda H, **o: make(S4D, H=H, perturb=0.05, **kw, **o), L=200)


@pytest.mark.parametrize("kw", [dict(init="s4d-legs"), dict(init="ptd"), dict(init="s4d-lin", disc="bilinear")])
def test_kernel_matches_ref(kw):
    layer = make(S4D, H=4, perturb=0.05, bidirectional=True, **kw).double()
    H = layer.d_model
    Lambda = torch.as_tensor(tile(np64(layer.eigenvalues()), H))
    B = torch.as_tensor(tile(param(layer, "B"), H))
    C = torch.as_tensor(param(layer, "C"))
    ref = s4d_kernel_ref(Lambda, B, C, layer.step_sizes().detach(), 100, layer.disc, layer.conj_sym)
    torch.testing.assert_close(layer.kernel(100).detach(), ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(("init", "n_modes"), [("s4d-legs", 4), ("s4d-lin", 4), ("ptd-paper", 8), ("ptd-response", 4),
                                              ("s4d-real", 8)])
def test_d_state_is_the_order_of_the_real_state_matrix(init, n_modes):
    """One meaning of d_state: N = 8 for every init; N/2 stored modes with conjugate symmetry, N without."""
    layer = make(S4D, H=2, d_state=8, init=init)
    assert layer.d_state == 8 and layer.n_modes == n_modes
    assert layer.eigenvalues().shape == (2, n_modes)
    assert layer.state_dict()["C"].shape == (1, 2, n_modes, 2)
    # the realized spectrum has N = 8 eigenvalues: the stored ones plus, with conjugate symmetry, their conjugates
    lam = layer.eigenvalues()[0]
    full = torch.cat([lam, lam.conj()]) if layer.conj_sym else lam
    assert full.numel() == 8


def test_gradcheck_tiny_float64():
    for kw in (dict(), dict(init="s4d-real", bidirectional=True)):
        assert gradcheck_layer(make(S4D, H=2, d_state=4, perturb=0.05, **kw).double())


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_every_trainable_param_gets_a_finite_grad(kw):
    contract.check_gradients_reach_every_parameter(lambda H, **o: make(S4D, H=H, **kw, **o))


def test_freeze_flags_and_optimizer_hints():
    layer = make(S4D, freeze_A=True, freeze_B=True, freeze_dt=True)
    params = dict(layer.named_parameters())
    assert set(params) == {"C", "D"}
    assert {"A_re", "A_im", "B", "log_dt"} <= set(dict(layer.named_buffers()))
    assert {"A_re", "B", "log_dt", "C"} <= set(layer.state_dict())
    layer(torch.randn(1, 20, 3)).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    assert not [n for n, p in layer.named_parameters() if hasattr(p, "_optim")]
    hinted = {n for n, p in make(S4D, lr=1e-3).named_parameters() if getattr(p, "_optim", None)}
    assert hinted == {"A_re", "A_im", "B", "log_dt"}


def test_state_dict_keys_unchanged():
    """Checkpoints written before the LTISSM refactor load: same keys and shapes."""
    sd = make(S4D, H=4, d_state=8, bidirectional=True).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "D": (4,), "A_re": (4, 4), "A_im": (4, 4), "B": (4, 4, 2), "C": (2, 4, 4, 2), "log_dt": (4,)}


def test_constructor_errors_and_introspection():
    with pytest.raises(ValueError, match="init"):
        S4D(4, 8, init="s5-legs")
    with pytest.raises(ValueError, match="disc"):
        S4D(4, 8, disc="euler")
    with pytest.raises(ValueError, match="dt_min"):
        S4D(4, 8, dt_min=0.5, dt_max=0.1)
    with pytest.raises(ValueError, match="n_ssm"):
        S4D(4, 8, n_ssm=3)
    with pytest.raises(RuntimeError, match="bidirectional"):
        S4D(3, 8, bidirectional=True).init_state(1)
    assert make(S4D, H=5).step_sizes().shape == (5,)
    assert make(S4D, H=5, d_state=8).eigenvalues().shape == (5, 4)
    assert (make(S4D, H=2, init="s4d-lin", stability="clip").eigenvalues().real < 0).all()
    dt = make(S4D, H=64, dt_min=1e-3, dt_max=1e-1).step_sizes()
    assert float(dt.min()) >= 1e-3 * (1 - 1e-6) and float(dt.max()) <= 1e-1 * (1 + 1e-6)


@pytest.mark.slow
def test_torch_compile_inductor_tiny():
    contract.check_compile_matches_eager(lambda H, **o: make(S4D, H=H, **o), backend="inductor")

