"""Mamba-1 (:class:`ptdssm.layers.mamba.Mamba`): a ``mamba_ssm`` state_dict loads as is and gives the outputs of a
float64 NumPy mixer written out here from the paper's formulas (a plain loop over time), step == forward, closed-form
prefill, padding (causal and bidirectional), the init law, the parameter count, optimizer hints and the contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptdssm.layers.mamba import Mamba
from ptdssm.optim import param_groups

from . import contract
from .common import gradcheck_layer
from .contract import rel_err

torch.set_num_threads(min(2, torch.get_num_threads()))


# ------------------------------------------------------------------ independent pieces: mamba_ssm weights, a reference
def mamba_ssm_state_dict(H, N=5, K=4, expand=2, dt_rank=None, bias=False, conv_bias=True, bidirectional=False,
                         seed=0):
    """Random "trained" weights under ``mamba_ssm``'s ``Mamba`` names and shapes (written out here, not taken from
    the layer); float32 values stored as float64 (exact in both)."""
    g = torch.Generator().manual_seed(seed)
    E = int(expand * H)
    R = dt_rank or math.ceil(H / 16)

    def rnd(*shape, std=1.0, mean=0.0):
        return (mean + std * torch.randn(*shape, generator=g)).float().double()

    sd = {"in_proj.weight": rnd(2 * E, H, std=H ** -0.5)}
    if bias:
        sd["in_proj.bias"] = rnd(2 * E, std=0.3)
    for sfx in ("", "_b") if bidirectional else ("",):
        sd[f"conv1d{sfx}.weight"] = rnd(E, 1, K, std=0.5)
        if conv_bias:
            sd[f"conv1d{sfx}.bias"] = rnd(E, std=0.2)
        sd[f"x_proj{sfx}.weight"] = rnd(R + 2 * N, E, std=E ** -0.5)
        sd[f"dt_proj{sfx}.weight"] = rnd(E, R, std=R ** -0.5)
        sd[f"dt_proj{sfx}.bias"] = rnd(E, std=1.0, mean=-2.0)
        sd["A_b_log" if sfx else "A_log"] = torch.log(0.5 + N * torch.rand(E, N, generator=g)).float().double()
        sd[f"D{sfx}"] = rnd(E, std=0.3, mean=1.0)
    sd["out_proj.weight"] = rnd(H, E, std=E ** -0.5)
    if bias:
        sd["out_proj.bias"] = rnd(H, std=0.3)
    return sd


def silu(v):
    return v / (1.0 + np.exp(-v))


def softplus(v):
    return np.logaddexp(0.0, v)


def ref_direction(sd, x, sfx=""):
    """One scan direction, by the formulas: ``x (L, E)`` before the conv -> ``y (L, E)`` before the gate (with the
    ``D`` skip) and the last state ``(E, N)``."""
    W = sd[f"conv1d{sfx}.weight"][:, 0]  # (E, K); W[:, K-1] multiplies the newest input
    E, K = W.shape
    cb = sd.get(f"conv1d{sfx}.bias", np.zeros(E))
    A = -np.exp(sd["A_b_log" if sfx else "A_log"])
    N = A.shape[1]
    Wx, Wdt, bdt, D = sd[f"x_proj{sfx}.weight"], sd[f"dt_proj{sfx}.weight"], sd[f"dt_proj{sfx}.bias"], sd[f"D{sfx}"]
    R = Wdt.shape[1]
    h = np.zeros((E, N))
    ys = []
    for t in range(x.shape[0]):
        xc = cb.copy()
        for k in range(K):
            s = t - (K - 1) + k
            if s >= 0:
                xc = xc + W[:, k] * x[s]
        xc = silu(xc)
        dbc = Wx @ xc
        dt, Bt, Ct = dbc[:R], dbc[R:R + N], dbc[R + N:]
        delta = softplus(Wdt @ dt + bdt)  # (E,)
        h = np.exp(delta[:, None] * A) * h + (delta * xc)[:, None] * Bt[None, :]
        ys.append(h @ Ct + D * xc)
    return np.array(ys), h


def ref_mamba(sd, u, bidirectional=False):
    """The mixer on one sequence ``u (L, H)``: ``(out (L, H), x before the conv (L, E), last ssm state (E, N))``."""
    sd = {k: v.detach().double().numpy() for k, v in sd.items()}
    xz = u @ sd["in_proj.weight"].T + sd.get("in_proj.bias", 0.0)
    E = xz.shape[1] // 2
    x, z = xz[:, :E], xz[:, E:]
    y, h = ref_direction(sd, x)
    if bidirectional:
        y = y + ref_direction(sd, x[::-1], "_b")[0][::-1]
    out = (y * silu(z)) @ sd["out_proj.weight"].T + sd.get("out_proj.bias", 0.0)
    return out, x, h


def loaded(H, dtype=torch.float64, seed=0, N=5, K=4, **kw):
    """A Mamba with a mamba_ssm-named random state_dict loaded (strict), and that dict."""
    sd = mamba_ssm_state_dict(H, N=N, K=K, seed=seed, **kw)
    layer = Mamba(H, d_state=N, d_conv=K, **kw).to(dtype).eval()
    layer.load_state_dict(sd, strict=True)
    return layer, sd


def make(d_model, **kw):
    kw.setdefault("d_state", 4)
    return Mamba(d_model, **kw)


# ------------------------------------------------------------------ reference equality
@pytest.mark.parametrize("opts", [{}, {"bias": True, "dt_rank": 3, "K": 3}, {"conv_bias": False, "expand": 1.5},
                                  {"bidirectional": True, "bias": True}],
                         ids=["default", "bias-rank3-conv3", "noconvbias-expand1.5", "bidirectional"])
def test_mamba_ssm_state_dict_matches_reference(opts):
    H, L = 6, 23
    layer, sd = loaded(H, **opts)
    assert set(layer.state_dict()) == set(sd)
    u = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y = layer(u)
    for b in range(2):
        ref, _, _ = ref_mamba(sd, u[b].numpy(), bidirectional=opts.get("bidirectional", False))
        assert rel_err(y[b], torch.from_numpy(ref)) < 1e-10
    layer32, _ = loaded(H, dtype=torch.float32, **opts)  # float32 layer, same weights
    with torch.no_grad():
        assert rel_err(layer32(u.float()), y) < 1e-5


def test_state_dict_names_are_mamba_ssm():
    sd = Mamba(32, bias=True).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes == {"in_proj.weight": (128, 32), "in_proj.bias": (128,), "conv1d.weight": (64, 1, 4),
                      "conv1d.bias": (64,), "x_proj.weight": (2 + 32, 64), "dt_proj.weight": (64, 2),
                      "dt_proj.bias": (64,), "A_log": (64, 16), "D": (64,), "out_proj.weight": (32, 64),
                      "out_proj.bias": (32,)}


def test_gradcheck_tiny():
    torch.manual_seed(0)
    layer = Mamba(2, d_state=2, d_conv=2, expand=1, bias=True).double()
    assert gradcheck_layer(layer, L=5)


# ------------------------------------------------------------------ step mode
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_step_equals_forward(dtype, tol):
    layer, _ = loaded(6, dtype=dtype, bias=True)
    u = torch.randn(3, 50, 6, dtype=dtype)
    with torch.no_grad():
        y = layer(u)
        state = layer.init_state(3)
        ys = []
        for t in range(u.shape[1]):
            yt, state = layer.step(u[:, t], state)
            ys.append(yt)
    assert rel_err(torch.stack(ys, 1), y) < tol


@pytest.mark.parametrize("L0", [1, 2, 3, 4, 9])
def test_prefill_then_step(L0):
    """Prefill of a prefix (shorter than d_conv too) then steps == forward; the prefill state is the reference's
    (last d_conv inputs to the conv, zeros on the left; last ssm state)."""
    H, L = 6, 14
    layer, sd = loaded(H, bias=True)
    u = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y = layer(u)
        y0, state = layer.prefill(u[:, :L0])
        conv_state, h = state
        assert conv_state.shape == (2, layer.d_inner, 4) and h.shape == (2, layer.d_inner, 5)
        for b in range(2):
            _, x, h_ref = ref_mamba(sd, u[b, :L0].numpy())
            x_last = np.concatenate([np.zeros((4, x.shape[1])), x])[-4:].T
            assert np.abs(conv_state[b].numpy() - x_last).max() < 1e-12
            assert rel_err(h[b], torch.from_numpy(h_ref)) < 1e-10
        ys = [y0]
        for t in range(L0, L):
            yt, state = layer.step(u[:, t], state)
            ys.append(yt[:, None])
    assert rel_err(torch.cat(ys, 1), y) < 1e-10


def test_bidirectional_has_no_step():
    layer = make(4, bidirectional=True)
    for fn in (lambda: layer.init_state(2), lambda: layer.prefill(torch.randn(2, 5, 4)),
               lambda: layer.step(torch.randn(2, 4), None)):
        with pytest.raises(RuntimeError, match="bidirectional=True"):
            fn()


# ------------------------------------------------------------------ padding
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_matches_unpadded_runs(bidirectional):
    """Garbage in the pads (with in_proj/out_proj biases, so zeroed inputs are not zero after in_proj): outputs at
    real positions equal each sequence run alone, in float64; pads are zero; the prefill state is the unpadded one's
    (causal), also for lengths < d_conv."""
    H, L = 6, 17
    layer, sd = loaded(H, bias=True, bidirectional=bidirectional)
    lengths = torch.tensor([L, 11, 2, 1])
    u = torch.randn(4, L, H, dtype=torch.float64)
    garbage = u.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e3 * torch.randn(L - n, H, dtype=torch.float64)
    with torch.no_grad():
        y = layer(garbage, lengths)
        if not bidirectional:
            y_pre, (conv_state, h) = layer.prefill(garbage, lengths)
            torch.testing.assert_close(y_pre, y, rtol=0, atol=0)
        for b, n in enumerate(lengths.tolist()):
            ref, _, _ = ref_mamba(sd, u[b, :n].numpy(), bidirectional=bidirectional)
            assert rel_err(y[b, :n], torch.from_numpy(ref)) < 1e-10
            assert float(y[b, n:].abs().sum()) == 0.0
            if not bidirectional:
                _, (c_alone, h_alone) = layer.prefill(u[b:b + 1, :n])
                torch.testing.assert_close(conv_state[b:b + 1], c_alone, rtol=0, atol=1e-14)
                assert rel_err(h[b:b + 1], h_alone) < 1e-12


def test_padded_prefill_then_step_continues_each_sequence():
    H, L = 5, 12
    layer, _ = loaded(H, bias=True)
    lengths = torch.tensor([12, 7, 3])
    u = torch.randn(3, L + 4, H, dtype=torch.float64)
    padded = u[:, :L].clone()
    for b, n in enumerate(lengths.tolist()):
        padded[b, n:] = 7.0
    with torch.no_grad():
        _, state = layer.prefill(padded, lengths)
        for b, n in enumerate(lengths.tolist()):
            full = layer(u[b:b + 1, :n + 4])
            st = tuple(s[b:b + 1] for s in state)
            ys = []
            for t in range(n, n + 4):
                yt, st = layer.step(u[b:b + 1, t], st)
                ys.append(yt)
            assert rel_err(torch.stack(ys, 1), full[:, n:]) < 1e-10


# ------------------------------------------------------------------ init, size, hints, options
def test_init_law():
    torch.manual_seed(0)
    layer = Mamba(256, d_state=8, dt_min=1e-3, dt_max=1e-1)  # 512 channels
    dt = torch.nn.functional.softplus(layer.dt_proj.bias.detach().double())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 1e-1 * (1 + 1e-5)
    mid = 0.5 * (math.log(1e-3) + math.log(1e-1))  # log-uniform: mean of log dt at the middle, std = width/sqrt(12)
    assert abs(float(dt.log().mean()) - mid) < 0.2
    assert abs(float(dt.log().std()) - (math.log(1e-1) - math.log(1e-3)) / math.sqrt(12)) < 0.15
    R = layer.dt_rank
    assert R == 16 and float(layer.dt_proj.weight.detach().abs().max()) <= R ** -0.5
    torch.testing.assert_close(layer.A_log, torch.log(torch.arange(1.0, 9.0)).expand(512, 8))
    torch.testing.assert_close(layer.D, torch.ones(512))
    floored = Mamba(16, dt_min=1e-6, dt_max=1e-3, dt_init_floor=1e-4, dt_init="constant", dt_scale=2.0)
    dt = torch.nn.functional.softplus(floored.dt_proj.bias.detach().double())
    assert float(dt.min()) >= 1e-4 * (1 - 1e-4) and float(dt.max()) <= 1e-3 * (1 + 1e-4)
    assert bool((floored.dt_proj.weight == 2.0).all())  # dt_rank 1: dt_scale / sqrt(1)


@pytest.mark.parametrize("H", [512, 4096])
def test_parameter_count(H):
    """``6 H^2`` (in_proj, out_proj) plus ``E (2R + 3N + d_conv + 3)``: about ``3 expand H^2`` (+ ``1/24`` from
    the ``dt`` projections with ``R = H/16``)."""
    with torch.device("meta"):
        layer = Mamba(H)
    n = sum(p.numel() for p in layer.parameters())
    E, R, N = 2 * H, math.ceil(H / 16), 16
    assert n == 6 * H * H + E * (2 * R + 3 * N + 4 + 3)
    assert abs(n / (3 * 2 * H * H) - 1 - 1 / 24) < 0.05 * 512 / H


def test_optimizer_hints():
    layer = make(8, bidirectional=True)
    groups = {g["name"]: g for g in param_groups(layer, lr=1e-3, weight_decay=0.1, ssm_lr=5e-4)}
    ssm = {id(p) for p in groups["ssm"]["params"]}
    for name in ("A_log", "D", "dt_proj.bias", "A_b_log", "D_b", "dt_proj_b.bias"):
        assert id(layer.get_parameter(name)) in ssm, name
    assert groups["ssm"]["weight_decay"] == 0.0 and groups["ssm"]["lr"] == 5e-4
    assert id(layer.in_proj.weight) in {id(p) for p in groups["decay"]["params"]}
    assert layer.A_log._no_weight_decay and layer.double().A_log._optim == {"weight_decay": 0.0}


@pytest.mark.parametrize("kw,match", [({"dt_min": 0.2}, "dt_min"), ({"dt_init": "x"}, "dt_init"),
                                      ({"dt_rank": 0}, "dt_rank"), ({"d_conv": 0}, "d_conv"),
                                      ({"d_state": 1.5}, "d_state"), ({"expand": 0.01}, "expand")])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        Mamba(8, **kw)


@pytest.mark.parametrize("kw", [{"bias": True, "conv_bias": False}, {"bidirectional": True, "bias": True}])
def test_gradients_reach_every_parameter_options(kw):
    contract.check_gradients_reach_every_parameter(make, **kw)


def test_registered_family():
    from ptdssm.layers import family_names, get_family

    if "mamba" not in family_names():
        pytest.skip("family 'mamba' not registered yet")
    fam = get_family("mamba")
    assert fam.layer is Mamba and fam.block == "mixer"


# ------------------------------------------------------------------ the contract
@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.check_id)
def test_contract(check):
    check(make)
