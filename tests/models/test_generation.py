"""Streaming (init_state / step / prefill) of SequenceModel, RMSNorm blocks, and generate()."""

import pytest
import torch

from ptdssm.config import config_from_dict
from ptdssm.data import TaskInfo
from ptdssm.layers.registry import build_layer, get_family
from ptdssm.models import RMSNorm, SequenceModel, build_model, generate, sample_next

V = 11
OPTS = {"s4d": {"d_state": 8}, "s5": {"d_state": 8, "blocks": 2}, "mamba": {"d_state": 4},
        "mamba2": {"d_state": 4, "headdim": 8, "chunk_size": 4}, "h3": {"d_state": 4, "n_heads": 2},
        "hyena": {"l_max": 32, "filter_order": 8}}
NORM = {"s4d": "layer", "s5": "batch", "mamba": "rms", "mamba2": "rms", "h3": "layer", "hyena": "layer"}


def _model(name, head="lm", norm=None, n_layers=2, d_model=16, layer=None, seed=0, **kw):
    torch.manual_seed(seed)
    layers = [build_layer(name, d_model, {**OPTS[name], **(layer or {})}) for _ in range(n_layers)]
    if "d_input" not in kw:
        kw["vocab_size"] = V
    return SequenceModel(layers, d_model, 5, norm=norm or NORM[name], block=get_family(name).block, head=head,
                         **kw).double().eval()


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def _finite(t):  # the lm head's padding logit is -inf everywhere: compare the rest
    return t.masked_fill(torch.isinf(t), 0.0)


@pytest.mark.parametrize("head", ["lm", "token"])
@pytest.mark.parametrize("name", list(OPTS))
def test_step_equals_forward_and_prefill_then_step(name, head):
    m = _model(name, head)
    x = torch.randint(1, V, (3, 11))
    full = _finite(m(x))
    state = m.init_state(3)
    outs = []
    for t in range(11):
        y, state = m.step(x[:, t], state)
        outs.append(y)
    _close(_finite(torch.stack(outs, 1)), full)
    y, state = m.prefill(x[:, :6])
    _close(_finite(y), full[:, :6])
    for t in range(6, 11):
        y, state = m.step(x[:, t], state)
        _close(_finite(y), full[:, t])


@pytest.mark.parametrize("name", ["s4d", "mamba", "mamba2", "h3", "hyena"])
def test_prefill_with_lengths_continues_each_sequence(name):
    m = _model(name)
    x = torch.randint(1, V, (2, 9))
    lengths = torch.tensor([5, 9])
    padded = x.clone()
    padded[0, 5:] = 0
    _, state = m.prefill(padded, lengths)
    nxt = torch.randint(1, V, (2,))
    y, _ = m.step(nxt, state)
    _close(_finite(y[0]), _finite(m(torch.cat([x[:1, :5], nxt[:1, None]], 1))[0, -1]))
    _close(_finite(y[1]), _finite(m(torch.cat([x[1:], nxt[1:, None]], 1))[0, -1]))


def test_continuous_inputs_and_last_pooling_stream():
    m = _model("mamba", head="pooled", d_input=3, pool="last")
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    state = m.init_state(2)
    for t in range(7):
        y, state = m.step(x[:, t], state)
        _close(y, m(x[:, :t + 1]))
    k = _model("s4d", head="last-k", d_input=3, target_len=2)
    y, _ = k.prefill(x)
    _close(y[:, -2:], k(x))


def test_state_size_does_not_grow_with_the_context():
    m = _model("mamba")
    short = m.prefill(torch.randint(1, V, (1, 4)))[1]
    long = m.prefill(torch.randint(1, V, (1, 64)))[1]
    shapes = [[tuple(t.shape) for t in s] for s in short]
    assert shapes == [[tuple(t.shape) for t in s] for s in long]


