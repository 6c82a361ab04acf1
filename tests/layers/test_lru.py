"""LRU: forward against a float64 NumPy recurrence written from the paper's parameterization, step == forward, the
init laws (ring, phase, gamma, Glorot-like B/C), the LTI view (eigenvalues, unit step sizes, noise hooks),
optimizer hints, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptdssm import LRU, LTISSM
from ptdssm.experiments.noise import NoiseSpec, layer_noise, lti_layers
from ptdssm.experiments.robustness import layer_frequency_response
from ptdssm.optim import param_groups

from . import contract
from .common import gradcheck_layer, rel

torch.set_num_threads(min(2, torch.get_num_threads()))


def make(H=3, seed=0, perturb=0.05, **kw):
    """A seeded layer (``d_state`` 8: 4 complex states); ``perturb`` adds noise to every parameter."""
    torch.manual_seed(seed)
    kw.setdefault("d_state", 8)
    layer = LRU(H, **kw)
    if perturb:
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(perturb * torch.randn_like(p))
    return layer


def np_params(layer):
    """(lambda, gamma, B, C, D) in NumPy float64/complex128 from the stored tensors, by the paper's formulas."""
    sd = {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}
    lam = np.exp(-np.exp(sd["nu_log"]) + 1j * np.exp(sd["theta_log"]))
    gamma = np.exp(sd["gamma_log"])
    B = sd["B"][..., 0] + 1j * sd["B"][..., 1]
    C = sd["C"][..., 0] + 1j * sd["C"][..., 1]
    D = sd["D"] if "D" in sd else 0.0
    return lam, gamma, B, C, D


def reference(layer, u):
    """x_k = lambda x_{k-1} + gamma (B u_k), y_k = Re(C x_k) + D u_k (+ the reverse recurrence with C_b)."""
    lam, gamma, B, C, D = np_params(layer)
    Bn = gamma[:, None] * B

    def run(order, c):
        x, y = np.zeros((u.shape[0], len(lam)), complex), np.zeros_like(u)
        for k in order:
            x = lam * x + u[:, k] @ Bn.T
            y[:, k] = (x @ c.T).real
        return y
    L = u.shape[1]
    y = run(range(L), C[0])
    if layer.bidirectional:
        y = y + run(range(L - 1, -1, -1), C[1])
    return y + D * u


