"""Mamba-2 (SSD mixer): equality with a written-out float64 reference built from a state_dict under ``mamba_ssm``'s
names, the gated RMSNorm formula, chunk-size invariance, step == forward, prefill, padding, gradients and the
SequenceMixer contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ptdssm.layers.mamba2 import Mamba2, RMSNormGated, rmsnorm_gated
from ptdssm.optim import param_groups

from . import contract

torch.set_num_threads(min(2, torch.get_num_threads()))


# ---------------------------------------------------------------------------------------------- reference
def mamba_ssm_state_dict(d_model, d_state, d_conv, expand, headdim, ngroups, *, bias=False, conv_bias=True,
                         D_has_hdim=False, rmsnorm=True, seed=0):
    """Random weights under ``mamba_ssm``'s ``Mamba2`` names and shapes (float64)."""
    g = torch.Generator().manual_seed(seed)
    d_inner = expand * d_model
    nheads = d_inner // headdim
    conv_dim = d_inner + 2 * ngroups * d_state
    d_in_proj = 2 * d_inner + 2 * ngroups * d_state + nheads

    def rnd(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    sd = {
        "in_proj.weight": rnd(d_in_proj, d_model, scale=d_model ** -0.5),
        "conv1d.weight": rnd(conv_dim, 1, d_conv, scale=0.5),
        "dt_bias": rnd(nheads, scale=0.5) - 2.0,
        "A_log": torch.log(torch.rand(nheads, generator=g, dtype=torch.float64) * 3 + 0.2),
        "D": rnd(d_inner if D_has_hdim else nheads),
        "out_proj.weight": rnd(d_model, d_inner, scale=d_inner ** -0.5),
    }
    if conv_bias:
        sd["conv1d.bias"] = rnd(conv_dim, scale=0.1)
    if rmsnorm:
        sd["norm.weight"] = 1.0 + rnd(d_inner, scale=0.2)
    if bias:
        sd["in_proj.bias"] = rnd(d_in_proj, scale=0.1)
        sd["out_proj.bias"] = rnd(d_model, scale=0.1)
    return sd


def reference(sd, u, *, d_state, d_conv, headdim, ngroups, dt_limit=(0.0, math.inf), rmsnorm=True,
              norm_before_gate=False, eps=1e-5):
    """Mamba-2 written out from the formulas, float64: a plain loop over time, per head."""
    u = u.double()
    Bsz, L, _ = u.shape
    W = sd["in_proj.weight"]
    d_inner = sd["out_proj.weight"].shape[1]
    H, P, G, N = d_inner // headdim, headdim, ngroups, d_state
    zxbcdt = u @ W.T + (sd["in_proj.bias"] if "in_proj.bias" in sd else 0.0)
    z = zxbcdt[..., :d_inner]
    xBC = zxbcdt[..., d_inner:2 * d_inner + 2 * G * N]
    dt_raw = zxbcdt[..., 2 * d_inner + 2 * G * N:]
    # causal depthwise conv: out_t = sum_k w_k xBC_{t - (d_conv - 1) + k} + bias
    w = sd["conv1d.weight"][:, 0]
    conv = torch.zeros_like(xBC)
    for t in range(L):
        for k in range(d_conv):
            s = t - (d_conv - 1) + k
            if s >= 0:
                conv[:, t] += w[:, k] * xBC[:, s]
    if "conv1d.bias" in sd:
        conv = conv + sd["conv1d.bias"]
    conv = conv * torch.sigmoid(conv)
    x, Bm, Cm = conv[..., :d_inner], conv[..., d_inner:d_inner + G * N], conv[..., d_inner + G * N:]
    dt = torch.log1p(torch.exp(dt_raw + sd["dt_bias"])).clamp(*dt_limit)
    A = -torch.exp(sd["A_log"])
    D = sd["D"]
    y = torch.zeros(Bsz, L, d_inner, dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        ch = slice(h * P, (h + 1) * P)
        Dh = D[ch] if D.shape[0] == d_inner else D[h]
        state = torch.zeros(Bsz, P, N, dtype=torch.float64)
        for t in range(L):
            xt = x[:, t, ch]  # (B, P)
            Bt = Bm[:, t, g * N:(g + 1) * N]
            Ct = Cm[:, t, g * N:(g + 1) * N]
            dth = dt[:, t, h]
            state = torch.exp(dth * A[h])[:, None, None] * state + dth[:, None, None] * xt[:, :, None] * Bt[:, None]
            y[:, t, ch] = torch.einsum("bpn,bn->bp", state, Ct) + Dh * xt
    gate = z * torch.sigmoid(z)
    if rmsnorm:
        gs = d_inner // G
        v = y * gate if not norm_before_gate else y
        out = torch.empty_like(v)
        for gi in range(G):
            sl = slice(gi * gs, (gi + 1) * gs)
            out[..., sl] = v[..., sl] / torch.sqrt(v[..., sl].pow(2).mean(-1, keepdim=True) + eps)
        out = out * sd["norm.weight"]
        y = out * gate if norm_before_gate else out
    else:
        y = y * gate
    return y @ sd["out_proj.weight"].T + (sd["out_proj.bias"] if "out_proj.bias" in sd else 0.0)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def make(d_model=4, **kw):
    """A tiny Mamba2 (d_state 8, headdim 2: nheads = d_model)."""
    torch.manual_seed(0)
    kw.setdefault("d_state", 8)
    kw.setdefault("headdim", 2)
    kw.setdefault("chunk_size", 8)
    return Mamba2(d_model, **kw)


def loaded(cfg, **layer_kw):
    """(layer in float64 with a random mamba_ssm state_dict loaded strictly, that state_dict)."""
    sd_kw = {k: layer_kw[k] for k in ("bias", "conv_bias", "D_has_hdim", "rmsnorm") if k in layer_kw}
    sd = mamba_ssm_state_dict(**cfg, **sd_kw)
    d_model = cfg["d_model"]
    layer = Mamba2(d_model, d_state=cfg["d_state"], d_conv=cfg["d_conv"], expand=cfg["expand"],
                   headdim=cfg["headdim"], ngroups=cfg["ngroups"], **layer_kw).double()
    layer.load_state_dict(sd, strict=True)
    return layer.eval(), sd


CFG = {"d_model": 6, "d_state": 5, "d_conv": 4, "expand": 2, "headdim": 3, "ngroups": 1}
CFG_G2 = {"d_model": 8, "d_state": 4, "d_conv": 3, "expand": 2, "headdim": 4, "ngroups": 2}


# ---------------------------------------------------------------------------------------------- tests
def test_names_and_shapes_match_mamba_ssm():
    layer = Mamba2(16, d_state=8, headdim=8, ngroups=2, bias=True)
    d_inner, nheads, conv_dim = 32, 4, 32 + 2 * 2 * 8
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (2 * d_inner + 2 * 2 * 8 + nheads, 16), "in_proj.bias": (2 * d_inner + 2 * 2 * 8 + nheads,),
        "conv1d.weight": (conv_dim, 1, 4), "conv1d.bias": (conv_dim,), "dt_bias": (nheads,), "A_log": (nheads,),
        "D": (nheads,), "norm.weight": (d_inner,), "out_proj.weight": (16, d_inner), "out_proj.bias": (16,),
    }
    assert tuple(Mamba2(16, headdim=8, D_has_hdim=True).D.shape) == (32,)
    assert "norm.weight" not in Mamba2(16, headdim=8, rmsnorm=False).state_dict()


def test_inits():
    torch.manual_seed(1)
    layer = Mamba2(64, headdim=16, A_init_range=(2, 5), dt_min=0.01, dt_max=0.05)
    A = torch.exp(layer.A_log.detach())
    assert ((A >= 2) & (A <= 5)).all()
    dt = F.softplus(layer.dt_bias.detach())
    assert ((dt >= 0.01 * (1 - 1e-5)) & (dt <= 0.05 * (1 + 1e-5))).all()
    assert (layer.D.detach() == 1).all() and (layer.norm.weight.detach() == 1).all()


@pytest.mark.parametrize("variant", [
    {},
    {"bias": True, "D_has_hdim": True, "conv_bias": False},
    {"rmsnorm": False},
    {"norm_before_gate": True},
    {"dt_limit": (0.05, 0.5)},
], ids=["default", "bias-Dhdim-noconvbias", "no-rmsnorm", "norm-before-gate", "dt-limit"])
def test_forward_equals_written_out_reference(variant):
    layer, sd = loaded(CFG, chunk_size=4, **variant)
    torch.manual_seed(2)
    u = torch.randn(2, 13, CFG["d_model"], dtype=torch.float64)
    ref_kw = {k: variant[k] for k in ("dt_limit", "rmsnorm", "norm_before_gate") if k in variant}
    ref = reference(sd, u, d_state=CFG["d_state"], d_conv=CFG["d_conv"], headdim=CFG["headdim"],
                    ngroups=CFG["ngroups"], **ref_kw)
    with torch.no_grad():
        assert rel(layer(u), ref) < 1e-12
        # step mode against the same reference
        state, ys = layer.init_state(2), []
        for t in range(u.shape[1]):
            y_t, state = layer.step(u[:, t], state)
            ys.append(y_t)
    assert rel(torch.stack(ys, 1), ref) < 1e-12


def test_ngroups_2_equals_reference():
    layer, sd = loaded(CFG_G2, chunk_size=8)
    assert layer.nheads == 4 and layer.ngroups == 2 and layer.norm.group_size == 8
    torch.manual_seed(3)
    u = torch.randn(2, 19, CFG_G2["d_model"], dtype=torch.float64)
    ref = reference(sd, u, d_state=4, d_conv=3, headdim=4, ngroups=2)
    with torch.no_grad():
        assert rel(layer(u), ref) < 1e-12
        y_pre, state = layer.prefill(u[:, :7])
        ys = [y_pre]
        for t in range(7, 19):
            y_t, state = layer.step(u[:, t], state)
            ys.append(y_t[:, None])
    assert rel(torch.cat(ys, 1), ref) < 1e-12


@pytest.mark.parametrize("norm_before_gate", [False, True])
def test_gated_rmsnorm_formula(norm_before_gate):
    torch.manual_seed(4)
    y, z = torch.randn(3, 5, 12, dtype=torch.float64), torch.randn(3, 5, 12, dtype=torch.float64)
    weight = torch.randn(12, dtype=torch.float64)
    eps, gs = 1e-5, 4
    norm = RMSNormGated(12, eps=eps, group_size=gs, norm_before_gate=norm_before_gate).double()
    with torch.no_grad():
        norm.weight.copy_(weight)
    gate = z * torch.sigmoid(z)
    v = y if norm_before_gate else y * gate
    expect = torch.cat([v[..., i:i + gs] / torch.sqrt((v[..., i:i + gs] ** 2).mean(-1, keepdim=True) + eps)
                        for i in range(0, 12, gs)], -1) * weight
    if norm_before_gate:
        expect = expect * gate
    torch.testing.assert_close(norm(y, z), expect, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(rmsnorm_gated(y, z, weight, group_size=gs, eps=eps, norm_before_gate=norm_before_gate),
                               expect, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="group_size"):
        rmsnorm_gated(y, z, weight, group_size=5)


def test_chunk_size_invariance():
    torch.manual_seed(5)
    x = torch.randn(2, 45, 4, dtype=torch.float64)
    outs = []
    for T in (8, 16, 64):
        layer = make(4, ngroups=2, chunk_size=T).double()
        with torch.no_grad():
            outs.append(layer(x))
    for y in outs[1:]:
        assert rel(y, outs[0]) < 1e-12


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_step_equals_forward(dtype, tol):
    layer = make(4, ngroups=2, dt_min=0.05, dt_max=0.5).to(dtype).eval()
    torch.manual_seed(6)
    x = torch.randn(3, 50, 4, dtype=dtype)
    with torch.no_grad():
        y = layer(x)
        state, ys = layer.init_state(3), []
        for t in range(50):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t)
    assert state[0].shape == (3, layer.conv_dim, 4) and state[1].shape == (3, layer.nheads, 2, 8)
    assert rel(torch.stack(ys, 1), y) < tol


@pytest.mark.parametrize("L0", [1, 2, 3, 4, 9])
def test_prefill_then_step(L0):
    """Prefill shorter than d_conv (conv buffer zero-filled on the left) and longer, then step."""
    layer = make(4, d_conv=4).double().eval()
    torch.manual_seed(7)
    x = torch.randn(2, 14, 4, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
        y_pre, state = layer.prefill(x[:, :L0])
        ys = [y_pre]
        for t in range(L0, 14):
            y_t, state = layer.step(x[:, t], state)
            ys.append(y_t[:, None])
        # the state equals the one stepped from zero
        s, _ = layer.init_state(2), None
        for t in range(L0):
            _, s = layer.step(x[:, t], s)
        _, state_pre = layer.prefill(x[:, :L0])
    assert rel(torch.cat(ys, 1), y) < 1e-12
    for a, b in zip(state_pre, s, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def test_padding_outputs_and_state():
    layer = make(4, ngroups=2, d_conv=4).double().eval()
    torch.manual_seed(8)
    L = 21
    lengths = torch.tensor([2, L, 9, 5])
    x = torch.randn(4, L, 4, dtype=torch.float64)
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e3 * torch.randn(L - n, 4, dtype=torch.float64)
    with torch.no_grad():
        y, state = layer.prefill(garbage, lengths)
        assert torch.equal(layer(garbage, lengths), y)
        for b, n in enumerate(lengths.tolist()):
            y_b, s_b = layer.prefill(x[b:b + 1, :n])
            assert rel(y[b:b + 1, :n], y_b) < 1e-12
            assert float(y[b, n:].abs().sum()) == 0.0
            for a, c in zip(state, s_b, strict=True):
                torch.testing.assert_close(a[b:b + 1], c, rtol=1e-12, atol=1e-13)
        # the stepped continuation from the padded prefill equals the unpadded run
        nxt = torch.randn(4, 4, dtype=torch.float64)
        y_next, _ = layer.step(nxt, state)
        for b, n in enumerate(lengths.tolist()):
            full = layer(torch.cat([x[b:b + 1, :n], nxt[b:b + 1, None]], 1))
            assert rel(y_next[b:b + 1], full[:, -1]) < 1e-12


@pytest.mark.parametrize("kw", [{}, {"bias": True, "D_has_hdim": True, "ngroups": 2}])
def test_gradients_reach_every_parameter(kw):
    contract.check_gradients_reach_every_parameter(lambda d, **o: make(d, **{**kw, **o}), H=4)


def test_float64_gradcheck():
    layer = make(2, d_state=3, headdim=2, chunk_size=3).double()
    x = torch.randn(1, 7, 2, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in layer.named_parameters())

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,))
    assert torch.autograd.gradcheck(fn, (x, *params), atol=1e-6, rtol=1e-4, fast_mode=True)


def test_optimizer_hints():
    layer = make(4, lr=1e-3)
    groups = {g["name"]: g for g in param_groups(layer, lr=1e-2, weight_decay=0.1)}
    ssm = {id(p) for p in groups["ssm"]["params"]}
    assert ssm == {id(layer.A_log), id(layer.dt_bias), id(layer.D)} and groups["ssm"]["lr"] == 1e-3
    assert groups["ssm"]["weight_decay"] == 0.0
    assert {id(layer.norm.weight), id(layer.conv1d.bias)} == {id(p) for p in groups["no_decay"]["params"]}
    decay = {id(p) for p in groups["decay"]["params"]}
    assert decay == {id(layer.in_proj.weight), id(layer.out_proj.weight), id(layer.conv1d.weight)}
    for p in (layer.A_log, layer.dt_bias, layer.D):
        assert p._no_weight_decay
    plain = {g["name"]: g["lr"] for g in param_groups(make(4), lr=1e-2, ssm_lr=5e-3)}
    assert plain["ssm"] == 5e-3 and plain["decay"] == 1e-2


def test_bad_arguments():
    with pytest.raises(ValueError, match="headdim"):
        Mamba2(3)
    with pytest.raises(ValueError, match="ngroups"):
        Mamba2(4, headdim=4, ngroups=3)
    with pytest.raises(ValueError, match="A_init_range"):
        Mamba2(4, headdim=2, A_init_range=(0, 16))
    with pytest.raises(ValueError, match="dt_limit"):
        Mamba2(4, headdim=2, dt_limit=(0.5, 0.1))
    with pytest.raises(ValueError, match="dt_max"):
        Mamba2(4, headdim=2, dt_min=0.1, dt_max=0.01)
    layer = make(4)
    with pytest.raises(TypeError, match="state"):
        layer.step(torch.randn(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="state shapes"):
        layer.step(torch.randn(3, 4), layer.init_state(2))


def test_batch_slabs_equal_one_pass():
    """On CPU the batch runs in slabs (``SLAB_ELEMENTS``): outputs, prefill states (with padding) and gradients are
    those of one pass over the whole batch."""
    torch.manual_seed(9)
    x = torch.randn(3, 13, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([13, 4, 9])
    res = []
    for per_slab in (3, 2, 1):  # 3: one pass; 2: slabs of 2 and 1; 1: one element per slab
        layer = make(4, ngroups=2).double()
        layer.SLAB_ELEMENTS = per_slab * 13 * layer.in_proj.out_features
        assert layer._slab(x) == per_slab
        y, state = layer.prefill(x, lengths)
        yf = layer(x)
        grads = torch.autograd.grad((yf * torch.cos(yf)).sum(), [x, *layer.parameters()])
        res.append((y, state, yf, grads))
    for y, state, yf, grads in res[1:]:
        torch.testing.assert_close(y, res[0][0], rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(yf, res[0][2], rtol=1e-13, atol=1e-13)
        for a, b in zip((*state, *grads), (*res[0][1], *res[0][3]), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _contract_factory(d_model, **kw):
    return Mamba2(d_model, **{"d_state": 8, "headdim": 2, "chunk_size": 8, "dt_min": 1e-2, **kw})


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.check_id)
def test_contract(check):
    check(_contract_factory)
