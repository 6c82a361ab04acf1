"""Forecasting baselines against independent computations: seasonal naive by hand, the least-squares AR oracle
recovering known coefficients, DLinear's closed form against an explicit ridge regression, and the protocol's
metrics against numpy over the test windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptdssm.cli import main
from ptdssm.config import DataConfig
from ptdssm.data import build_task
from ptdssm.data.forecasting import default_phi, simulate_ar
from ptdssm.experiments.forecast_baselines import (
    NormalEquations,
    ar_forecast,
    ar_oracle,
    fit_ar,
    fit_dlinear,
    moving_average_matrix,
    naive_forecast,
    run_baselines,
    seasonal_naive_forecast,
)


def test_seasonal_naive_by_hand():
    x = np.arange(10, dtype=float)[None, :, None]  # x_0 .. x_9, season 4: the last season is x_6 .. x_9
    np.testing.assert_array_equal(seasonal_naive_forecast(x, 6, 4)[0, :, 0], [6, 7, 8, 9, 6, 7])
    np.testing.assert_array_equal(seasonal_naive_forecast(x, 3, 1)[0, :, 0], [9, 9, 9])
    np.testing.assert_array_equal(naive_forecast(x, 2)[0, :, 0], [9, 9])
    with pytest.raises(ValueError, match="lookback 10 < season 12"):
        seasonal_naive_forecast(x, 3, 12)


def test_least_squares_ar_recovers_phi():
    phi = default_phi()
    x = simulate_ar(phi, 60000, sigma=1.0, seed=1)
    est, c = fit_ar(x, 4)
    np.testing.assert_allclose(est, phi, atol=0.01)
    assert abs(c) < 0.05


def test_ar_forecast_is_the_recurrence_rolled_forward():
    phi, c = np.array([0.5, -0.2, 0.1]), 0.3
    x = np.random.default_rng(0).normal(size=(4, 6))
    out = ar_forecast(x, phi, c, 5)
    for b in range(4):
        hist = list(x[b])
        for _ in range(5):
            hist.append(c + phi[0] * hist[-1] + phi[1] * hist[-2] + phi[2] * hist[-3])
        np.testing.assert_allclose(out[b], hist[6:], rtol=1e-12)


def test_ar_oracle_on_the_task_reaches_the_noise_floor():
    """Horizon 1: the oracle's error is the innovation, variance sigma^2 / std_train^2 in scaled units."""
    data = build_task(DataConfig(task="forecast-ar", options={"n_steps": 40000, "lookback": 16, "horizon": 1}))
    res = ar_oracle(data)
    np.testing.assert_allclose(res["phi"]["x"], default_phi(), atol=0.02)
    floor = 1.0 / data.extras["scaler"]["std"][0] ** 2
    assert res["mse"] == pytest.approx(floor, rel=0.05)


def test_moving_average_matrix_is_the_edge_padded_average():
    x = np.random.default_rng(0).normal(size=11)
    k = 5
    padded = np.concatenate([np.full(2, x[0]), x, np.full(2, x[-1])])
    ref = np.array([padded[t : t + k].mean() for t in range(11)])
    np.testing.assert_allclose(moving_average_matrix(11, k) @ x, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        moving_average_matrix(11, 4)


def test_dlinear_closed_form_equals_an_explicit_ridge_regression():
    rng = np.random.default_rng(0)
    N, L, K, k = 400, 12, 3, 5
    x = rng.normal(size=(N, L))
    W = rng.normal(size=(L, K))
    y = x @ W + 0.5 + 0.01 * rng.normal(size=(N, K))
    eq = NormalEquations.of([(x[:200], y[:200]), (x[200:], y[200:])])  # sums add over chunks
    model, info = fit_dlinear(eq, None, kernel=k, grid=(1e-3,))
    # explicit: features [s, t, 1], ridge on the weights only, solved as an augmented least-squares problem
    M = moving_average_matrix(L, k)
    t = x @ M.T
    Z = np.concatenate([x - t, t, np.ones((N, 1))], axis=1)
    lam = 1e-3 * np.mean(np.sum(Z[:, : 2 * L] ** 2, axis=0))
    aug = np.concatenate([Z, np.concatenate([np.sqrt(lam) * np.eye(2 * L), np.zeros((2 * L, 1))], axis=1)])
    w, *_ = np.linalg.lstsq(aug, np.concatenate([y, np.zeros((2 * L, K))]), rcond=None)
    np.testing.assert_allclose(model.predict(x), Z @ w, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(model.x_basis(L)[:L], W, atol=0.02)  # the map that made the data
    assert model.b == pytest.approx([0.5] * K, abs=0.02)


def test_protocol_metrics_against_numpy_over_the_test_windows():
    data = build_task(DataConfig(task="forecast-ar", options={"n_steps": 3000, "lookback": 48, "horizon": 24}))
    rows = {r["method"]: r for r in run_baselines(data, season=24)}
    assert set(rows) == {"naive", "seasonal-naive", "dlinear", "ar"}
    x, y = data.test.arrays()
    pred = x[:, 24 + np.arange(24) % 24, :]  # L - m + (h mod m) with L = 48, m = 24
    err = pred - y
    assert rows["seasonal-naive"]["mse"] == pytest.approx(float(np.mean(err**2)), rel=1e-12)
    assert rows["seasonal-naive"]["mae"] == pytest.approx(float(np.mean(np.abs(err))), rel=1e-12)
    assert rows["seasonal-naive"]["n"] == y.size
    assert rows["ar"]["mse"] < rows["seasonal-naive"]["mse"] < rows["naive"]["mse"]
    assert rows["dlinear"]["rmse"] == pytest.approx(rows["dlinear"]["mse"] ** 0.5)


def test_cli_prints_json_and_refuses_bad_arguments(capsys, tmp_path):
    out = tmp_path / "b.json"
    argv = ["baselines", "--task", "forecast-ar", "--option", "n_steps=2000", "--option", "lookback=32",
            "--option", "horizon=8", "--season", "24", "--methods", "seasonal-naive,ar", "--json", "--out", str(out)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in doc["baselines"]] == ["seasonal-naive", "ar"]
    assert (doc["lookback"], doc["horizon"]) == (32, 8) and json.loads(out.read_text()) == doc
    assert main(["baselines", "--task", "forecast-ar", "--methods", "prophet"]) == 2
    assert "unknown baseline 'prophet'" in capsys.readouterr().err
    assert main(["baselines", "--task", "adding"]) == 2
    assert "not a forecasting task" in capsys.readouterr().err
