"""Heads picked from TaskInfo.head: shapes, the last-K gather under padding, per-position outputs, the tied LM head."""

import math

import pytest
import torch

from ptdssm.config import ModelConfig
from ptdssm.data import TaskInfo
from ptdssm.errors import ConfigError
from ptdssm.models import LastKHead, LMHead, TokenHead, build_model, gather_last_k

V = 11


def _cfg(**kw):
    return ModelConfig(**{"name": "s4d", "n_layers": 2, "d_model": 8, "layer": {"d_state": 8}, "norm": "layer",
                          **kw})


INFOS = {
    "pooled-ce": (TaskInfo("t", n_classes=3, seq_len=12, vocab_size=V), (3,)),
    "pooled-mse": (TaskInfo("t", n_classes=2, seq_len=12, d_input=2, loss="mse"), (2,)),
    "last-k": (TaskInfo("t", n_classes=5, seq_len=12, vocab_size=V, head="last-k", target_len=4), (4, 5)),
    "token-ce": (TaskInfo("t", n_classes=6, seq_len=12, vocab_size=V, head="token"), (12, 6)),
    "token-mse": (TaskInfo("t", n_classes=3, seq_len=12, d_input=2, head="token", loss="mse"), (12, 3)),
    "lm": (TaskInfo("t", n_classes=V, seq_len=12, vocab_size=V, head="lm"), (12, V)),
}


def _inputs(info, B=3, L=12):
    return torch.randint(1, V, (B, L)) if info.vocab_size else torch.randn(B, L, info.d_input)


@pytest.mark.parametrize("kind", list(INFOS))
def test_output_shapes_and_gradients(kind):
    info, shape = INFOS[kind]
    torch.manual_seed(0)
    m = build_model(_cfg(), info)
    out = m(_inputs(info))
    if kind == "lm":  # the padding id is never a target: logit -inf (test_lm_head_never_scores_the_padding_id)
        out = out[..., 1:]
    assert out.shape[:2] == (3, shape[0]) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_gather_last_k_matches_an_index_loop():
    torch.manual_seed(0)
    h = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 5, 3, 7])
    out = gather_last_k(h, lengths, 3)
    for b in range(4):
        for j in range(3):
            assert torch.equal(out[b, j], h[b, int(lengths[b]) - 3 + j])
    assert torch.equal(gather_last_k(h, None, 2), h[:, 7:])
    with pytest.raises(ValueError, match="k=4"):
        gather_last_k(h, lengths, 4)
    with pytest.raises(ValueError, match="k=10"):
        gather_last_k(h, None, 10)
    for dtype in (torch.int32, torch.int16, torch.uint8):  # gather takes int64 indices only: cast inside
        assert torch.equal(gather_last_k(h, lengths.to(dtype), 3), out)


def test_last_k_model_reads_the_last_real_positions_under_padding():
    info, _ = INFOS["last-k"]
    torch.manual_seed(0)
    m = build_model(_cfg(), info).eval()
    a, b = torch.randint(1, V, (1, 7)), torch.randint(1, V, (1, 12))
    batch = torch.cat([torch.cat([a, torch.zeros(1, 5, dtype=torch.long)], 1), b])
    out = m(batch, lengths=torch.tensor([7, 12]))
    torch.testing.assert_close(out[0], m(a)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1], m(b)[0], atol=1e-5, rtol=1e-4)
    # the head is the linear map of the backbone features at those positions
    h = m.features(batch, torch.tensor([7, 12]))
    ref = torch.stack([h[0, 3:7], h[1, 8:12]]) @ m.decoder.linear.weight.T + m.decoder.linear.bias
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("kind", ["token-ce", "lm", "token-mse"])
def test_per_position_outputs_ignore_padding(kind):
    info, _ = INFOS[kind]
    torch.manual_seed(0)
    m = build_model(_cfg(), info).eval()
    a, b = _inputs(info, 1, 8), _inputs(info, 1, 12)
    a_pad = torch.cat([a, torch.zeros_like(a[:, :4])], 1)
    out = m(torch.cat([a_pad, b]), lengths=torch.tensor([8, 12]))
    torch.testing.assert_close(out[0, :8], m(a)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1], m(b)[0], atol=1e-5, rtol=1e-4)


