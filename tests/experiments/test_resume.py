"""Checkpoints every K steps: SIGKILL in the middle of an epoch, ``--resume``, and the run ends exactly like an
uninterrupted one (CPU); an unreadable ``last.pt`` on ``--resume`` is a one-line error with exit status 2."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ptdssm.cli import main

# Tiny digits model; 2 epochs of 81 steps (1294 examples, batch 16, the last batch partial), last.pt every 3 steps
# (81 = 27 * 3: the step checkpoint that would fall on an epoch's last step is left to the epoch checkpoint).
SETS = ["model.d_model=16", "model.layer.d_state=8", "model.n_layers=2", "data.batch_size=16",
        "data.val_subset=64", "data.test_subset=64", "train.log_every=4", "train.checkpoint_every=3"]
STEPS_PER_EPOCH = 81
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train_cmd(out: Path) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return [sys.executable, "-m", "ptdssm", "train", "--task", "digits", "--model", "s4d", "--epochs", "2",
            "--out", str(out), "--no-progress", "--json", *sets]


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.pop("time_s", None)
        r.pop("samples_per_s", None)
    return rows


def _load(path: Path) -> dict | None:
    try:
        return torch.load(path, weights_only=False)
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "ref"
    done = subprocess.run(_train_cmd(out), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def _kill_mid_epoch(out: Path) -> dict:
    """Start the run, SIGKILL it once last.pt is a mid-epoch checkpoint of epoch 2; return that checkpoint."""
    proc = subprocess.Popen(_train_cmd(out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last, seen = out / "checkpoints" / "last.pt", 0.0
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            mtime = last.stat().st_mtime if last.exists() else 0.0
            if mtime != seen:
                seen, ckpt = mtime, _load(last)
                if ckpt is not None and ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"] < STEPS_PER_EPOCH // 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.005)
        assert proc.poll() is None or proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    finally:
        if proc.poll() is None and proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not (out / "results.json").exists()
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"] < STEPS_PER_EPOCH, "not killed in the middle of an epoch"
    return ckpt


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(reference, tmp_path):
    ref, ref_results = reference
    killed = tmp_path / "killed"
    ckpt = _kill_mid_epoch(killed)
    assert ckpt["global_step"] == STEPS_PER_EPOCH + ckpt["step_in_epoch"] and ckpt["global_step"] % 3 == 0
    assert ckpt["best"]["epoch"] == 1 and len(ckpt["epoch_sums"]) == 1
    resumed = subprocess.run([sys.executable, "-m", "ptdssm", "train", "--resume", "--out", str(killed),
                              "--no-progress", "--json"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"in epoch 2 after step {ckpt['step_in_epoch']} of {STEPS_PER_EPOCH}" in resumed.stderr
    got = json.loads(resumed.stdout)
    assert {k: v for k, v in got.items() if k != "out"} == {k: v for k, v in ref_results.items() if k != "out"}
    assert json.loads((killed / "results.json").read_text()) == json.loads((ref / "results.json").read_text())
    assert _rows(killed / "metrics.jsonl") == _rows(ref / "metrics.jsonl")  # step records included
    strip = lambda text: [line.rsplit(",", 2)[0] for line in text.splitlines()]  # noqa: E731 - drop timings
    assert strip((killed / "metrics.csv").read_text()) == strip((ref / "metrics.csv").read_text())
    a = torch.load(killed / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(ref / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_reference_run_writes_step_checkpoints(reference):
    ref, results = reference
    assert results["steps"] == 2 * STEPS_PER_EPOCH
    last = torch.load(ref / "checkpoints" / "last.pt", weights_only=False)
    assert last["kind"] == "last" and last["epoch"] == 2 and last["step_in_epoch"] == 0
    assert last["epoch_sums"] is None and last["task_info"]["name"] == "digits"
    steps = [r["step"] for r in _rows(ref / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(4, 2 * STEPS_PER_EPOCH + 1, 4))


def test_truncated_last_checkpoint_on_resume_is_a_one_line_error(reference, tmp_path, capsys):
    ref, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "last.pt" in err[-1] and "not a readable ptdssm checkpoint" in err[-1]
    assert err[-1].startswith("ptdssm train: error:")
