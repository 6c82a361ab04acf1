"""Checkpoint schema: atomic writes, one-line typed errors for missing / truncated / foreign / other-version files."""

import pytest
import torch

from ptdssm.cli import main
from ptdssm.errors import CheckpointError
from ptdssm.experiments.checkpoint import (
    CHECKPOINT_VERSION,
    atomic_save,
    atomic_write_text,
    best_payload,
    read_checkpoint,
)


def _payload(version=CHECKPOINT_VERSION):
    p = best_payload(config={"model": {}}, task_info={"name": "t", "n_classes": 2, "seq_len": 4, "d_input": 1},
                     model={"w": torch.ones(3)}, epoch=2, val={"loss": 0.5, "acc": 0.75, "n": 8})
    p["version"] = version
    return p


def test_atomic_writes_round_trip_and_leave_no_temp_files(tmp_path):
    path = tmp_path / "best.pt"
    atomic_save(_payload(), path)
    ckpt = read_checkpoint(path)
    assert ckpt["version"] == CHECKPOINT_VERSION and ckpt["kind"] == "best" and ckpt["epoch"] == 2
    assert torch.equal(ckpt["model"]["w"], torch.ones(3))
    atomic_write_text("a\n", tmp_path / "sub" / "results.json")
    atomic_write_text("b\n", tmp_path / "sub" / "results.json")
    assert (tmp_path / "sub" / "results.json").read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["best.pt", "results.json", "sub"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save(_payload(), path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for an unpicklable object
        atomic_save({"bad": lambda: None}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_unknown_schema_version_is_refused_naming_both_versions(tmp_path, capsys):
    path = tmp_path / "future.pt"
    torch.save(_payload(version=CHECKPOINT_VERSION + 7), path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert f"has schema version {CHECKPOINT_VERSION + 7}" in msg
    assert f"this ptdssm reads version {CHECKPOINT_VERSION}" in msg and "\n" not in msg
    assert main(["evaluate", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"schema version {CHECKPOINT_VERSION + 7}" in err and err.count("\n") == 1


@pytest.mark.parametrize("kind", ["missing", "truncated", "foreign", "not-a-dict", "no-version"])
def test_unreadable_files_give_one_line_checkpoint_errors(tmp_path, kind):
    path = tmp_path / "c.pt"
    if kind == "truncated":
        atomic_save(_payload(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "foreign":
        path.write_bytes(b"not a checkpoint at all")
    elif kind == "not-a-dict":
        torch.save([1, 2, 3], path)
    elif kind == "no-version":
        p = _payload()
        del p["version"]
        torch.save(p, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_resume_needs_a_last_checkpoint(tmp_path):
    path = tmp_path / "best.pt"
    atomic_save(_payload(), path)
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        read_checkpoint(path, resume=True)


def test_version_1_checkpoints_are_read(tmp_path):
    v1 = {"version": 1, "config": {}, "task_info": {}, "model": {}, "epoch": 3, "global_step": 30,
          "optimizer": {}, "scheduler": {}, "rng": [], "best_val_acc": 0.5, "best_epoch": 2, "metric_offsets": {}}
    torch.save(v1, tmp_path / "last.pt")
    ckpt = read_checkpoint(tmp_path / "last.pt", resume=True)
    assert ckpt["step_in_epoch"] == 0 and ckpt["epoch_sums"] is None
    assert ckpt["best"]["epoch"] == 2 and ckpt["best"]["val"] == {"acc": 0.5}


@pytest.mark.parametrize("key", ["best_epoch", "metric_offsets", "global_step"])
def test_version_1_last_checkpoint_without_a_resume_key_is_a_one_line_error(tmp_path, key):
    v1 = {"version": 1, "config": {}, "task_info": {}, "model": {}, "epoch": 3, "global_step": 30,
          "optimizer": {}, "scheduler": {}, "rng": [], "best_val_acc": 0.5, "best_epoch": 2, "metric_offsets": {}}
    del v1[key]
    torch.save(v1, tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / "last.pt", resume=True)
    msg = str(info.value)
    assert f"lacks {key}" in msg and "last.pt" in msg and "\n" not in msg
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 3  # still readable for evaluate