def test_streaming_refusals():
    for name in ("s4d", "mamba"):
        with pytest.raises(ValueError, match="bidirectional"):
            _model(name, layer={"bidirectional": True}).init_state(1)
        with pytest.raises(ValueError, match="bidirectional"):
            _model(name, layer={"bidirectional": True}).prefill(torch.ones(1, 3, dtype=torch.long))
    bn = _model("s4d", norm="batch").train()
    with pytest.raises(ValueError, match="BatchNorm in training mode"):
        bn.init_state(1)
    bn.eval().init_state(1)  # eval: running statistics, position-wise
    with pytest.raises(ValueError, match="mean-pooled"):
        _model("s4d", head="pooled").init_state(1)
    m = _model("s4d")
    with pytest.raises(ValueError, match="list of 2 block states"):
        m.step(torch.ones(1, dtype=torch.long), [None])
    with pytest.raises(ValueError, match=r"ids of shape \(B,\)"):
        m.step(torch.ones(1, 1, dtype=torch.long), m.init_state(1))


def test_rms_norm_blocks():
    norm = RMSNorm(4).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    _close(norm(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
    cfg = config_from_dict({"model": {"name": "mamba", "n_layers": 1, "d_model": 8, "norm": "rms",
                                      "layer": {"d_state": 4}}}).model
    m = build_model(cfg, TaskInfo("toy-lm", n_classes=V, seq_len=8, vocab_size=V, head="lm"))
    assert isinstance(m.blocks[0].norm.norm, RMSNorm) and "blocks.0.norm.norm.weight" in m.state_dict()
    assert isinstance(m.final_norm.norm, RMSNorm)
    with pytest.raises(ValueError, match="model.norm"):
        config_from_dict({"model": {"norm": "group"}})


def _greedy_by_forward(m, prompt, n):
    seq = prompt.clone()
    for _ in range(n):
        nxt = m(seq)[:, -1].argmax(-1)
        seq = torch.cat([seq, nxt[:, None]], 1)
    return seq


@pytest.mark.parametrize("name", ["s4d", "mamba", "h3", "hyena"])
def test_greedy_generation_equals_full_forward_argmax(name):
    m = _model(name)
    prompt = torch.randint(1, V, (2, 5))
    out = generate(m, prompt, 12, temperature=0)
    assert out.shape == (2, 17) and out.dtype == torch.int64 and bool((out[:, 5:] > 0).all())
    assert torch.equal(out, _greedy_by_forward(m, prompt, 12))
    assert torch.equal(generate(m, prompt, 12, top_k=1, generator=torch.Generator().manual_seed(3)), out)


def test_sampling_is_seeded_and_lengths_continue_each_prompt():
    m = _model("mamba").train()
    prompt = torch.randint(1, V, (3, 4))
    a = generate(m, prompt, 20, temperature=1.5, top_k=5, generator=torch.Generator().manual_seed(7))
    b = generate(m, prompt, 20, temperature=1.5, top_k=5, generator=torch.Generator().manual_seed(7))
    c = generate(m, prompt, 20, temperature=1.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c) and bool((a[:, 4:] > 0).all())
    assert m.training  # mode restored
    assert torch.equal(generate(m, prompt, 0), prompt)
    padded = prompt.clone()
    padded[0, 2:] = 0
    out = generate(m, padded, 6, temperature=0, lengths=torch.tensor([2, 4, 4]))
    assert torch.equal(out[0, :8], generate(m, prompt[:1, :2], 6, temperature=0)[0])
    assert out[0, 8:].tolist() == [0, 0]
    assert torch.equal(out[1:], generate(m, prompt[1:], 6, temperature=0))


def test_sample_next_never_draws_padding_and_top_k():
    logits = torch.tensor([[10.0, 1.0, 0.5, 0.0, -1.0]]).repeat(200, 1)
    g = torch.Generator().manual_seed(0)
    draws = sample_next(logits, temperature=1.0, generator=g)
    assert bool((draws > 0).all()) and set(draws.tolist()) > {1}
    assert set(sample_next(logits, top_k=2, generator=g).tolist()) <= {1, 2}
    assert sample_next(logits, temperature=0).tolist() == [1] * 200


def test_generate_argument_errors():
    m = _model("s4d")
    p = torch.randint(1, V, (1, 3))
    with pytest.raises(ValueError, match="head 'lm'"):
        generate(_model("s4d", head="token"), p, 2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(m, p, -1)
    with pytest.raises(ValueError, match="temperature"):
        generate(m, p, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        generate(m, p, 2, top_k=0)
    with pytest.raises(ValueError, match="vocabulary"):
        generate(m, p + V, 2)
    with pytest.raises(TypeError, match="int64"):
        generate(m, p.double(), 2)
