"""Training engine: a short run, evaluate, exact resume after SIGKILL, NaN stop, config checks, DDP on gloo."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ptdssm.cli import main
from ptdssm.config import apply_overrides, find_config, load_config
from ptdssm.data import TaskData, build_task, register_task, task_info
from ptdssm.experiments.train import TrainingDiverged, WarmupSchedule, train

# A tiny digits model: a few seconds per run.
TINY = ["model.d_model=16", "model.layer.d_state=8", "model.n_layers=2", "data.batch_size=16", "train.log_every=20"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ptdssm", *args]


def _tiny_args(out: Path, epochs: int = 4) -> list[str]:
    sets = [a for s in (*TINY, "data.train_subset=640", "data.test_subset=128") for a in ("--set", s)]
    return ["train", "--task", "digits", "--model", "s4d", "--epochs", str(epochs), "--out", str(out),
            "--no-progress", "--json", *sets]


def _epoch_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("time_s", None)
        r.pop("samples_per_s", None)
    return rows


def test_schedule():
    s = WarmupSchedule(warmup=4, total=12, kind="cosine", min_ratio=0.1)
    assert [round(s(i), 3) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s(4) == pytest.approx(1.0) and s(12) == pytest.approx(0.1) and s(8) == pytest.approx(0.55)
    assert WarmupSchedule(0, 10, "linear")(5) == pytest.approx(0.5)
    assert WarmupSchedule(2, 10, "constant")(9) == 1.0


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """A run killed with SIGKILL and resumed ends with the same metrics as an uninterrupted one (CPU)."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    done = subprocess.run(_cli(*_tiny_args(ref)), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ref_results = json.loads(done.stdout)
    proc = subprocess.Popen(_cli(*_tiny_args(killed)), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if metrics.exists() and '"kind": "epoch", "epoch": 2' in metrics.read_text():
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not (killed / "results.json").exists()
    resumed = subprocess.run(_cli("train", "--resume", "--out", str(killed), "--no-progress", "--json"), env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    got = json.loads(resumed.stdout)
    for key in ("test_acc", "test_loss", "final_test_acc", "final_test_loss", "best_val_acc", "best_epoch", "steps"):
        assert got[key] == ref_results[key], key
    assert _epoch_rows(killed / "metrics.jsonl") == _epoch_rows(ref / "metrics.jsonl")
    # evaluate reproduces the final test accuracy of the best checkpoint
    ev = subprocess.run(_cli("evaluate", "--checkpoint", str(ref / "checkpoints" / "best.pt"), "--json"), env=ENV,
                        capture_output=True, text=True, timeout=120)
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["acc"] == pytest.approx(ref_results["test_acc"]) and res["n"] == ref_results["test_n"]
    # the run directory
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "results.json", "checkpoints/last.pt",
                 "checkpoints/best.pt"):
        assert (ref / name).is_file(), name
    assert len((ref / "metrics.csv").read_text().splitlines()) == 1 + 4
    assert not list(ref.glob("checkpoints/.*tmp*"))


def _tiny_cfg(out: Path, *extra: str):
    return load_config(find_config("digits", "s4d"), [*TINY, f"train.out={out}", "train.progress=false", *extra])


class _PoisonAfter(torch.utils.data.Dataset):
    """Wraps a dataset and returns NaN inputs once ``limit`` examples have been served."""

    def __init__(self, base, limit):
        self.base, self.limit, self.served = base, limit, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        self.served += 1
        return (torch.full_like(x, float("nan")) if self.served > self.limit else x), y


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def build(cfg):
        d = build_task(apply_overrides(_tiny_cfg(tmp_path), {"data.task": "digits", "data.train_subset": 64}).data)
        return TaskData(d.info, _PoisonAfter(d.train, 64), d.val, d.test)

    register_task("nan-after-one-epoch", info=lambda cfg: task_info(
        apply_overrides(_tiny_cfg(tmp_path), {"data.task": "digits"}).data), build=build, replace=True)
    cfg = _tiny_cfg(tmp_path / "run", "data.task=nan-after-one-epoch", "train.epochs=3")
    with pytest.raises(TrainingDiverged, match="epoch 2") as info:
        train(cfg)
    assert "last.pt (epoch 1)" in str(info.value)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert kinds[-1] == "diverged" and not (tmp_path / "run" / "results.json").exists()


def test_run_directory_guards(tmp_path, capsys):
    cfg = _tiny_cfg(tmp_path / "run", "train.epochs=1", "data.train_subset=64", "data.val_subset=32")
    result = train(cfg)
    assert result.results["steps"] == 4 and 0 <= result.results["test_acc"] <= 1
    with pytest.raises(ValueError, match="--resume"):
        train(cfg)
    with pytest.raises(ValueError, match=r"optim\.lr"):
        train(apply_overrides(cfg, ["optim.lr=0.1"]), resume=True)
    # train keys that change the numbers, the schedule or the logged records are refused on resume, naming the key
    for change in ("train.epochs=2", "train.seed=1", "train.max_steps_per_epoch=2", "train.eval_every=2",
                   "train.precision=bf16", "train.deterministic=false", "train.log_every=7"):
        with pytest.raises(ValueError) as info:
            train(apply_overrides(cfg, [change]), resume=True)
        msg = str(info.value)
        assert f"config key '{change.split('=')[0]}'" in msg and "cannot resume" in msg and "\n" not in msg
    # ... the others may change
    again = train(apply_overrides(cfg, ["train.checkpoint_every=3", "train.tensorboard=false"]), resume=True)
    assert again.results == result.results
    # evaluate verb, text and JSON
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--split", "val"]) == 0
    assert "val accuracy" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(ckpt), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["acc"] == pytest.approx(result.results["final_test_acc"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "junk.pt")]) == 2
    assert "not a readable ptdssm checkpoint" in capsys.readouterr().err


