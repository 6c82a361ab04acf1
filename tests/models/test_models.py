"""SequenceModel, heads and the model factory, on the real SSM layers."""

import dataclasses

import pytest
import torch

from ptdssm.config import ModelConfig, find_config, load_config
from ptdssm.data import TaskInfo, task_info
from ptdssm.layers import get_family
from ptdssm.models import RetrievalHead, SequenceModel, build_model, pool_sequence
from ptdssm.models.sequence import ACTIVATIONS

CONT = TaskInfo("toy", n_classes=3, seq_len=16, d_input=2)
TOK = TaskInfo("toy-tok", n_classes=4, seq_len=16, vocab_size=11)
PAIR = TaskInfo("toy-pair", n_classes=2, seq_len=16, vocab_size=11, is_pair=True)


def _tiny(name="s4d", layer=None, **kw):
    opts = {"d_state": 8, **({"blocks": 2} if name.startswith("s5") else {}), **(layer or {})}
    return ModelConfig(**{"name": name, "n_layers": 2, "d_model": 8, "layer": opts, **kw})


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("norm", "prenorm"), [("batch", True), ("layer", False), ("none", True)])
def test_block_layouts_shapes_and_grads(activation, norm, prenorm):
    torch.manual_seed(0)
    m = build_model(_tiny(activation=activation, norm=norm, prenorm=prenorm, dropout=0.1), CONT)
    x = torch.randn(3, 16, 2)
    out = m(x)
    assert out.shape == (3, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_pooling():
    h = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    lengths = torch.tensor([2, 4])
    assert pool_sequence(h, lengths, "mean")[:, 0].tolist() == [0.5, 5.5]
    assert pool_sequence(h, lengths, "last")[:, 0].tolist() == [1.0, 7.0]
    assert pool_sequence(h, None, "mean")[:, 0].tolist() == [1.5, 5.5]
    assert pool_sequence(h, None, "last")[:, 0].tolist() == [3.0, 7.0]
    with pytest.raises(ValueError, match="pooling"):
        pool_sequence(h, None, "max")


@pytest.mark.parametrize("name", ["s4d", "s4-ptd", "s5", "s5-ptd", "s4"])
@pytest.mark.parametrize("pool", ["mean", "last"])
def test_padding_does_not_change_outputs(name, pool):
    torch.manual_seed(0)
    m = build_model(_tiny(name, {"bidirectional": True}, pool=pool), TOK).eval()
    a = torch.randint(1, 11, (1, 9))
    b = torch.randint(1, 11, (1, 16))
    alone = m(a)
    padded = torch.cat([a, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    both = m(torch.cat([padded, b]), lengths=torch.tensor([9, 16]))
    torch.testing.assert_close(both[0], alone[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both[1], m(b)[0], atol=1e-5, rtol=1e-4)


def test_retrieval_head_and_pairs():
    head = RetrievalHead(4, 2, d_hidden=6)
    u, v = torch.randn(3, 4), torch.randn(3, 4)
    f = head.features(u, v)
    assert f.shape == (3, 16)
    torch.testing.assert_close(f[:, 8:12], u - v)
    torch.testing.assert_close(f[:, 12:], u * v)
    assert head(u, v).shape == (3, 2)
    torch.manual_seed(0)
    m = build_model(_tiny(), PAIR).eval()
    x1, x2 = torch.randint(1, 11, (2, 10)), torch.randint(1, 11, (2, 16))
    out = m(x1, x2=x2, lengths2=torch.tensor([16, 12]))
    assert out.shape == (2, 2)
    # each document is encoded on its own: document 1 padded to 16 gives the same logits
    out2 = m(torch.cat([x1, torch.zeros(2, 6, dtype=torch.long)], 1), torch.tensor([10, 10]), x2,
             torch.tensor([16, 12]))
    torch.testing.assert_close(out, out2, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="x2"):
        m(x1)


def test_input_checks_and_factory_errors():
    m = build_model(_tiny(), CONT)
    with pytest.raises(ValueError, match="continuous inputs"):
        m(torch.randn(2, 16, 3))
    with pytest.raises(ValueError, match="token inputs"):
        build_model(_tiny(), TOK)(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"model\.layer\.blocks"):
        build_model(_tiny("s4d", {"blocks": 2}), CONT)
    with pytest.raises(ValueError, match=r"model\.encoder"):
        build_model(_tiny(encoder="linear"), TOK)
    with pytest.raises(ValueError, match="exactly one"):
        SequenceModel([torch.nn.Identity()], 4, 2)


LRA = [(t, m) for t in ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
       for m in ("s4-ptd", "s5-ptd", "s4", "s4d", "s5", "lru")]


@pytest.mark.parametrize(("task", "model"), LRA)
def test_lra_configs_build_at_tiny_width(task, model):
    cfg = load_config(find_config(task, model))
    mc = cfg.model
    full = mc.layer_options(defaults=True)
    J = full.get("blocks") or 1
    # S5: keep the recipe's J and its block size (capped at 4), so block-structure edge cases stay covered
    d_state = J * min(full["d_state"] // J, 4) if mc.name.startswith("s5") else 8
    tiny = dataclasses.replace(mc, n_layers=1, d_model=8, layer={**mc.layer, "d_state": d_state})
    info = task_info(cfg.data)
    torch.manual_seed(0)
    m = build_model(tiny, info)
    x = torch.randint(1, info.vocab_size, (2, 12)) if info.vocab_size else torch.randn(2, 12, info.d_input)
    out = m(x, x2=x.clone()) if info.is_pair else m(x)
    assert out.shape == (2, info.n_classes) and torch.isfinite(out).all()
    # the full-size model's layer options are the recipe's, plus the family's init
    fam = get_family(mc.name)
    assert mc.layer_options() == {**({"init": fam.init} if fam.init else {}), **mc.layer}
    assert isinstance(m.blocks[0].mixer, fam.layer)


def test_no_residual_variant():
    torch.manual_seed(0)
    m = build_model(_tiny(residual=False, norm="layer", activation="gelu"), CONT)
    block = m.blocks[0]
    x = torch.randn(2, 16, 8)
    torch.testing.assert_close(block(x), block.mix(block.ssm(block.norm(x))))
