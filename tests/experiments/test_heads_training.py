"""Per-position and regression tasks train end to end (tiny, CPU) and report metrics over the scored positions,
checked against a direct computation on the returned model."""

import json

import numpy as np
import pytest
import torch

from ptdssm.cli import main
from ptdssm.config import find_config, load_config
from ptdssm.data import IGNORE_INDEX, build_task, collate
from ptdssm.experiments.train import train

TINY = ["model.d_model=16", "model.layer.d_state=8", "model.n_layers=2", "data.batch_size=16", "train.epochs=2",
        "data.options.n_train=64", "data.options.n_val=32", "data.options.n_test=32", "train.progress=false",
        "train.log_every=1"]


def _cfg(task, out, *extra):
    return load_config(find_config(task, "s4d"), [*TINY, f"data.task={task}", f"train.out={out}", *extra])


def _direct_metrics(model, cfg):
    """Outputs of ``model`` on the test split, scored by hand: accuracy over y != -100, or MSE / MAE."""
    data = build_task(cfg.data)
    batch = collate([data.test[i] for i in range(len(data.test))])
    model.eval()
    with torch.no_grad():
        out = model(x=batch["x"], lengths=batch.get("lengths")).double().numpy()
    y = batch["y"].numpy()
    if y.dtype.kind == "f":
        err = (out - y)[~np.isnan(y)]
        return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err))), "n": err.size}
    scored = y != IGNORE_INDEX
    return {"acc": float((out.argmax(-1) == y)[scored].mean()), "n": int(scored.sum())}


@pytest.mark.parametrize(("task", "options", "scored_per_example"), [
    ("selective-copying", ["data.seq_len=24", "data.options.n_memorize=4", "data.options.n_symbols=4"], 4),
    ("associative-recall", ["data.seq_len=20", "data.options.n_pairs=3", "data.options.n_keys=6",
                            "data.options.n_values=6", "data.options.n_queries=3"], 3),
])
def test_per_position_tasks_train_and_score_only_the_scored_positions(tmp_path, task, options, scored_per_example):
    cfg = _cfg(task, tmp_path / task, *options)
    res = train(cfg)
    r = res.results
    assert r["test_n"] == 32 * scored_per_example  # positions scored, not examples or sequence positions
    assert 0.0 <= r["final_test_acc"] <= 1.0 and np.isfinite(r["final_test_loss"])
    direct = _direct_metrics(res.model, cfg)
    assert direct["n"] == r["test_n"]
    assert direct["acc"] == pytest.approx(r["final_test_acc"], abs=1e-9)
    records = [json.loads(line) for line in (tmp_path / task / "metrics.jsonl").read_text().splitlines()]
    assert [rec["epoch"] for rec in records if rec["kind"] == "epoch"] == [1, 2]
    assert all("train_acc" in rec and "val_acc" in rec for rec in records if rec["kind"] == "epoch")
    # throughput counts sequences (64 per epoch), not the scored positions the metrics average over
    for rec in (rec for rec in records if rec["kind"] == "epoch"):
        assert rec["samples_per_s"] * rec["time_s"] == pytest.approx(64, rel=0.05)


def test_adding_problem_trains_as_regression(tmp_path, capsys):
    cfg = _cfg("adding", tmp_path / "adding", "data.seq_len=32")
    res = train(cfg)
    r = res.results
    assert {"test_mse", "test_mae", "final_test_mse", "best_val_mse", "best_val_loss"} <= r.keys()
    assert "test_acc" not in r and r["test_n"] == 32
    assert r["final_test_loss"] == pytest.approx(r["final_test_mse"])
    direct = _direct_metrics(res.model, cfg)
    assert direct["mse"] == pytest.approx(r["final_test_mse"], rel=1e-5)
    assert direct["mae"] == pytest.approx(r["final_test_mae"], rel=1e-5)
    header = (tmp_path / "adding" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,step,lr,train_loss,train_mse,train_mae,val_loss,val_mse,val_mae")
    # evaluate rebuilds the model from the checkpoint's TaskInfo and reports regression metrics
    assert main(["evaluate", "--checkpoint", str(tmp_path / "adding" / "checkpoints" / "last.pt"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mse"] == pytest.approx(r["final_test_mse"], rel=1e-6) and "acc" not in doc
