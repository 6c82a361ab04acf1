"""Bring your own data from the command line, with no Python code: ``ptdssm train`` on a tiny UCR/UEA ``.ts`` file and
on a tiny ``.npz`` file, and a task of the user's own module reached as ``--task module:task``; then ``ptdssm
evaluate`` rebuilds each model from its checkpoint alone (the task's metadata is stored in it)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TINY = ["--model", "s4d", "--epochs", "1", "--no-progress", "--json", "--set", "model.n_layers=1",
        "--set", "model.d_model=8", "--set", "model.layer.d_state=4", "--set", "data.batch_size=4"]


def _ptdssm(*args: str, cwd=None) -> dict:
    proc = subprocess.run([sys.executable, "-m", "ptdssm", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _write_ts(path, series, labels):
    lines = ["@problemName Tiny", "@timeStamps false", "@missing false", "@univariate false", "@dimensions 2",
             "@equalLength true", "@seriesLength 12", "@classLabel true a b", "@data"]
    for s, y in zip(series, labels, strict=True):
        lines.append(":".join(",".join(f"{v:.4f}" for v in dim) for dim in s) + f":{y}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ucr")
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 12)
    for split, n in (("TRAIN", 20), ("TEST", 8)):
        labels = ["a", "b"] * (n // 2)
        series = [np.stack([np.sin(2 * np.pi * (1 + (y == "b")) * t), rng.normal(size=12)]) for y in labels]
        _write_ts(d / f"Tiny_{split}.ts", series, labels)
    return d


def test_train_on_a_ts_file_then_evaluate(ts_dir, tmp_path):
    out = tmp_path / "run"
    res = _ptdssm("train", "--task", "ucr", "--data-dir", str(ts_dir), "--out", str(out), *TINY)
    assert res["task"] == "ucr" and res["test_n"] == 8 and 0.0 <= res["test_acc"] <= 1.0
    ev = _ptdssm("evaluate", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--json",
                 "--data-dir", str(ts_dir))
    assert ev["n"] == 8 and ev["acc"] == pytest.approx(res["final_test_acc"])


def test_train_on_an_npz_file_classification_and_regression(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 10, 3)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    d = tmp_path / "arrays"
    d.mkdir()
    np.savez(d / "data.npz", x_train=x[:22], y_train=y[:22], x_test=x[22:], y_test=y[22:])
    res = _ptdssm("train", "--task", "arrays", "--data-dir", str(d), "--out", str(tmp_path / "cls"), *TINY)
    assert res["test_n"] == 8 and 0.0 <= res["test_acc"] <= 1.0

    target = x.sum(axis=(1, 2))[:, None].astype(np.float32)  # float targets: a regression task
    r = tmp_path / "regr"
    r.mkdir()
    np.savez(r / "data.npz", x_train=x[:22], y_train=target[:22], x_test=x[22:], y_test=target[22:])
    res = _ptdssm("train", "--task", "arrays", "--data-dir", str(r), "--out", str(tmp_path / "reg"), *TINY)
    assert res["test_mse"] >= 0.0 and res["test_mae"] >= 0.0 and "test_acc" not in res


def test_train_a_task_of_the_users_own_module(tmp_path):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent('''
        import torch
        from ptdssm.data import ArrayDataset, TaskData, TaskInfo, register_task

        def info(cfg):
            return TaskInfo("my_tasks:parity", n_classes=2, seq_len=6, vocab_size=3)

        def build(cfg):
            g = torch.Generator().manual_seed(0)
            x = torch.randint(1, 3, (40, 6), generator=g)
            ds = ArrayDataset(x, (x == 2).sum(1) % 2)
            return TaskData(info(cfg), ds, ds, ds)

        register_task("my_tasks:parity", info=info, build=build)
    '''))
    res = _ptdssm("train", "--task", "my_tasks:parity", "--out", str(tmp_path / "run"), *TINY, cwd=tmp_path)
    assert res["task"] == "my_tasks:parity" and res["test_n"] == 40