CASES = [dict(), dict(bidirectional=True), dict(scan="fft"), dict(r_min=0.0, r_max=0.5, max_phase=0.3),
         dict(D=False, d_state=16)]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CASES]


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_forward_matches_float64_recurrence(kw):
    layer = make(**kw)
    u = torch.randn(2, 300, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    ref = reference(layer, u.double().numpy())
    assert rel(y, ref) < 1e-4
    assert rel(layer.double()(u.double()), ref) < 1e-10


@pytest.mark.parametrize("kw", [dict(), dict(r_min=0.0), dict(scan="fft", d_state=16)], ids=str)
def test_step_and_prefill_match_forward(kw):
    contract.check_step_matches_forward(lambda H, **o: make(H=H, **kw, **o), L=200)
    contract.check_prefill_then_step(lambda H, **o: make(H=H, **kw, **o), L=60)
    contract.check_padding_never_leaks(lambda H, **o: make(H=H, **kw, **o))
    contract.check_padding_never_leaks(lambda H, **o: make(H=H, **kw, **o), bidirectional=True)


@pytest.mark.parametrize(("r_min", "r_max", "max_phase"), [(0.9, 0.999, 2 * math.pi), (0.0, 1 - 1e-6, math.pi / 10),
                                                           (0.4, 0.6, 1.0)])
def test_ring_init_law(r_min, r_max, max_phase):
    """|lambda| in [r_min, r_max] with |lambda|^2 uniform (uniform on the ring's area), phase uniform in
    [0, max_phase], gamma = sqrt(1 - |lambda|^2) exactly; Kolmogorov-Smirnov distances to the laws are small."""
    torch.manual_seed(0)
    layer = LRU(4, d_state=2 * 4000, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = layer.discrete_eigenvalues().to(torch.complex128).numpy()
    r, phase = np.abs(lam), np.angle(lam) % (2 * np.pi)
    assert r.min() >= r_min - 1e-6 and r.max() <= r_max + 1e-6
    assert phase.max() <= max_phase + 1e-5

    def ks(sample, cdf):
        s = np.sort(sample)
        return np.max(np.abs(np.arange(1, len(s) + 1) / len(s) - cdf(s)))
    assert ks(r ** 2, lambda x: (x - r_min ** 2) / (r_max ** 2 - r_min ** 2)) < 0.03  # 1.36/sqrt(4000) = 0.0215
    assert ks(np.minimum(np.exp(layer.theta_log.detach().double().numpy()), max_phase), lambda x: x / max_phase) < 0.03
    gamma = np.exp(layer.gamma_log.detach().double().numpy())
    np.testing.assert_allclose(gamma, np.sqrt(1 - r ** 2), rtol=1e-4, atol=1e-6)


def test_glorot_like_B_C_and_D():
    torch.manual_seed(1)
    H, m = 64, 512
    layer = LRU(H, d_state=2 * m)
    B, C = layer.B.detach().double(), layer.C.detach().double()
    assert B.shape == (m, H, 2) and C.shape == (1, H, m, 2)
    assert abs(float(B.var()) * 2 * H - 1) < 0.03  # Re, Im ~ N(0, 1/(2H))
    assert abs(float(C.var()) * m - 1) < 0.03  # Re, Im ~ N(0, 1/m)
    assert abs(float(layer.D.detach().double().var()) - 1) < 0.4


def test_gamma_normalization_preserves_the_variance():
    """White noise in: each state's stationary E|x_j|^2 equals E|(B u)_j|^2 (the point of gamma), here checked on
    the float64 states of a long run, close to |lambda| = 1 where the unnormalized states would be ~50-500x larger."""
    torch.manual_seed(2)
    layer = LRU(8, d_state=8, r_min=0.99, r_max=0.999).double()
    u = torch.randn(64, 6000, 8, dtype=torch.float64)
    with torch.no_grad():
        _, x = layer.prefill(u)  # state after the last step, one sample per sequence, stationary after ~5000 steps
        Bvar = (torch.view_as_complex(layer.B.contiguous()).abs() ** 2).sum(-1)  # E|(Bu)_j|^2 for unit white u
    ratio = (x.abs() ** 2).mean(0) / Bvar
    assert bool(((ratio > 0.6) & (ratio < 1.5)).all()), ratio


def test_lti_view_and_noise_hooks():
    layer = make(H=4)
    assert isinstance(layer, LTISSM)
    lam = layer.discrete_eigenvalues()
    torch.testing.assert_close(torch.exp(layer.eigenvalues()), lam)  # continuous eigenvalues at unit step
    assert bool((layer.eigenvalues().real < 0).all()) and bool((lam.abs() < 1).all())
    torch.testing.assert_close(layer.step_sizes(), torch.ones(4))
    model = torch.nn.Sequential(layer)
    assert lti_layers(model) == [layer]
    x = torch.zeros(2, 50, 4)
    with torch.no_grad(), layer_noise(model, NoiseSpec("layer", amplitude=1.0, frequency=0.5, seed=0)) as n:
        y = model(x)
    assert n == 1 and float(y.abs().sum()) > 0  # noise reached a layer whose clean output is zero
    omega, mag = layer_frequency_response(layer, 64)
    assert omega.shape == mag.shape == (4, 33) and np.isclose(omega[0, -1], np.pi)  # radians per sample


def test_optimizer_hints_and_freezing():
    layer = make(lr=5e-4, perturb=0.0)
    groups = {g["name"]: g for g in param_groups(layer, lr=0.01, weight_decay=0.05)}
    ssm = {id(p) for p in groups["ssm"]["params"]}
    assert ssm == {id(layer.nu_log), id(layer.theta_log), id(layer.gamma_log), id(layer.B)}
    assert groups["ssm"]["lr"] == 5e-4 and groups["ssm"]["weight_decay"] == 0.0
    assert any(p is layer.C for p in groups["decay"]["params"])
    frozen = make(freeze_A=True, freeze_B=True, perturb=0.0)
    assert {n for n, _ in frozen.named_parameters()} == {"C", "D"}
    assert {"nu_log", "theta_log", "gamma_log", "B"} <= set(frozen.state_dict())


def test_gradcheck():
    assert gradcheck_layer(make(H=2, d_state=4).double())
    assert gradcheck_layer(make(H=2, d_state=4, bidirectional=True).double())


@pytest.mark.parametrize(("kw", "match"), [
    (dict(r_min=0.9, r_max=0.9), "r_min=0.9 must be < r_max=0.9"), (dict(r_min=0.95, r_max=0.9), "r_min"),
    (dict(r_max=1.0), "r_max"), (dict(r_min=-0.1), "r_min"), (dict(r_max=0.0, r_min=0.0), "r_max"),
    (dict(max_phase=0.0), "max_phase"), (dict(max_phase=7.0), "max_phase"), (dict(d_state=7), "d_state must be even"),
    (dict(d_state=0), "d_state"), (dict(scan="loop"), "scan")])
def test_bad_arguments_are_one_line_errors(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        LRU(4, **kw)
    assert "\n" not in str(info.value)


def test_bidirectional_has_no_step_mode():
    with pytest.raises(RuntimeError, match="no step mode"):
        make(bidirectional=True).init_state(2)


@pytest.mark.parametrize("task", ["associative-recall", "selective-copying"])
def test_packaged_synthetic_configs_train_one_step(task, tmp_path):
    from ptdssm.config import available_configs, load_config
    from ptdssm.experiments.train import train

    cfg = load_config(available_configs()[f"{task}-lru"],
                      ["data.options={n_train: 8, n_val: 4, n_test: 4}", "data.batch_size=4", "model.n_layers=1",
                       "model.d_model=8", "model.layer.d_state=4", "train.epochs=1", "train.max_steps_per_epoch=1",
                       "train.progress=false", f"train.out={tmp_path / 'run'}", "train.device=cpu"])
    assert np.isfinite(train(cfg).results["test_loss"])
