"""Checkpoints every K steps: SIGKILL in the middle of an epoch, ``--resume``, and the run ends exactly like an
uninterrupted one (CPU); an unreadable ``last.pt`` on ``--resume`` is a one-line error with exit status 2."""

import json
import os
import shutil
import signal
import subprocess
import sys
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


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "ref"
    done = subprocess.run(_train_cmd(out), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


# The run to kill: ptdssm's own CLI, with save_last wrapped so that the process SIGKILLs itself when it is about to
# write the step-KILL_AT checkpoint. The last.pt it leaves is the step-(KILL_AT - 3) one, in the middle of epoch 2,
# and metrics.jsonl already holds the step record of KILL_AT (log_every 4), which the resume must cut off. No polling:
# the kill lands at the same point on any machine.
KILL_AT = STEPS_PER_EPOCH + 15  # 96: epoch 2, step 15 of 81
KILLER = """
import os, signal, sys
import ptdssm.experiments.train as T
from ptdssm.cli import main
real = T.save_last
def save_last(run, state):
    if state.global_step == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(run, state)
T.save_last = save_last
sys.exit(main(sys.argv[2:]))
"""


def _kill_mid_epoch(out: Path) -> dict:
    """Run, SIGKILL the process in the middle of epoch 2 (see KILLER); return the last.pt it left."""
    cmd = [sys.executable, "-c", KILLER, str(KILL_AT), *_train_cmd(out)[3:]]
    proc = subprocess.run(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (out / "results.json").exists()
    steps = [r["step"] for r in _rows(out / "metrics.jsonl") if r["kind"] == "step"]
    assert steps[-1] == KILL_AT  # written after the last checkpoint: the resume drops it and writes it again
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["step_in_epoch"] == KILL_AT - 3 - STEPS_PER_EPOCH, "not killed mid-epoch"
    return ckpt


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(reference, tmp_path):
    ref, ref_results = reference
    killed = tmp_path / "killed"
    ckpt = _kill_mid_epoch(killed)
    assert ckpt["global_step"] == STEPS_PER_EPOCH + ckpt["step_in_epoch"] and ckpt["global_step"] % 3 == 0
    assert ckpt["best"]["epoch"] == 1 and len(ckpt["epoch_sums"]) == 1
    assert ckpt["epoch_examples"] == [ckpt["step_in_epoch"] * 16]  # full batches of 16 sequences so far
    resumed = subprocess.run([sys.executable, "-m", "ptdssm", "train", "--resume", "--out", str(killed),
                              "--no-progress", "--json"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"in epoch 2 after step {ckpt['step_in_epoch']} of {STEPS_PER_EPOCH}" in resumed.stderr
    got = json.loads(resumed.stdout)
    assert {k: v for k, v in got.items() if k != "out"} == {k: v for k, v in ref_results.items() if k != "out"}
    assert json.loads((killed / "results.json").read_text()) == json.loads((ref / "results.json").read_text())
    assert _rows(killed / "metrics.jsonl") == _rows(ref / "metrics.jsonl")  # step records included
    for run in (ref, killed):  # throughput counts every training sequence once, also across the kill
        for r in [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]:
            if r["kind"] == "epoch":
                assert r["samples_per_s"] * r["time_s"] == pytest.approx(1294, rel=0.01)
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
