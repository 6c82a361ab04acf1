"""LongConv: forward against an explicit float64 convolution sum of the regularized kernel (NumPy, from the
parameters), step (ring buffer) == forward, padding, init laws, optimizer hints, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm import LongConv
from ptdssm.optim import param_groups

from . import contract
from .common import gradcheck_layer, rel

torch.set_num_threads(min(2, torch.get_num_threads()))


def make(H=3, seed=0, perturb=0.05, **kw):
    """A seeded layer; ``perturb`` adds N(0, perturb^2) to the kernel (taps outside the squash dead zone)."""
    torch.manual_seed(seed)
    kw.setdefault("l_max", 64)
    layer = LongConv(H, **kw)
    if perturb:
        with torch.no_grad():
            layer.kernel.add_(perturb * torch.randn_like(layer.kernel))
    return layer


def np_kernel(layer):
    """The regularized kernel in NumPy from the stored parameter: box average of width p (zeros outside), then
    sign(k) max(|k| - lam, 0)."""
    k = layer.kernel.detach().double().numpy()
    p, r = layer.smooth, layer.smooth // 2
    Lk = k.shape[-1]
    padded = np.concatenate([np.zeros(k.shape[:-1] + (r,)), k, np.zeros(k.shape[:-1] + (r,))], -1)
    sm = sum(padded[..., i:i + Lk] for i in range(p)) / p
    return np.sign(sm) * np.maximum(np.abs(sm) - layer.lam, 0.0)


def reference(layer, u):
    """y_t = sum_{j<=t} K_j u_{t-j} (+ sum_j K_b,j u_{t+j}) + D u_t, explicit O(L L_k) sums in float64."""
    K = np_kernel(layer)
    D = 0.0 if layer.D is None else layer.D.detach().double().numpy()
    B, L, H = u.shape
    y = np.zeros_like(u)
    for t in range(L):
        for j in range(min(t + 1, K.shape[-1])):
            y[:, t] += K[0, :, j] * u[:, t - j]
        if layer.bidirectional:
            for j in range(min(L - t, K.shape[-1])):
                y[:, t] += K[1, :, j] * u[:, t + j]
    return y + D * u


CASES = [dict(), dict(kernel_len=9), dict(smooth=5, lam=0.02), dict(bidirectional=True, kernel_len=13),
         dict(bidirectional=True, smooth=3), dict(init="double_exp", lam=0.0), dict(D=False, kernel_len=1)]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CASES]


@pytest.mark.parametrize("kw", CASES, ids=IDS)
@pytest.mark.parametrize("L", [40, 64, 100])
def test_forward_matches_float64_convolution_sum(kw, L):
    """Kernel shorter than, as long as, and longer than the sequence (truncated / zero taps)."""
    layer = make(**kw).eval()
    u = torch.randn(2, L, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel(y, reference(layer, u.double().numpy())) < 1e-5
    y64 = layer.double()(u.double())
    assert rel(y64, reference(layer, u.double().numpy())) < 1e-12


@pytest.mark.parametrize("kw", [dict(), dict(kernel_len=7), dict(smooth=3, kernel_len=20)], ids=str)
def test_step_matches_forward(kw):
    """The ring buffer (L_k = 7 wraps many times in 60 steps) equals the convolution."""
    contract.check_step_matches_forward(lambda H, **o: make(H=H, **kw, **o), L=60)
    contract.check_prefill_then_step(lambda H, **o: make(H=H, **kw, **o), L=30)


@pytest.mark.parametrize("kw", [dict(kernel_len=7), dict(bidirectional=True, kernel_len=11), dict(smooth=5)], ids=str)
def test_padding_never_leaks(kw):
    """Also bidirectional: the pads are zeroed before the anti-causal pass (no prefill state there)."""
    bidirectional = kw.pop("bidirectional", False)
    contract.check_padding_never_leaks(lambda H, **o: make(H=H, **kw, **o), bidirectional=bidirectional)


def test_prefill_buffer_holds_the_last_real_inputs():
    layer = make(kernel_len=6).eval()
    x = torch.randn(3, 20, 3)
    lengths = torch.tensor([20, 4, 11])
    with torch.no_grad():
        _, buf = layer.prefill(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        want = torch.zeros(3, 6)
        last = x[b, max(0, n - 6):n].flip(0).T  # newest first
        want[:, : last.shape[1]] = last
        torch.testing.assert_close(buf[b], want, rtol=0, atol=0)


def test_init_laws():
    torch.manual_seed(0)
    layer = LongConv(64, l_max=2048)
    k = layer.kernel.detach().double()
    assert k.shape == (1, 64, 2048)
    assert abs(float(k.std()) - 0.002) < 0.0001 and abs(float(k.mean())) < 0.0001
    d = layer.D.detach().double()
    assert abs(float(d.std()) - 1.0) < 0.3
    # with lam = 0.003 most taps start in the dead zone: P(|N(0, 0.002^2)| < 0.003) = P(|Z| < 1.5) = 0.866
    dead = float((layer.regularized_kernel() == 0).double().mean())
    assert abs(dead - 0.866) < 0.01
    torch.manual_seed(0)
    de = LongConv(16, l_max=4096, init="double_exp", bidirectional=True).kernel.detach().double()
    # K / exp(-(j / L_k) (H/2)^(h/H)) is N(0, 0.02^2) at every channel and tap: check the head and the tail of the
    # fastest and the slowest decaying channel (a wrong envelope leaves a trend; channel 15 decays by e^-6.9)
    j = torch.arange(4096, dtype=torch.float64) / 4096
    for h in (0, 15):
        white = de[:, h] / torch.exp(-j * 8.0 ** (h / 16))
        for part in (white[:, :512], white[:, -512:]):
            assert abs(float(part.std()) / 0.02 - 1) < 0.06


def test_optimizer_hints_and_dead_zone_gradient():
    layer = make(lr=1e-3, perturb=0.0)
    groups = {g["name"]: g for g in param_groups(layer, lr=0.01, weight_decay=0.05)}
    assert [p is layer.kernel for p in groups["ssm"]["params"]] == [True]
    assert groups["ssm"]["lr"] == 1e-3 and groups["ssm"]["weight_decay"] == 0.0
    assert any(p is layer.D for p in groups["no_decay"]["params"])
    # Squash: taps inside the dead zone get no gradient, the others do
    layer(torch.randn(2, 64, 3)).square().sum().backward()
    inside = layer.kernel.detach().abs() < layer.lam
    assert float(layer.kernel.grad[inside].abs().max()) == 0.0
    assert bool((layer.kernel.grad[~inside] != 0).all())


def test_kernel_dropout_only_in_training():
    layer = make(kernel_dropout=0.5)
    x = torch.randn(2, 30, 3)
    torch.testing.assert_close(layer.eval()(x), layer(x))
    layer.train()
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(2)
    assert contract.rel_err(a, layer(x)) > 1e-3


def test_gradcheck():
    assert gradcheck_layer(make(H=2, l_max=8, smooth=3, lam=0.01).double())
    assert gradcheck_layer(make(H=2, l_max=8, bidirectional=True).double())


@pytest.mark.parametrize(("kw", "match"), [
    (dict(l_max=16, kernel_len=32), "kernel_len=32 is longer than the sequence"),
    (dict(kernel_len=0), "kernel_len"), (dict(l_max=0), "l_max"),
    (dict(smooth=4), "smooth"), (dict(smooth=0), "smooth"), (dict(lam=-0.1), "lam"),
    (dict(kernel_dropout=1.0), "kernel_dropout"), (dict(init="hippo"), "init"), (dict(lr=0.0), "lr")])
def test_bad_arguments_are_one_line_errors(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        LongConv(4, **kw)
    assert "\n" not in str(info.value)


def test_bidirectional_has_no_step_mode():
    layer = make(bidirectional=True)
    with pytest.raises(RuntimeError, match="no step mode"):
        layer.init_state(2)
    with pytest.raises(ValueError, match="state has shape"):
        make().step(torch.randn(2, 3), torch.zeros(2, 3, 5))


@pytest.mark.parametrize("task", ["associative-recall", "selective-copying"])
def test_packaged_synthetic_configs_train_one_step(task, tmp_path):
    from ptdssm.config import available_configs, load_config
    from ptdssm.experiments.train import train

    cfg = load_config(available_configs()[f"{task}-long-conv"],
                      ["data.options={n_train: 8, n_val: 4, n_test: 4}", "data.batch_size=4", "model.n_layers=1",
                       "model.d_model=8", "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false",
                       f"train.out={tmp_path / 'run'}", "train.device=cpu"])
    assert cfg.model.layer["l_max"] == cfg.data.seq_len  # one kernel tap per position
    assert np.isfinite(train(cfg).results["test_loss"])