def test_bf16_autocast_runs(tmp_path):
    cfg = _tiny_cfg(tmp_path / "bf16", "train.epochs=1", "train.precision=bf16", "data.train_subset=32",
                    "data.val_subset=16", "data.test_subset=16")
    res = train(cfg).results
    assert np.isfinite(res["test_loss"])


DDP_SCRIPT = """
import sys, torch
from ptdssm.config import load_config, find_config
from ptdssm.experiments.train import train
cfg = load_config(find_config("digits", "s4d"), sys.argv[2:])
result = train(cfg)
rank = int(__import__("os").environ["RANK"])
torch.save({k: v for k, v in result.model.state_dict().items()}, sys.argv[1] + f"/rank{rank}.pt")
"""


def test_epoch_batch_sampler_splits_the_global_batch():
    """Process r takes positions r, r + W, ... of each shuffled global batch: together the processes cover every
    global batch exactly once, shares differ by at most one, the loss weights average to one per step, and when W
    divides the batch the order is that of DistributedSampler + per-process batches (earlier versions)."""
    from torch.utils.data import DataLoader, DistributedSampler

    from ptdssm.experiments.run import EpochBatchSampler

    for n, batch, world in ((1294, 50, 4), (256, 33, 2), (100, 7, 3), (37, 8, 1)):
        samplers = [EpochBatchSampler(n, batch, world=world, rank=r, seed=5) for r in range(world)]
        for s in samplers:
            s.set_epoch(3)
        parts = [list(s) for s in samplers]
        assert len({len(p) for p in parts}) == 1  # every process takes the same number of steps (DDP)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(5 + 3)).tolist()
        for step in range(len(parts[0])):
            shares = [parts[r][step] for r in range(world)]
            glob = perm[step * batch: step * batch + sum(len(x) for x in shares)]
            assert sorted(sum(shares, [])) == sorted(glob) and len(glob) <= batch
            assert max(map(len, shares)) - min(map(len, shares)) <= 1 and min(map(len, shares)) >= 1
            assert sum(s.weight(step) for s in samplers) == pytest.approx(world)
        if batch % world == 0:
            for r in range(world):
                ds = list(range(n))
                old = DistributedSampler(ds, num_replicas=world, rank=r, shuffle=True, seed=5, drop_last=world > 1)
                old.set_epoch(3)
                assert parts[r] == [b.tolist() for b in DataLoader(ds, batch_size=batch // world, sampler=old)]
    s = EpochBatchSampler(1294, 50, world=4, rank=3, seed=0)
    s.set_epoch(0, skip=5)
    full = EpochBatchSampler(1294, 50, world=4, rank=3, seed=0)
    assert list(s) == list(full)[5:] and [len(b) for b in list(full)[:1]] == [12]  # 50 = 13 + 13 + 12 + 12
    with pytest.raises(ValueError, match="at least the number of processes"):
        EpochBatchSampler(100, 3, world=4, rank=0)


def test_ddp_two_processes_match_single_process(tmp_path):
    """torchrun with 2 gloo processes: replicas identical and equal to one process on the same global batch, with
    a batch that does not divide evenly (33 = 17 + 16: unequal shares, weighted so every sequence counts once)."""
    sets = [*TINY, "model.norm=layer", "model.dropout=0", "data.batch_size=33", "data.train_subset=256",
            "data.val_subset=64", "data.test_subset=64", "train.epochs=2", "train.progress=false",
            "train.checkpoint_every=5"]  # mid-epoch checkpoints gather every rank's RNG states and epoch sums
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path), *sets, f"train.out={tmp_path / 'ddp'}"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    single = train(load_config(find_config("digits", "s4d"), [*sets, f"train.out={tmp_path / 'single'}"]))
    ref = single.model.state_dict()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"replicas differ in {k}"
        torch.testing.assert_close(r0[k], ref[k], atol=2e-5, rtol=1e-4, msg=f"DDP and single differ in {k}")
    ddp_results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp_results["world_size"] == 2 and ddp_results["steps"] == single.results["steps"] == 16
    assert ddp_results["test_n"] == 64
    last = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["step_in_epoch"] == 0 and len(last["rng"]) == 2


def test_best_checkpoint_breaks_validation_accuracy_ties_by_loss(tmp_path, monkeypatch):
    """Equal validation accuracy in every epoch: the epoch with the lowest validation loss is the best, not the
    first (an exact tie would keep the earlier one)."""
    import ptdssm.experiments.train as T

    scripted = iter([{"loss": 1.0, "acc": 0.5, "n": 16}, {"loss": 0.8, "acc": 0.5, "n": 16},
                     {"loss": 0.9, "acc": 0.5, "n": 16}])
    real = T.evaluate_model

    def validation_then_real(net, loader, device, **kw):
        return next(scripted, None) or real(net, loader, device, **kw)

    monkeypatch.setattr(T, "evaluate_model", validation_then_real)
    cfg = _tiny_cfg(tmp_path / "run", "train.epochs=3", "data.train_subset=32", "data.val_subset=16",
                    "data.test_subset=16")
    res = train(cfg).results
    assert res["best_epoch"] == 2 and res["best_val_loss"] == 0.8 and res["best_val_acc"] == 0.5
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=False)
    assert best["epoch"] == 2 and best["val"]["loss"] == 0.8
    assert res["test_acc"] != res["final_test_acc"] or res["test_loss"] != res["final_test_loss"]