def test_token_head_is_one_linear_map_per_position():
    torch.manual_seed(0)
    head = TokenHead(4, 3)
    h = torch.randn(2, 5, 4)
    ref = torch.einsum("blh,ch->blc", h, head.linear.weight) + head.linear.bias
    torch.testing.assert_close(head(h), ref)
    k = LastKHead(4, 3, 2)
    torch.testing.assert_close(k(h), k.linear(h[:, 3:]))


def test_lm_head_is_tied_to_the_embedding():
    info, _ = INFOS["lm"]
    torch.manual_seed(0)
    m = build_model(_cfg(), info)
    assert isinstance(m.decoder, LMHead)
    assert m.decoder.weight is m.encoder.weight
    assert m.decoder.weight.data_ptr() == m.encoder.weight.data_ptr()
    # counted once by the optimizer: no parameter of its own
    assert sum(1 for p in m.parameters() if p is m.encoder.weight) == 1
    h = torch.randn(2, 5, 8)
    torch.testing.assert_close(m.decoder(h)[..., 1:], (h @ m.encoder.weight.T)[..., 1:])
    with torch.no_grad():  # an update of the embedding is an update of the head
        m.encoder.weight[3].add_(1.0)
    torch.testing.assert_close(m.decoder(h)[..., 1:], (h @ m.encoder.weight.T)[..., 1:])


def test_lm_head_never_scores_the_padding_id():
    """The padding id 0 is never a target: its logit is -inf, so the tied padding row (zero, held fixed by the
    embedding) gets no gradient through the head, and training with cross-entropy leaves it zero."""
    info, _ = INFOS["lm"]
    torch.manual_seed(0)
    m = build_model(_cfg(), info)
    x = torch.randint(0, V, (3, 12))
    x[:, -3:] = 0  # padding in the inputs too
    out = m(x, lengths=torch.tensor([9, 9, 9]))
    assert bool((out[..., 0] == float("-inf")).all()) and torch.isfinite(out[..., 1:]).all()
    y = torch.randint(1, V, (3, 12))
    y[:, 9:] = -100
    torch.nn.functional.cross_entropy(out.reshape(-1, V), y.reshape(-1), ignore_index=-100).backward()
    grad = m.encoder.weight.grad
    assert float(grad[0].abs().sum()) == 0.0 and float(grad[1:].abs().sum()) > 0
    assert float(m.encoder.weight[0].detach().abs().sum()) == 0.0
    probs = out.softmax(-1)
    assert float(probs[..., 0].abs().max()) == 0.0 and torch.allclose(probs.sum(-1), torch.ones(3, 12))


def test_head_errors():
    cont_lm = TaskInfo("t", n_classes=3, seq_len=8, d_input=2)
    object.__setattr__(cont_lm, "head", "lm")  # bypass TaskInfo's own check: the factory checks too
    with pytest.raises(ConfigError, match="lm.*vocab_size"):
        build_model(_cfg(), cont_lm)
    from ptdssm.models import SequenceModel

    with pytest.raises(ValueError, match="vocab_size"):
        SequenceModel([torch.nn.Identity()], 4, 3, d_input=2, head="lm")
    with pytest.raises(ValueError, match="target_len"):
        SequenceModel([torch.nn.Identity()], 4, 3, d_input=2, head="last-k")
    with pytest.raises(ValueError, match="pair"):
        SequenceModel([torch.nn.Identity()], 4, 3, vocab_size=5, head="token", is_pair=True)
    with pytest.raises(ValueError, match="unknown head"):
        SequenceModel([torch.nn.Identity()], 4, 3, d_input=2, head="span")


def test_lm_embedding_init_gives_a_first_loss_near_ln_v():
    """The tied embedding starts at N(0, 0.02^2) (padding row zero), so the untrained model's logits are small and
    its cross-entropy on random tokens is about ln(V) (PyTorch's N(0, 1) default gave ~100 nats at H = 128)."""
    from ptdssm.data import TaskInfo

    vocab, width = 258, 128
    info = TaskInfo("t", n_classes=vocab, seq_len=64, vocab_size=vocab, head="lm")
    torch.manual_seed(0)
    m = build_model(_cfg(d_model=width, norm="rms"), info)
    w = m.encoder.weight.detach()
    assert float(w[0].abs().sum()) == 0.0
    assert abs(float(w[1:].std()) - 0.02) < 0.002
    x = torch.randint(1, vocab, (4, 64))
    with torch.no_grad():
        logits = m(x)[:, :-1, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab - 1), x[:, 1:].reshape(-1) - 1)
    assert abs(float(loss) - math.log(vocab - 1)) < 0.1 * math.log(vocab - 1)
