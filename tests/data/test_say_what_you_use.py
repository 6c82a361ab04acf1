"""Every task refuses what it would not use, in one line: unknown ``data.options``, a ``--data-dir`` that does not
exist (no silent fallback to other data), and text files that are not UTF-8 (file and line named)."""

from __future__ import annotations

import pytest

from ptdssm.cli import main
from ptdssm.config import DataConfig
from ptdssm.data import build_task, task_info
from ptdssm.data.registry import available_tasks, get_task
from ptdssm.errors import DataError


def _library_tasks() -> list[str]:
    return [n for n in available_tasks() if ":" not in n and get_task(n).info.__module__.startswith("ptdssm.")]


@pytest.mark.parametrize("task", _library_tasks())
def test_unknown_option_is_refused_by_every_task(task):
    """Checked from the task's info alone (no data read), so a config fails when it is loaded."""
    with pytest.raises(DataError, match=r"data\.options\.no_such_option") as e:
        task_info(DataConfig(task=task, options={"no_such_option": 1}))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("task", _library_tasks())
def test_missing_data_dir_is_refused_by_every_task(task, tmp_path):
    with pytest.raises(DataError, match="missing-folder .*does not exist") as e:
        build_task(DataConfig(task=task, data_dir=str(tmp_path / "missing-folder")))
    assert "\n" not in str(e.value)


def test_a_data_dir_without_the_files_never_falls_back(tmp_path, capsys):
    """``--data-dir D`` reads D (and D/fashion-mnist), never the Debian package's folder behind the user's back."""
    with pytest.raises(FileNotFoundError, match="without --data-dir, task 'fashion-mnist' reads") as e:
        build_task(DataConfig(task="fashion-mnist", data_dir=str(tmp_path)))
    assert str(tmp_path) in str(e.value)
    assert main(["data", "check", "--task", "fashion-mnist", "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_cli_refuses_an_unknown_option_of_an_image_task(capsys):
    assert main(["data", "check", "--task", "digits", "--option", "foo=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.options.foo" in err[0] and "test_fraction" in err[0]


def _corrupt_listops(root):
    from ptdssm.data.generators.listops import write_listops_release

    folder = write_listops_release(root, 12, seed=0)["folder"]
    path = root / "listops-1000" / "basic_train.tsv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:7] + b"\xff\xfe" + lines[3][7:]
    path.write_bytes(b"\n".join(lines))
    return folder, path


def test_a_corrupt_listops_file_names_the_file_and_line(tmp_path, capsys):
    _, path = _corrupt_listops(tmp_path)
    assert main(["data", "check", "--task", "listops", "--data-dir", str(tmp_path), "--option", "cache=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path}:4: not UTF-8 text (byte 0xff at column 8" in err[0]


def test_csv_and_ts_files_that_are_not_utf8_name_the_file_and_line(tmp_path):
    from ptdssm.data.files.tables import read_csv_split
    from ptdssm.data.files.ts_format import read_ts_header

    csv = tmp_path / "train.csv"
    csv.write_bytes(b"1,0.5,0.25\n0,0.1,\xe9\n")
    with pytest.raises(DataError, match=r"train.csv:2: not UTF-8 text \(byte 0xe9 at column 7"):
        read_csv_split(csv)
    ts = tmp_path / "X_TRAIN.ts"
    ts.write_bytes(b"@problemName X\n@timeStamps false\n@univariate true\n@classLabel true 0 1\n@data\n1,\x992:0\n")
    with pytest.raises(DataError, match=r"X_TRAIN.ts:6: not UTF-8 text \(byte 0x99"):
        read_ts_header(ts)