def test_training_diverged_is_the_typed_error():
    from ptdssm import errors

    assert TrainingDiverged is errors.TrainingDiverged and issubclass(TrainingDiverged, errors.NonFiniteError)


def test_empty_validation_split_never_makes_a_best_checkpoint(tmp_path):
    """data.val_fraction=0: validation has n == 0 (NaN metrics); no epoch is the best, the last model is reported."""
    cfg = _tiny_cfg(tmp_path / "run", "train.epochs=2", "data.val_fraction=0", "data.train_subset=32",
                    "data.test_subset=16")
    res = train(cfg).results
    assert res["best_epoch"] == -1 and res["best_val_acc"] is None
    assert res["test_acc"] == res["final_test_acc"] and res["test_loss"] == res["final_test_loss"]
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)["best"]["epoch"] == -1


def test_results_describe_the_best_checkpoint_that_was_tested(tmp_path, monkeypatch, capsys):
    """best.pt of a later epoch than last.pt's best (a run killed between validate() writing best.pt and the
    epoch's last.pt, resumed without rewriting it): results.json reports best.pt's epoch and validation."""
    import ptdssm.experiments.train as T
    from ptdssm.experiments.checkpoint import best_payload

    scripted = iter([{"loss": 0.8, "acc": 0.5, "n": 16}, {"loss": 0.9, "acc": 0.5, "n": 16}])
    real = T.evaluate_model
    monkeypatch.setattr(T, "evaluate_model", lambda net, loader, device, **kw: next(scripted, None)
                        or real(net, loader, device, **kw))
    cfg = _tiny_cfg(tmp_path / "run", "train.epochs=2", "data.train_subset=32", "data.val_subset=16",
                    "data.test_subset=16")
    assert train(cfg).results["best_epoch"] == 1
    ckpts = tmp_path / "run" / "checkpoints"
    last = torch.load(ckpts / "last.pt", weights_only=False)
    assert last["best"]["epoch"] == 1
    # best.pt now holds the epoch-2 model (= the last model), as if its validation had won
    torch.save(best_payload(config=last["config"], task_info=last["task_info"], model=last["model"], epoch=2,
                            val={"loss": 0.7, "acc": 0.5, "n": 16}), ckpts / "best.pt")
    capsys.readouterr()
    res = train(cfg, resume=True).results
    assert res["best_epoch"] == 2 and res["best_val_loss"] == 0.7 and res["best_val_acc"] == 0.5
    assert res["test_loss"] == res["final_test_loss"] and res["test_acc"] == res["final_test_acc"]  # same weights
    assert json.loads((tmp_path / "run" / "results.json").read_text())["best_epoch"] == 2
    assert "warning" in capsys.readouterr().err


