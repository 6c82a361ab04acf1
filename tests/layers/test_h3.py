"""H3 (:class:`ptdssm.layers.h3.H3`): the layer against a float64 NumPy loop written from the paper's formulas (shift
register, textbook-discretized diagonal recurrence, per-head outer products), step == forward, the shift SSM as
delayed copies, causality, the inits of the registry (PTD included), optimizer hints and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptdssm.layers.h3 import H3
from ptdssm.optim import param_groups
from ptdssm.theory.init import ssm_init

from .common import disc, gradcheck_layer, np64
from .contract import rel_err

torch.set_num_threads(min(2, torch.get_num_threads()))


def make(H=4, seed=0, perturb=0.3, **kw):
    """A float64 H3 with ``d_state`` 6 and every parameter perturbed (random "trained" values)."""
    torch.manual_seed(seed)
    kw.setdefault("d_state", 6)
    kw.setdefault("dt_min", 1e-2)
    layer = H3(H, **kw).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(perturb * torch.randn_like(p))
    return layer


def ref_h3(layer, u):
    """H3 on one sequence ``u (L, H)`` by the formulas, from ``state_dict`` alone (float64 NumPy loop)."""
    sd = {k: np64(v) for k, v in layer.state_dict().items()}
    L, H = u.shape
    h = layer.n_heads
    d = H // h
    qkv = u @ sd["in_proj.weight"].T + sd.get("in_proj.bias", 0.0)
    q, k, v = qkv[:, :H], qkv[:, H:2 * H], qkv[:, 2 * H:]
    Cs, Dk = sd["shift_C"], sd["shift_D"]
    N = Cs.shape[1]
    lam = -np.exp(sd["ssm.A_re"]) + 1j * sd["ssm.A_im"]  # (h, m)
    Bm = sd["ssm.B"][..., 0] + 1j * sd["ssm.B"][..., 1]
    Cm = sd["ssm.C"][..., 0] + 1j * sd["ssm.C"][..., 1]
    dt = np.exp(sd["ssm.log_dt"])[:, None]
    zbar, gamma = disc(lam, dt, layer.ssm.disc)
    f = 2.0 if layer.ssm.conj_sym else 1.0
    reg = np.zeros((H, N))  # shift register: reg[:, l] = k_{t-l}
    x = np.zeros((h, d, d, lam.shape[1]), dtype=complex)
    out = []
    for t in range(L):
        reg = np.concatenate([k[t][:, None], reg[:, :-1]], axis=1)
        kt = (reg * Cs).sum(1) + Dk * k[t]
        o = np.zeros(H)
        for i in range(h):
            S = np.outer(kt[i * d:(i + 1) * d], v[t, i * d:(i + 1) * d])  # (d, d)
            x[i] = zbar[i] * x[i] + (gamma[i] * Bm[i]) * S[..., None]
            Y = f * (Cm[i] * x[i]).sum(-1).real + sd["D"][i] * S
            o[i * d:(i + 1) * d] = q[t, i * d:(i + 1) * d] @ Y
        out.append(o @ sd["out_proj.weight"].T + sd.get("out_proj.bias", 0.0))
    return np.array(out)


@pytest.mark.parametrize("opts", [{}, {"n_heads": 2}, {"n_heads": 1, "init": "ptd"}, {"init": "s4d-legs"},
                                  {"disc": "bilinear", "init": "s4d-inv"}, {"init": "s4d-real", "bias": False}],
                         ids=["default", "heads2", "head-dim4-ptd", "legs", "bilinear-inv", "real-nobias"])
def test_forward_matches_reference(opts):
    layer = make(**opts)
    u = torch.randn(2, 21, 4, dtype=torch.float64)
    with torch.no_grad():
        y = layer(u)
    for b in range(2):
        assert rel_err(y[b], torch.from_numpy(ref_h3(layer, u[b].numpy()))) < 1e-10


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("n_heads", [None, 2])
def test_step_equals_forward(dtype, tol, n_heads):
    layer = make(n_heads=n_heads).to(dtype)
    u = torch.randn(3, 30, 4, dtype=dtype)
    with torch.no_grad():
        y = layer(u)
        state = layer.init_state(3)
        ys = []
        for t in range(30):
            yt, state = layer.step(u[:, t], state)
            ys.append(yt)
    assert rel_err(torch.stack(ys, 1), y) < tol


def test_shift_ssm_gives_delayed_copies():
    """With ``shift_C = e_j`` and ``shift_D = 0`` the shift SSM delays ``k`` by ``j``: with ``k = u``, ``v = q = 1``
    and the diagonal SSM reduced to its skip (``C = 0``, ``D = 1``), the layer's output is ``u`` delayed by ``j``."""
    H, N, L = 3, 6, 16
    layer = H3(H, d_state=N, bias=True).double()
    eye = torch.eye(H, dtype=torch.float64)
    with torch.no_grad():
        layer.in_proj.weight.zero_()
        layer.in_proj.weight[H:2 * H] = eye  # k = u
        layer.in_proj.bias.zero_()
        layer.in_proj.bias[:H] = 1.0  # q = 1
        layer.in_proj.bias[2 * H:] = 1.0  # v = 1
        layer.ssm.C.zero_()
        layer.D.fill_(1.0)
        layer.shift_D.zero_()
        layer.out_proj.weight.copy_(eye)
        layer.out_proj.bias.zero_()
    u = torch.randn(2, L, H, dtype=torch.float64)
    for j in range(N):
        with torch.no_grad():
            layer.shift_C.zero_()
            layer.shift_C[:, j] = 1.0
            y = layer(u)
        torch.testing.assert_close(y[:, j:], u[:, :L - j], rtol=0, atol=1e-12)
        assert float(y[:, :j].abs().sum()) < 1e-12


