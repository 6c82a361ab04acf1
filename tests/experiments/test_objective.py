"""Objective: losses and metrics against independent computations; best-checkpoint ordering (ties by val loss)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ptdssm.experiments.objective import IGNORE_INDEX, Objective


def _info(head="pooled", loss="cross-entropy"):
    return SimpleNamespace(head=head, loss=loss)


def _np_cross_entropy(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row -log softmax(logits)[target] in float64."""
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -logp[np.arange(len(target)), target]


@pytest.mark.parametrize("head", ["pooled", "last-k", "token", "lm"])
def test_cross_entropy_over_scored_positions(head):
    g = torch.Generator().manual_seed(0)
    B, L, C = 5, 7, 6
    if head == "pooled":
        out, y = torch.randn(B, C, generator=g), torch.randint(0, C, (B,), generator=g)
    else:
        out, y = torch.randn(B, L, C, generator=g), torch.randint(0, C, (B, L), generator=g)
        if head != "last-k":
            y[torch.rand(B, L, generator=g) < 0.6] = IGNORE_INDEX
    obj = Objective(_info(head))
    valid = (y != IGNORE_INDEX).reshape(-1)
    flat_out, flat_y = out.reshape(-1, C)[valid], y.reshape(-1)[valid]
    # torch reference on the valid rows only (no ignore_index involved) and a float64 numpy one
    torch.testing.assert_close(obj.loss(out, y), F.cross_entropy(flat_out, flat_y))
    ce = _np_cross_entropy(flat_out.double().numpy(), flat_y.numpy())
    correct = (flat_out.numpy().argmax(-1) == flat_y.numpy()).sum()
    s = obj.stats(out, y)
    assert s.dtype == torch.float64
    np.testing.assert_allclose(s.numpy(), [ce.sum(), correct, 0.0, valid.sum()], rtol=1e-6)
    m = obj.summarize(s + obj.stats(out, y))  # sums add across batches
    assert m.keys() == ({"loss", "acc", "bpb", "n"} if head == "lm" else {"loss", "acc", "n"})
    assert m["n"] == 2 * int(valid.sum())
    assert m["loss"] == pytest.approx(ce.mean(), rel=1e-6) and m["acc"] == pytest.approx(correct / valid.sum())


def test_bits_per_byte_of_an_lm_head():
    """bpb = mean over scored positions of -log2 p(target), against a float64 numpy computation in base 2."""
    g = torch.Generator().manual_seed(3)
    B, L, V = 3, 11, 257
    out = torch.randn(B, L, V, generator=g) * 3
    y = torch.randint(1, V, (B, L), generator=g)
    y[0, 7:] = IGNORE_INDEX  # a padded tail, as the last window of a text split
    y[2, 0] = IGNORE_INDEX
    obj = Objective(_info("lm"))
    assert obj.metric_names == ("acc", "bpb")
    half = B // 2 + 1
    m = obj.summarize(obj.stats(out[:half], y[:half]) + obj.stats(out[half:], y[half:]))  # sums add over batches
    logits, target = out.reshape(-1, V).double().numpy(), y.reshape(-1).numpy()
    keep = target != IGNORE_INDEX
    z = logits[keep] - logits[keep].max(-1, keepdims=True)
    log2p = (z - np.log(np.exp(z).sum(-1, keepdims=True))) / np.log(2.0)
    bits = -log2p[np.arange(keep.sum()), target[keep]]
    assert m["n"] == int(keep.sum()) == B * L - 5
    assert m["bpb"] == pytest.approx(bits.mean(), rel=1e-6)
    assert m["bpb"] == pytest.approx(m["loss"] / math.log(2), rel=1e-12)
    # uniform predictions over 256 bytes cost exactly 8 bits per byte; other heads report no bpb
    flat = torch.zeros(1, 4, V)
    flat[..., 0] = -1e9  # never the padding id
    assert obj.summarize(obj.stats(flat, torch.tensor([[1, 2, 3, 256]])))["bpb"] == pytest.approx(8.0, rel=1e-6)
    assert "bpb" not in Objective(_info("token")).summarize(obj.stats(out, y))
    assert "bpb" not in Objective(_info("token")).metric_names
    assert math.isnan(obj.summarize(torch.zeros(4, dtype=torch.float64))["bpb"])


def test_cross_entropy_pooled_matches_the_plain_loss_bitwise():
    """Pooled classification computes exactly what training computed before heads existed."""
    out, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.equal(Objective().loss(out, y), F.cross_entropy(out, y))


