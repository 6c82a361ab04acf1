"""Hyena (:class:`ptdssm.layers.hyena.Hyena`): the operator against a float64 NumPy computation written from the
paper's formulas (positional features, sine FFN, decay window, short conv, direct long-convolution sums, gating),
step == forward, closed-form prefill == the generic step loop, the decay window, causality, length independence of
the filter, optimizer hints and bad input."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ptdssm.layers.hyena import Hyena
from ptdssm.layers.hyena_filter import HyenaFilter
from ptdssm.layers.mixer import SequenceMixer
from ptdssm.optim import param_groups

from .common import gradcheck_layer, np64
from .contract import rel_err

torch.set_num_threads(min(2, torch.get_num_threads()))


@contextlib.contextmanager
def float64_default():
    """Build modules in float64 (their buffers too: the decay rates and positions are then exact in float64)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(default)


def make(H=4, seed=0, perturb=0.2, l_max=40, **kw):
    """A float64 Hyena with small filters and every parameter perturbed (random "trained" values)."""
    torch.manual_seed(seed)
    kw.setdefault("filter_order", 8)
    with float64_default():
        layer = Hyena(H, l_max, **kw).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(perturb * torch.randn_like(p))
    return layer


def ref_filter(sd, N, H, L, l_max, modulate=True, shift=0.0, normalized=False, fast=0.3, slow=1.5, target=1e-2):
    """The implicit filters ``(N, H, L)`` by the formulas, from the stored FFN weights and positional features."""
    z = sd["filter_fn.pos_emb"][:L]
    w = sd["filter_fn.act.freq"]
    n_lin = len([k for k in sd if k.startswith("filter_fn.implicit_filter.") and k.endswith(".weight")])
    a = z
    for i in range(n_lin - 1):
        a = np.sin(w * (a @ sd[f"filter_fn.implicit_filter.{2 * i}.weight"].T
                        + sd[f"filter_fn.implicit_filter.{2 * i}.bias"]))
    out = a @ sd[f"filter_fn.implicit_filter.{2 * (n_lin - 1)}.weight"].T  # (L, H N): column c N + n
    h = out.reshape(L, H, N).transpose(2, 1, 0)
    t = np.arange(L) / (l_max - 1)
    if modulate:
        deltas = np.linspace(math.log(target) / slow, math.log(target) / fast, N * H).reshape(H, N).T  # (N, H)
        h = h * (np.exp(-t[None, None, :] * np.abs(deltas)[..., None]) + shift)
    if normalized:
        h = h / np.abs(h).sum(1, keepdims=True)
    return h


def ref_hyena(layer, u, **filter_kw):
    """The operator on one sequence ``u (L, H)`` by the formulas (float64 NumPy, direct sums)."""
    sd = {k: np64(v) for k, v in layer.state_dict().items()}
    L, H = u.shape
    N, K = layer.order, layer.short_filter_order
    p = u @ sd["in_proj.weight"].T + sd.get("in_proj.bias", 0.0)
    w, b = sd["short_filter.weight"][:, 0], sd["short_filter.bias"]
    pc = np.zeros_like(p)
    for t in range(L):
        pc[t] = b + sum(w[:, K - 1 - j] * p[t - j] for j in range(K) if t - j >= 0)
    x = [pc[:, n * H:(n + 1) * H] for n in range(N)]
    v = pc[:, N * H:]
    # paper: z = v, then N rounds; safari (the public code): z = x^1 v, then N - 1 rounds with the other gates
    z, gates = (v, x) if layer.recurrence == "paper" else (x[0] * v, x[1:])
    h = ref_filter(sd, len(gates), H, L, layer.l_max, **filter_kw)
    for n, gate in enumerate(gates):
        conv = np.array([[sum(h[n, c, s] * z[t - s, c] for s in range(t + 1)) for c in range(H)] for t in range(L)])
        z = gate * (conv + sd["filter_fn.bias"][n] * z)
    return z @ sd["out_proj.weight"].T + sd.get("out_proj.bias", 0.0)


@pytest.mark.parametrize("opts", [{}, {"order": 3}, {"emb_dim": 5, "num_inner_mlps": 1, "w": 10.0},
                                  {"normalized": True, "shift": 0.1}, {"short_filter_order": 4, "bias": False},
                                  {"modulate": False}, {"recurrence": "safari"},
                                  {"recurrence": "safari", "order": 3}],
                         ids=["default", "order3", "emb5-inner1-w10", "normalized-shift", "short4-nobias",
                              "no-window", "safari", "safari-order3"])