def test_version_1_last_checkpoint_resumes(tmp_path, monkeypatch, capsys):
    """A version-1 last.pt (no kind / step_in_epoch / epoch_sums / best; best_val_acc and best_epoch instead)
    resumes; without best_epoch the refusal is one line naming it."""
    import ptdssm.experiments.train as T

    real_run_epoch = T.run_epoch

    def stop_before_epoch_2(run, state):
        if state.epoch == 1:
            raise KeyboardInterrupt
        return real_run_epoch(run, state)

    out = tmp_path / "run"
    cfg = _tiny_cfg(out, "train.epochs=2", "data.train_subset=32", "data.val_subset=16", "data.test_subset=16")
    monkeypatch.setattr(T, "run_epoch", stop_before_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(T, "run_epoch", real_run_epoch)
    v2 = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert v2["epoch"] == 1 and v2["step_in_epoch"] == 0
    v1 = {k: v2[k] for k in ("config", "task_info", "model", "epoch", "global_step", "optimizer", "scheduler", "rng",
                             "metric_offsets")}
    v1.update(version=1, best_val_acc=v2["best"]["val"]["acc"], best_epoch=v2["best"]["epoch"])
    torch.save({k: v for k, v in v1.items() if k != "best_epoch"}, out / "checkpoints" / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks best_epoch" in err[0] and err[0].startswith("ptdssm train: error:")
    torch.save(v1, out / "checkpoints" / "last.pt")
    res = train(cfg, resume=True).results
    assert res["steps"] == 4 and res["epochs"] == 2
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r["kind"] == "epoch"] == [1, 2]