def test_batch_without_scored_positions_contributes_nothing():
    out = torch.randn(2, 4, 3, requires_grad=True)
    y = torch.full((2, 4), IGNORE_INDEX)
    obj = Objective(_info("token"))
    loss = obj.loss(out, y)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert out.grad is not None and float(out.grad.abs().sum()) == 0.0
    assert obj.stats(out, y).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert all(math.isnan(v) for k, v in obj.summarize(obj.stats(out, y)).items() if k != "n")


@pytest.mark.parametrize("head", ["pooled", "token"])
def test_mse_ignores_nan_targets(head):
    rng = np.random.default_rng(1)
    shape = (4, 3) if head == "pooled" else (4, 9, 2)
    out = rng.normal(size=shape)
    y = rng.normal(size=shape)
    y[rng.random(shape) < 0.4] = np.nan
    obj = Objective(_info(head, "mse"))
    t_out, t_y = torch.tensor(out, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    mask = ~np.isnan(y)
    err = out.astype(np.float32).astype(np.float64)[mask] - y.astype(np.float32).astype(np.float64)[mask]
    assert float(obj.loss(t_out, t_y)) == pytest.approx(np.mean(err**2), rel=1e-5)
    m = obj.summarize(obj.stats(t_out, t_y))
    assert m.keys() == {"loss", "mse", "mae", "n"} and m["n"] == mask.sum()
    assert m["mse"] == pytest.approx(np.mean(err**2), rel=1e-6) and m["loss"] == m["mse"]
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-6)
    assert obj.metric_names == ("mse", "mae")


def test_score_breaks_accuracy_ties_by_validation_loss():
    obj = Objective()
    a = {"acc": 0.75, "loss": 0.60}
    b = {"acc": 0.75, "loss": 0.55}  # same accuracy, lower loss: better
    c = {"acc": 0.80, "loss": 0.90}  # higher accuracy wins regardless of loss
    assert obj.score(b) > obj.score(a) and obj.score(c) > obj.score(b)
    assert obj.is_better(a, None)
    assert obj.is_better(b, obj.score(a)) and not obj.is_better(a, obj.score(b))
    assert not obj.is_better(dict(a), list(obj.score(a)))  # an exact tie keeps the earlier checkpoint
    assert obj.is_better(c, obj.score(b))
    assert not obj.is_better({"acc": float("nan"), "loss": float("nan")}, obj.score(a))


def test_regression_score_is_lower_loss():
    obj = Objective(_info("pooled", "mse"))
    assert obj.is_better({"loss": 0.1}, obj.score({"loss": 0.2}))
    assert not obj.is_better({"loss": 0.3}, obj.score({"loss": 0.2}))


def test_language_model_score_is_lower_loss_not_accuracy():
    """An LM's best checkpoint is the one with the lowest held-out loss (bits per byte), even at lower accuracy."""
    obj = Objective(_info("lm"))
    lower_loss = {"acc": 0.40, "loss": 1.70, "bpb": 1.70 / math.log(2)}
    higher_acc = {"acc": 0.45, "loss": 1.90, "bpb": 1.90 / math.log(2)}
    assert obj.is_better(lower_loss, obj.score(higher_acc))
    assert not obj.is_better(higher_acc, obj.score(lower_loss))
    # a token-classification task keeps ranking by accuracy first
    tok = Objective(_info("token"))
    assert tok.is_better(higher_acc, tok.score(lower_loss))


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="TaskInfo.loss"):
        Objective(_info("pooled", "hinge"))


@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_empty_or_nan_validation_is_never_better_not_even_than_no_best(loss):
    """An empty validation split (n == 0, NaN means) or NaN metrics must not become the best checkpoint."""
    obj = Objective(_info("pooled", loss))
    empty = obj.summarize(torch.zeros(4, dtype=torch.float64))
    assert empty["n"] == 0
    nan = float("nan")
    nan_loss = {"loss": nan, "n": 8, **({"mse": nan, "mae": nan} if loss == "mse" else {"acc": 0.5})}
    for metrics in (empty, nan_loss):
        assert not obj.is_better(metrics, None)
    good = {"loss": 0.5, "n": 8, **({"mse": 0.5, "mae": 0.4} if loss == "mse" else {"acc": 0.5})}
    assert obj.is_better(good, None)