def test_causal():
    """``dy_t / du_s = 0`` for ``s > t`` (safari's advice: check causality numerically)."""
    layer = make(n_heads=2)
    u = torch.randn(1, 12, 4, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda x: layer(x), u)[0, :, :, 0]  # (L, H, L, H)
    for t in range(12):
        assert float(J[t, :, t + 1:].abs().sum()) < 1e-12
        assert float(J[t, :, t].abs().max()) > 0


@pytest.mark.parametrize("init", ["s4d-lin", "s4d-legs", "ptd"])
def test_diagonal_ssm_takes_the_registry_init(init):
    layer = H3(8, d_state=8, n_heads=2, init=init)
    si = ssm_init(init, 8)
    assert layer.ssm.n_modes == si.n_modes and layer.ssm.conj_sym == si.conj_sym
    lam = layer.ssm.eigenvalues()
    assert lam.shape == (2, si.n_modes)
    np.testing.assert_allclose(lam.numpy(), np.broadcast_to(si.Lambda, lam.shape), rtol=1e-5, atol=1e-5)


def test_optimizer_hints():
    layer = H3(8, d_state=8, lr=2e-4)
    groups = param_groups(layer, lr=1e-2, weight_decay=0.1, ssm_lr=1e-3)
    by_param = {id(p): g for g in groups for p in g["params"]}
    for name in ("A_re", "A_im", "B", "log_dt"):
        g = by_param[id(getattr(layer.ssm, name))]
        assert g["lr"] == 2e-4 and g["weight_decay"] == 0.0, name
    assert by_param[id(layer.ssm.C)]["lr"] == 1e-2
    assert by_param[id(layer.in_proj.weight)]["weight_decay"] == 0.1


def test_gradcheck_tiny():
    torch.manual_seed(0)
    layer = H3(2, d_state=2, n_heads=1).double()  # one head of dimension 2: the outer-product path
    assert gradcheck_layer(layer, L=5)


@pytest.mark.parametrize("kw,match", [({"n_heads": 3}, "n_heads"), ({"n_heads": 0}, "n_heads"),
                                      ({"d_state": 0}, "d_state"), ({"d_state": 5}, "d_state"),
                                      ({"init": "legs"}, "init"),
                                      ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        H3(8, **kw)
    assert "\n" not in str(info.value)


def test_bad_state():
    layer = H3(4, d_state=4)
    with pytest.raises(ValueError, match="init_state") as info:
        layer.step(torch.randn(2, 4), layer.init_state(3))
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
    path = available_configs()[f"{task}-h3"]
    assert load_config(path).model.name == "h3"
    overrides = [*_SMALL[task], "data.batch_size=4", "model.n_layers=1", "model.d_model=8", "model.layer.d_state=4",
                 "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false", "train.device=cpu",
                 f"train.out={tmp_path / 'run'}"]
    assert train(load_config(path, overrides)).results
