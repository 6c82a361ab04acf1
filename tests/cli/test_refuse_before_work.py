"""Bad input is refused before any work, in one line with exit status 2, the same way in every command: unusable
``--out`` folders, state sizes beyond what the analyses can do, damaged checkpoints (evaluate and train --resume
share one path), devices that do not exist."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from ptdssm._checks import ensure_writable_dir, ensure_writable_file
from ptdssm.cli import main
from ptdssm.errors import CheckpointError, ConfigError, OutputError
from ptdssm.experiments.distributed import resolve_device

TINY = ["model.d_model=8", "model.layer.d_state=4", "model.n_layers=1", "data.batch_size=32", "data.train_subset=64",
        "data.val_subset=32", "data.test_subset=32", "train.epochs=1", "train.progress=false"]


def _sets(items=TINY) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def _one_line_error(capsys, verb: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"ptdssm {verb}: error: ")
    return err[0]


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder nobody can write to: ``chmod 555`` for a normal user; root ignores modes, so sysfs there."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    os.close(fd)
    os.unlink(probe)
    pytest.skip("running as root with no read-only folder at hand")


# ---------------------------------------------------------------------------------------------------- --out


def test_ensure_writable_dir(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(OutputError, match="afile is a file, not a folder") as e:
        ensure_writable_dir(f, "--out")
    assert "\n" not in str(e.value)
    with pytest.raises(OutputError, match=r"--out .*afile/sub/deeper cannot be created: .*afile is a file"):
        ensure_writable_dir(f / "sub" / "deeper", "--out")
    with pytest.raises(OutputError, match="--out .* is not writable"):
        ensure_writable_dir(_read_only_dir(tmp_path) / "run", "--out")
    new = tmp_path / "a" / "b"
    assert ensure_writable_dir(new, "--out") == new and not (tmp_path / "a").exists()  # checked, not created
    with pytest.raises(OutputError, match="is a folder"):
        ensure_writable_file(tmp_path, "--plot")


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "afile"
    f.write_text("not a folder")
    return f


def _forbid(monkeypatch, target: str) -> None:
    def fail(*args, **kwargs):
        raise AssertionError(f"{target} ran before the --out check")

    monkeypatch.setattr(target, fail)


@pytest.mark.parametrize("sub", ["", "sub"], ids=["file", "under-file"])
def test_train_out_refused_before_the_config_is_resolved(a_file, sub, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.cli.train.resolve_config")
    out = a_file / sub if sub else a_file
    assert main(["train", "--task", "digits", "--model", "s4d", "--out", str(out)]) == 2
    assert "--out" in _one_line_error(capsys, "train")


def test_train_library_checks_the_run_directory_before_reading_data(a_file, monkeypatch):
    """``train(cfg)`` (the API, and every torchrun rank) checks ``train.out`` itself before reading any data."""
    from ptdssm.config import load_recipe
    from ptdssm.experiments.train import train

    _forbid(monkeypatch, "ptdssm.experiments.train.build_task")
    with pytest.raises(OutputError, match="train.out"):
        train(load_recipe("digits", "s4d", [*TINY, f"train.out={a_file / 'run'}"]))


def test_train_out_read_only_folder(tmp_path, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.cli.train.resolve_config")
    ro = _read_only_dir(tmp_path)
    assert main(["train", "--task", "digits", "--out", str(ro / "run")]) == 2
    assert "is not writable" in _one_line_error(capsys, "train")


def test_robustness_out_refused_before_the_sweep(a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.experiments.robustness.robustness_sweep")
    assert main(["robustness", "--checkpoint", "no.pt", "--out", str(a_file)]) == 2
    assert "--out" in _one_line_error(capsys, "robustness")


@pytest.mark.parametrize("what", ["robustness", "transfer", "conditioning"])
def test_reproduce_out_refused_before_any_training_or_solve(what, a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.experiments.train.train")
    _forbid(monkeypatch, "ptdssm.experiments.numerics.transfer_rows")
    _forbid(monkeypatch, "ptdssm.experiments.numerics.conditioning_row")
    assert main(["reproduce", what, "--out", str(a_file / "report")]) == 2
    assert "--out" in _one_line_error(capsys, "reproduce")


@pytest.mark.parametrize("kind", ["listops", "pathfinder"])
def test_data_generate_out_refused_before_generating(kind, a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.data.generators.listops.write_listops_release")
    _forbid(monkeypatch, "ptdssm.data.generators.pathfinder.write_pathfinder_release")
    assert main(["data", "generate", kind, "--out", str(a_file), "--n", "10"]) == 2
    assert "--out" in _one_line_error(capsys, "data")


# ---------------------------------------------------------------------------------------------------- analyze --n


@pytest.mark.parametrize("argv", [
    ["analyze", "diagonalize", "--n", "100000"],
    ["analyze", "conditioning", "--n", "8", "3000"],
    ["analyze", "transfer", "--n", "100000"],
    ["reproduce", "transfer", "--n", "3000"],
])
def test_state_sizes_beyond_the_limit_are_refused_at_once(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _forbid(monkeypatch, "ptdssm.theory.ptd.perturb_then_diagonalize")
    assert main(argv) == 2
    line = _one_line_error(capsys, argv[0])
    assert "--n" in line and "limit 512" in line


def test_analyze_plot_checked_before_the_computation(a_file, capsys, monkeypatch):
    _forbid(monkeypatch, "ptdssm.cli.analyze.transfer_rows")
    assert main(["analyze", "transfer", "--n", "4", "--plot", str(a_file / "t.png")]) == 2
    assert "--plot" in _one_line_error(capsys, "analyze")


# ---------------------------------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["train", "--task", "digits", "--model", "s4d", "--out", str(out), *_sets()]) == 0
    return out


def _damaged_copy(run_dir: Path, tmp_path: Path, edit) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    for name in ("last.pt", "best.pt"):
        path = run / "checkpoints" / name
        ckpt = torch.load(path, weights_only=False)
        edit(ckpt)
        torch.save(ckpt, path)
    return run


def _wrong_shapes(ckpt: dict) -> None:
    ckpt["model"] = {k: torch.zeros(3, *v.shape) for k, v in ckpt["model"].items()}


def _garbled_state(ckpt: dict) -> None:
    if "optimizer" in ckpt:
        ckpt["optimizer"] = {"state": 5, "param_groups": "x"}
        ckpt["rng"] = ["garbage"]
    ckpt["model"] = {k: "garbage" for k in ckpt["model"]}


@pytest.mark.parametrize("edit", [_wrong_shapes, _garbled_state], ids=["wrong-shapes", "garbled"])
def test_evaluate_and_resume_report_a_damaged_checkpoint_the_same_way(edit, run_dir, tmp_path, capsys):
    run = _damaged_copy(run_dir, tmp_path, edit)
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt")]) == 2
    evaluated = _one_line_error(capsys, "evaluate")
    assert main(["train", "--resume", "--out", str(run), *_sets()]) == 2
    resumed = _one_line_error(capsys, "train")
    for line, name in ((evaluated, "best.pt"), (resumed, "last.pt")):
        assert name in line and "do not fit" in line


def test_any_unpickling_failure_is_a_checkpoint_error(run_dir, monkeypatch):
    """Whatever ``torch.load`` raises on a damaged file (a flipped byte can give MemoryError or TypeError) is one
    CheckpointError naming the file."""
    from ptdssm.experiments.checkpoint import read_checkpoint

    for exc in (MemoryError("Unable to allocate 74.5 GiB"), TypeError("'tuple' object is not callable")):
        def boom(*args, e=exc, **kwargs):
            raise e

        monkeypatch.setattr(torch, "load", boom)
        with pytest.raises(CheckpointError, match=f"last.pt: not a readable ptdssm checkpoint .*{type(exc).__name__}"):
            read_checkpoint(run_dir / "checkpoints" / "last.pt")


# ---------------------------------------------------------------------------------------------------- --device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("banana", "cuda:x", "gpu", "", "cuda:-1"):
        with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda or cuda:k"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        for spec in ("cuda", "cuda:1"):
            with pytest.raises(ConfigError, match="CUDA is unavailable here"):
                resolve_device(spec)


@pytest.mark.parametrize("verb", ["evaluate", "robustness", "generate"])
@pytest.mark.parametrize("device", ["banana", "cuda"])
def test_every_command_with_device_checks_it_first(verb, device, run_dir, tmp_path, capsys):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = [verb, "--checkpoint", str(run_dir / "checkpoints" / "best.pt"), "--device", device]
    argv += {"robustness": ["--out", str(tmp_path / "r")], "generate": ["--prompt", "hi"]}.get(verb, [])
    assert main(argv) == 2
    line = _one_line_error(capsys, verb)
    assert "--device" in line
    assert ("CUDA is unavailable" in line) if device == "cuda" else ("must be auto, cpu" in line)
    assert "checkpoint" not in line.split("--device")[0]  # never blames the checkpoint


def test_train_device_cuda_on_a_cpu_machine(capsys, monkeypatch, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "digits", "--model", "s4d", *_sets([*TINY, "train.device=cuda"])]) == 2
    assert "train.device" in (line := _one_line_error(capsys, "train")) and "CUDA is unavailable" in line
    assert main(["train", "--task", "digits", "--model", "s4d", *_sets([*TINY, "train.device=banana"])]) == 2
    assert "must be auto, cpu, cuda or cuda:k" in _one_line_error(capsys, "train")
