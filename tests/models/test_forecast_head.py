"""The generic forecast path of SequenceModel: lookback + zero future steps with an indicator channel, the last-K
head; every registered family forecasts through it (shapes and gradients); RMSE in the objective."""

from __future__ import annotations

import math

import pytest
import torch

from ptdssm.config import ModelConfig
from ptdssm.data import TaskInfo
from ptdssm.experiments.objective import Objective
from ptdssm.layers.registry import family_names, layer_kwargs_schema
from ptdssm.models import build_model
from ptdssm.models.heads import append_future

torch.set_num_threads(min(2, torch.get_num_threads()))

INFO = TaskInfo("f", n_classes=2, seq_len=16, d_input=3, target_len=5, head="forecast", loss="mse")


def _cfg(name: str) -> ModelConfig:
    schema = layer_kwargs_schema(name)
    small = {k: v for k, v in (("d_state", 8), ("dt_min", 1e-2), ("headdim", 2)) if k in schema}
    return ModelConfig(name=name, n_layers=2, d_model=8, norm="layer", layer=small)


def test_append_future_layout():
    x = torch.randn(2, 4, 3)
    out = append_future(x, 2)
    assert out.shape == (2, 6, 4)
    assert torch.equal(out[:, :4, :3], x) and torch.equal(out[:, 4:, :3], torch.zeros(2, 2, 3))
    assert out[:, :, 3].tolist() == [[0, 0, 0, 0, 1, 1]] * 2


@pytest.mark.parametrize("name", family_names())
def test_every_family_forecasts(name):
    """Whatever ``build_model`` makes for a forecasting task (the generic path, or a family's own forecaster such as
    SpaceTime's closed loop) maps ``(B, L, C_in)`` to ``(B, K, C_out)`` with finite outputs and gradients."""
    torch.manual_seed(0)
    m = build_model(_cfg(name), INFO)
    x = torch.randn(3, 16, 3)
    out = m(x)
    assert out.shape == (3, 5, 2) and torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_forecast_reads_the_future_positions():
    """The head sees positions L .. L+K-1 of the extended sequence: with a causal single layer, the first future
    output depends on the lookback but the lookback cannot see the (zero) future."""
    torch.manual_seed(0)
    cfg = ModelConfig(name="s4d", n_layers=1, d_model=8, norm="layer", layer={"d_state": 8, "bidirectional": False})
    m = build_model(cfg, INFO).eval()
    x = torch.randn(1, 16, 3)
    y = m(x)
    x2 = x.clone()
    x2[0, 0] += 1.0  # the oldest lookback step moves every horizon output of a causal convolution
    assert not torch.allclose(m(x2), y)
    assert m.encoder.in_features == 4  # d_input + the future indicator


def test_forecast_model_refuses_tokens_padding_and_streaming():
    with pytest.raises(ValueError, match="target_len"):
        TaskInfo("f", n_classes=1, seq_len=8, d_input=1, head="forecast", loss="mse")
    with pytest.raises(ValueError, match="forecast' needs continuous inputs"):
        TaskInfo("f", n_classes=1, seq_len=8, vocab_size=5, head="forecast", loss="mse", target_len=2)
    m = build_model(_cfg("s4d"), INFO)
    with pytest.raises(ValueError, match="padded"):
        m(torch.randn(2, 16, 3), torch.tensor([16, 10]))
    with pytest.raises(ValueError, match="does not stream"):
        m.init_state(2)


def test_objective_reports_rmse_for_forecasts():
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(4, 5, 2, generator=g), torch.randn(4, 5, 2, generator=g)
    obj = Objective(INFO)
    assert obj.metric_names == ("mse", "mae", "rmse")
    m = obj.summarize(obj.stats(out, y) + obj.stats(out[:2], y[:2]))
    d = torch.cat([out - y, out[:2] - y[:2]]).double()
    assert m["mse"] == pytest.approx(float(d.square().mean()), rel=1e-9)
    assert m["mae"] == pytest.approx(float(d.abs().mean()), rel=1e-9)
    assert m["rmse"] == pytest.approx(math.sqrt(float(d.square().mean())), rel=1e-9)
    assert obj.score(m) == (-m["loss"],)  # the best checkpoint: the lowest validation MSE
