"""End to end: ``ptdssm train`` on a forecasting task (a TSLib-layout CSV fixture) writes MSE/MAE/RMSE, picks the best
checkpoint by validation MSE and draws the forecast figure; ``ptdssm evaluate`` reports the same metrics; a model's
``aux_loss`` is added to the training loss."""

from __future__ import annotations

import json

import pytest
import torch

from ptdssm.cli import main
from ptdssm.config import load_recipe
from ptdssm.experiments import train as train_mod
from ptdssm.experiments.train import train

from ..data.forecasting_fixtures import ett_values, write_ett_csv

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY = ["model.n_layers=1", "model.d_model=8", "model.layer.d_state=8", "data.options.lookback=24",
        "data.options.horizon=8", "data.batch_size=8", "train.max_steps_per_epoch=3", "train.progress=false"]


def test_train_writes_forecast_metrics_and_plot(tmp_path, capsys):
    csv = write_ett_csv(tmp_path / "ETTh1.csv", ett_values(400))
    out = tmp_path / "run"
    argv = ["train", "--task", "forecast-csv", "--model", "s4d", "--epochs", "2", "--out", str(out), "--json",
            "--set", f"data.options.path={csv}", "--set", "data.options.split=custom"]
    for s in TINY:
        argv += ["--set", s]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["task"] == "forecast-csv" and (res["lookback"], res["horizon"]) == (24, 8)
    for k in ("test_mse", "test_mae", "test_rmse", "best_val_mse", "final_test_rmse"):
        assert res[k] == res[k] and res[k] >= 0  # finite numbers
    assert res["test_rmse"] == pytest.approx(res["test_mse"] ** 0.5)
    assert res["test_n"] == (400 - int(400 * 0.7) - int(400 * 0.1) - 8 + 1) * 8 * 7  # windows x horizon x channels
    png = out / "forecast.png"
    assert res["forecast_plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_rmse", "val_mse", "val_mae", "val_rmse"} <= set(header)
    assert main(["evaluate", "--checkpoint", str(out / "checkpoints" / "best.pt"), "--device", "cpu"]) == 0
    line = capsys.readouterr().out
    assert "MSE" in line and "MAE" in line and "RMSE" in line
    assert main(["evaluate", "--checkpoint", str(out / "checkpoints" / "best.pt"), "--device", "cpu",
                 "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    # the run's best checkpoint is what results.json tested
    assert ev["mse"] == pytest.approx(res["test_mse"], rel=1e-5) and ev["rmse"] == pytest.approx(res["test_rmse"],
                                                                                                 rel=1e-5)


def test_best_checkpoint_is_the_lowest_validation_mse(tmp_path):
    cfg = load_recipe("forecast-ar", "s4d", [*TINY, "data.options.n_steps=1500", f"train.out={tmp_path / 'r'}",
                                             "train.epochs=3", "optim.lr=0.05"])
    result = train(cfg)
    epochs = [json.loads(r) for r in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    vals = {r["epoch"]: r["val_mse"] for r in epochs if r["kind"] == "epoch"}
    assert result.results["best_epoch"] == min(vals, key=vals.get)
    assert result.results["best_val_mse"] == pytest.approx(min(vals.values()))


def test_aux_loss_of_the_model_is_trained(tmp_path, monkeypatch):
    """A model that sets ``aux_loss = 10 * w^2`` after each forward: training drives ``w`` towards 0, which the MSE
    alone (``w`` does not touch the output) would never do."""
    real_build = train_mod.build_model

    def build(cfg, info):
        model = real_build(cfg, info)
        model.w = torch.nn.Parameter(torch.tensor(1.0))
        forward = model.forward

        def fwd(*args, **kwargs):
            model.aux_loss = 10.0 * model.w.square()
            return forward(*args, **kwargs)

        model.forward = fwd
        return model

    monkeypatch.setattr(train_mod, "build_model", build)
    cfg = load_recipe("forecast-ar", "s4d", [*TINY, "data.options.n_steps=1500", f"train.out={tmp_path / 'r'}",
                                             "train.epochs=1", "optim.weight_decay=0.0", "optim.warmup_epochs=0",
                                             "optim.lr=0.05"])
    result = train(cfg)
    assert float(result.model.w.detach()) < 0.95  # 3 Adam steps of ~lr each; without the aux loss: exactly 1


@pytest.mark.parametrize("family", ["s4d", "s4-ptd", "s5", "s5-ptd", "mamba"])
def test_packaged_forecasting_recipes_build(family):
    """Each task has each family's recipe; the model maps a lookback window of 336 to a horizon of 96 (the task's
    TaskInfo reads no data)."""
    from ptdssm.config import find_config
    from ptdssm.data import task_info
    from ptdssm.models import build_model

    for task in ("forecast-vic-elec", "forecast-ecl-mean", "forecast-ar"):
        assert find_config(task, family).stem == f"{task}-{family}"
    cfg = load_recipe("forecast-vic-elec", family)
    assert (cfg.data.options["lookback"], cfg.data.options["horizon"], cfg.train.progress) == (336, 96, True)
    if family.endswith("-ptd"):
        return  # the same model as the family's baseline recipe (an overlay); its first PTD solve takes minutes
    torch.manual_seed(0)
    model = build_model(cfg.model, task_info(cfg.data)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 336, 1)).shape == (1, 96, 1)
