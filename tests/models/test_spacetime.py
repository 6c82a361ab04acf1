"""SpaceTime forecaster: the closed-loop decoder against an explicit (A + b k^T) loop in NumPy, its teacher-forced
lag signals against the recurrence, the auxiliary loss, centering, and the factory branch for forecasting tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.config import ModelConfig
from ptdssm.data.base import TaskInfo
from ptdssm.errors import ConfigError
from ptdssm.kernels.companion import companion_matrix
from ptdssm.layers.spacetime_closed_loop import ClosedLoopCompanion, ForecasterOptions
from ptdssm.models import build_model
from ptdssm.models.spacetime import SpaceTimeForecaster

torch.set_num_threads(min(2, torch.get_num_threads()))
f64 = torch.float64


def _decoder(H: int = 3, d: int = 5, **kw) -> ClosedLoopCompanion:
    torch.manual_seed(0)
    return ClosedLoopCompanion(H, d, **kw).double()


@pytest.mark.parametrize("kw", [{}, {"n_heads": 3}, {"norm_order": 0}])
def test_closed_loop_equals_explicit_loop(kw):
    """Encode by stepping x <- A x + b u over the window, then x <- (A + b k^T) x with y = c^T x: NumPy loop."""
    dec = _decoder(**kw)
    if kw.get("norm_order") == 0:  # unnormalized: keep the loop from blowing up over the horizon
        with torch.no_grad():
            for p in (dec.a, dec.b, dec.c, dec.k):
                p.mul_(0.2)
    u = torch.randn(2, 11, 3, dtype=f64)
    T = 9
    y, uh = dec(u, T)
    a, b, c, k = (t.detach().numpy() for t in dec.system(f64))
    idx = dec.kernel_index.numpy()
    for bb in range(2):
        for h in range(3):
            i = idx[h]
            A = companion_matrix(torch.from_numpy(a[i])).numpy()
            x = np.zeros(5)
            for t in range(11):
                x = A @ x + b[i] * u[bb, t, h].item()
            for s in range(T):
                np.testing.assert_allclose(y[bb, s, h].item(), c[i] @ x, rtol=1e-9, atol=1e-11)
                np.testing.assert_allclose(uh[bb, s, h].item(), k[i] @ x, rtol=1e-9, atol=1e-11)
                x = (A + np.outer(b[i], k[i])) @ x


def test_lag_signals_equal_the_recurrence():
    dec = _decoder()
    u = torch.randn(2, 13, 3, dtype=f64)
    with torch.no_grad():
        y_lag, u_next = dec.lag_signals(u)
    a, b, c, k = (t.detach().numpy() for t in dec.system(f64))
    for h in range(3):
        A = companion_matrix(torch.from_numpy(a[h])).numpy()
        x = np.zeros((2, 5))
        for t in range(13):
            x = x @ A.T + b[h] * u[:, t, h].numpy()[:, None]
            np.testing.assert_allclose(y_lag[:, t, h].numpy(), x @ c[h], rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(u_next[:, t, h].numpy(), x @ k[h], rtol=1e-9, atol=1e-11)


def test_decoder_normalizes_a_and_k_only():
    dec = _decoder()
    a, b, c, k = dec.system(f64)
    torch.testing.assert_close(a.abs().sum(-1), torch.ones(3, dtype=f64))
    torch.testing.assert_close(k.abs().sum(-1), torch.ones(3, dtype=f64))
    torch.testing.assert_close(b, dec.b.detach())
    torch.testing.assert_close(c, dec.c.detach())


def test_decoder_output_scale_and_stability_at_init():
    """Recipe size (H 128, d 64, window 336, horizon 96): the closed-loop outputs are a sizeable fraction of the
    inputs (with b, c L1-normalized too they were 0.7% of them, and the forecast stayed at the lookback mean for
    hundreds of steps) and A + b k^T has spectral radius below 1 (the roll-out does not blow up)."""
    torch.manual_seed(0)
    dec = ClosedLoopCompanion(128, 64)
    u = torch.randn(4, 336, 128)
    with torch.no_grad():
        y, _ = dec(u, 96)
        a, b, _, k = dec.system(f64)
    assert float(y.std() / u.std()) > 0.03
    M = torch.from_numpy(companion_matrix(a).numpy() + np.einsum("hi,hj->hij", b.numpy(), k.numpy()))
    assert float(torch.linalg.eigvals(M).abs().max()) < 1.0


def _forecaster(**kw) -> SpaceTimeForecaster:
    torch.manual_seed(0)
    layer = {"d_state": 8, "max_avg_window": 12, **kw.pop("layer", {})}
    return SpaceTimeForecaster(kw.pop("d_input", 2), kw.pop("d_output", 2), 24, 7, d_model=16, layer=layer, **kw)


def test_forecaster_shapes_aux_loss_and_gradients():
    m = _forecaster(dropout=0.1)
    x = torch.randn(3, 24, 2)
    y = m(x)
    assert y.shape == (3, 7, 2)
    assert isinstance(m.aux_loss, torch.Tensor) and m.aux_loss.dim() == 0
    (y.square().mean() + m.aux_loss).backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in m.parameters())
    m.eval()
    assert m(x).shape == (3, 7, 2) and m.aux_loss is None


def test_aux_loss_is_the_weighted_lag_and_next_input_losses():
    x = torch.randn(2, 24, 2)
    parts = {}
    for w in ((1.0, 1.0, 0.0), (1.0, 0.0, 1.0)):
        m = _forecaster(layer={"forecaster": {"criterion_weights": list(w)}}).train()
        m(x)
        parts[w] = float(m.aux_loss.detach())
    m = _forecaster(layer={"forecaster": {"criterion_weights": [2.0, 3.0, 5.0]}}).train()
    m(x)
    expected = (3 * parts[(1.0, 1.0, 0.0)] + 5 * parts[(1.0, 0.0, 1.0)]) / 2
    assert float(m.aux_loss.detach()) == pytest.approx(expected, rel=1e-5)
    m = _forecaster(layer={"forecaster": {"criterion_weights": [1, 0, 0]}}).train()
    m(x)
    assert m.aux_loss is None


def test_centering_makes_the_forecast_shift_with_the_level():
    m = _forecaster(d_input=3, d_output=1).eval()  # MS: the target is the last input channel
    x = torch.randn(2, 24, 3)
    shift = torch.tensor([5.0, -2.0, 7.0])
    torch.testing.assert_close(m(x + shift), m(x) + 7.0, rtol=1e-5, atol=1e-4)


def test_forecaster_option_errors_are_one_line():
    for opts, match in (({"criterion_weights": [1, 1]}, "criterion_weights"), ({"embedding": "conv"}, "embedding"),
                        ({"nope": 1}, "forecaster.nope"), ({"criterion_weights": [0, 1, 1]}, "criterion_weights"),
                        ({"center": "yes"}, "center")):
        with pytest.raises(ValueError, match=match) as info:
            ForecasterOptions.from_dict(opts)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="repeat"):
        _forecaster(d_input=3, d_output=3, layer={"forecaster": {"embedding": "repeat"}})


def _forecast_info(c_in: int = 1, c_out: int = 1) -> TaskInfo:
    return TaskInfo("toy-forecast", n_classes=c_out, seq_len=24, d_input=c_in, head="forecast", loss="mse",
                    target_len=6)


def test_factory_builds_the_forecaster_for_forecasting_tasks():
    cfg = ModelConfig(name="spacetime", n_layers=2, d_model=16, layer={"d_state": 8, "max_avg_window": 12})
    model = build_model(cfg, _forecast_info())
    assert isinstance(model, SpaceTimeForecaster)
    assert model(torch.randn(2, 24, 1)).shape == (2, 6, 1)
    assert len(model.blocks) == 2 and model.blocks[0].mixer.pre is not None and model.blocks[1].mixer.pre is None
    bad = ModelConfig(name="spacetime", n_layers=1, d_model=12, layer={"d_state": 8})  # 8 heads do not divide 12
    with pytest.raises(ConfigError, match="model.layer"):
        build_model(bad, _forecast_info())


def test_config_rejects_unknown_forecaster_options_when_loaded():
    with pytest.raises(ConfigError, match="forecaster"):
        ModelConfig(name="spacetime", n_layers=1, d_model=16, layer={"forecaster": {"weights": [1, 1, 1]}}).validate()


def test_forecaster_under_bf16_autocast_computes_the_decoder_in_fp32():
    m = _forecaster().train()
    x = torch.randn(2, 24, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
        loss = y.float().square().mean() + m.aux_loss
    loss.backward()
    assert torch.isfinite(y.float()).all() and all(p.grad is not None for p in m.parameters())
    m.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        yb = m(x).float()
    torch.testing.assert_close(yb, m(x).detach(), rtol=0.05, atol=0.05)