def test_forward_matches_reference(opts):
    layer = make(**opts)
    filter_kw = {k: opts[k] for k in ("modulate", "shift", "normalized") if k in opts}
    u = torch.randn(2, 17, 4, dtype=torch.float64)
    with torch.no_grad():
        y = layer(u)
    for b in range(2):
        assert rel_err(y[b], torch.from_numpy(ref_hyena(layer, u[b].numpy(), **filter_kw))) < 1e-10


@pytest.mark.parametrize("opts", [{}, {"recurrence": "safari", "order": 3}, {"short_filter_order": 1, "bias": False}])
def test_fused_forward_and_gradients_equal_the_unfused_path(opts):
    """The forward (one fused autograd Function after ``in_proj``) against ``_mix`` (the short conv, the split and
    :func:`~ptdssm.kernels.hyena.hyena_recurrence`, each tested against direct sums): outputs and every gradient."""
    layer = make(**opts)
    u = torch.randn(2, 13, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 13, 4, dtype=torch.float64)
    leaves = [u, *layer.parameters()]
    y = layer(u)
    grads = torch.autograd.grad(y, leaves, g, allow_unused=True)
    y_ref = layer._mix(u)[0]
    grads_ref = torch.autograd.grad(y_ref, leaves, g, allow_unused=True)
    assert rel_err(y, y_ref) < 1e-12
    for a, b in zip(grads, grads_ref, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert rel_err(a, b) < 1e-11


def test_positional_features_stored_at_init():
    """The stored features are the formula's (``t``, then cos/sin bands), ``t`` runs over ``[0, 1]``."""
    f = HyenaFilter(3, 2, 50, emb_dim=5).double()
    z, t = f.pos_emb.detach().numpy(), f.t.numpy()
    k = np.arange(50)
    np.testing.assert_allclose(t, k / 49, atol=1e-7)
    fr = np.linspace(1e-4, 1, 2)
    ref = np.concatenate([(k / 49)[:, None], np.cos(np.outer(k, fr) * 2 * np.pi / 50),
                          -np.sin(np.outer(k, fr) * 2 * np.pi / 50)], 1)
    np.testing.assert_allclose(z, ref, atol=1e-6)


def test_decay_window():
    """Filter with the window / filter without it = ``exp(-t |delta|)``; the fastest channel is at 1e-2 of its
    unmodulated value at ``t = 0.3``, the slowest at ``t = 1.5`` (beyond ``l_max``: ``exp(-|delta_slow|)`` at 1)."""
    l_max = 101
    with float64_default():
        torch.manual_seed(0)
        with_w = HyenaFilter(4, 2, l_max, filter_order=8)
        torch.manual_seed(0)
        without = HyenaFilter(4, 2, l_max, filter_order=8, modulate=False)
    with torch.no_grad():
        ratio = (with_w(l_max) / without(l_max)).numpy()  # (N, H, L)
    t = np.arange(l_max) / (l_max - 1)
    deltas = with_w.deltas.numpy()
    np.testing.assert_allclose(ratio, np.exp(-t * np.abs(deltas)[..., None]), rtol=1e-10)
    fastest, slowest = np.abs(deltas).max(), np.abs(deltas).min()
    np.testing.assert_allclose(ratio.reshape(-1, l_max)[np.abs(deltas).argmax(), 30], 1e-2, rtol=1e-10)  # t = 0.3
    np.testing.assert_allclose(math.exp(-1.5 * slowest), 1e-2, rtol=1e-12)
    np.testing.assert_allclose(math.exp(-0.3 * fastest), 1e-2, rtol=1e-12)


def test_filter_does_not_depend_on_the_length():
    f = HyenaFilter(3, 2, 64).double()
    with torch.no_grad():
        torch.testing.assert_close(f(20), f(64)[..., :20], rtol=0, atol=0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("order,recurrence", [(2, "paper"), (3, "paper"), (2, "safari"), (3, "safari")])
def test_step_equals_forward(dtype, tol, order, recurrence):
    layer = make(order=order, recurrence=recurrence).to(dtype)
    u = torch.randn(3, 30, 4, dtype=dtype)
    with torch.no_grad():
        y = layer(u)
        state = layer.init_state(3)
        ys = []
        for t in range(30):
            yt, state = layer.step(u[:, t], state)
            ys.append(yt)
    assert rel_err(torch.stack(ys, 1), y) < tol
    assert state[2].tolist() == [30, 30, 30]


@pytest.mark.parametrize("recurrence", ["paper", "safari"])
def test_closed_form_prefill_equals_step_loop(recurrence):
    """Hyena's one-pass prefill == the generic prefill (steps over the sequence, state frozen at each length)."""
    layer = make(order=3, recurrence=recurrence)
    u = torch.randn(3, 25, 4, dtype=torch.float64)
    lengths = torch.tensor([25, 9, 1])
    with torch.no_grad():
        y, state = layer.prefill(u, lengths)
        y_loop, state_loop = layer._run(u, lengths, lambda x, n: SequenceMixer._prefill(layer, x, n))
    assert rel_err(y, y_loop) < 1e-12
    for a, b in zip(state, state_loop, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_causal():
    layer = make(order=3)
    u = torch.randn(1, 12, 4, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: layer(x), u)[0, :, :, 0]  # (L, H, L, H)
    for t in range(12):
        assert float(J[t, :, t + 1:].abs().sum()) < 1e-12
        assert float(J[t, :, t].abs().sum()) > 0


def test_optimizer_hints():
    layer = Hyena(8, 32, lr=5e-4)
    groups = param_groups(layer, lr=1e-2, weight_decay=0.1, ssm_lr=1e-3)
    by_param = {id(p): g for g in groups for p in g["params"]}
    for name, p in layer.filter_fn.implicit_filter.named_parameters():
        assert by_param[id(p)]["lr"] == 5e-4 and by_param[id(p)]["weight_decay"] == 0.0, name
    assert by_param[id(layer.filter_fn.pos_emb)]["lr"] == 1e-5
    assert by_param[id(layer.in_proj.weight)]["weight_decay"] == 0.1
    frozen = Hyena(8, 32, pos_emb_lr=0.0)
    assert not frozen.filter_fn.pos_emb.requires_grad


def test_gradcheck_tiny():
    torch.manual_seed(0)
    layer = Hyena(2, 6, filter_order=2, num_inner_mlps=1).double()
    assert gradcheck_layer(layer, L=5)


def test_number_of_long_convolutions():
    assert Hyena(4, 16, order=3).filter_fn(16).shape == (3, 4, 16)
    assert Hyena(4, 16, order=3, recurrence="safari").filter_fn(16).shape == (2, 4, 16)


@pytest.mark.parametrize("kw,match", [({"order": 1}, "order"), ({"recurrence": "fast"}, "recurrence"),
                                      ({"l_max": 0}, "l_max"), ({"emb_dim": 4}, "emb_dim"),
                                      ({"short_filter_order": 0}, "short_filter_order"),
                                      ({"filter_order": 0}, "filter_order")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        Hyena(8, **kw)
    assert "\n" not in str(info.value)


def test_too_long_input_and_step_past_l_max():
    layer = Hyena(3, 8)
    for fn in (lambda: layer(torch.randn(1, 9, 3)), lambda: layer.prefill(torch.randn(1, 9, 3))):
        with pytest.raises(ValueError, match="l_max") as info:
            fn()
        assert "\n" not in str(info.value)
    _, state = layer.prefill(torch.randn(2, 8, 3))
    with pytest.raises(ValueError, match="l_max") as info:
        layer.step(torch.randn(2, 3), state)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ the packaged recipes
_SMALL = {"associative-recall": ["data.options={n_train: 8, n_val: 4, n_test: 4}", "data.seq_len=48"],
          "selective-copying": ["data.options={n_train: 8, n_val: 4, n_test: 4}", "data.seq_len=48"],
          "fashion-mnist": ["data.train_subset=8", "data.val_subset=4", "data.test_subset=4"]}


@pytest.mark.parametrize("task", list(_SMALL))
def test_configs_load_and_train_one_step(task, tmp_path):
    from ptdssm.config import available_configs, load_config
    from ptdssm.experiments.train import train

    if task == "fashion-mnist" and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    path = available_configs()[f"{task}-hyena"]
    assert load_config(path).model.name == "hyena"
    overrides = [*_SMALL[task], "data.batch_size=4", "model.n_layers=1", "model.d_model=8",
                 "model.layer.filter_order=8", "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false",
                 "train.device=cpu", f"train.out={tmp_path / 'run'}"]
    assert train(load_config(path, overrides)).results


def test_lra_recipe_loads():
    from ptdssm.config import available_configs, load_config

    cfg = load_config(available_configs()["image-hyena"])
    assert cfg.model.name == "hyena" and cfg.data.task == "image" and cfg.model.layer["l_max"] == 1024
