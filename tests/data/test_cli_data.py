"""``ptdssm data generate`` and ``ptdssm data check``."""

from __future__ import annotations

import json

import pytest

from ptdssm.cli import main


@pytest.fixture(autouse=True)
def _data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PTDSSM_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)


def test_generate_listops_then_check(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["data", "generate", "listops", "--out", str(out), "--n", "20", "--min-length", "5",
                 "--max-length", "40", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {"train": 20, "val": 2, "test": 2} and doc["stats"]["length"]["max"] < 40
    assert main(["data", "check", "--task", "listops", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "found:" in text and "listops-1000" in text and "train 20, val 2, test 2" in text
    assert main(["data", "check", "--task", "listops", "--data-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sizes"]["train"] == 20 and doc["vocab_built"] <= 18


def test_generate_pathfinder_then_check(tmp_path, capsys):
    assert main(["data", "generate", "pathfinder", "--out", str(tmp_path), "--n", "6", "--per-batch", "4"]) == 0
    assert "6 images" in capsys.readouterr().out
    assert main(["data", "check", "--task", "pathfinder", "--data-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sum(doc["sizes"].values()) == 6 and doc["example_shape"] == [1024, 1]


def test_check_reports_exactly_what_is_missing(tmp_path, capsys):
    (tmp_path / "tsv_data").mkdir()
    (tmp_path / "tsv_data/new_aan_pairs.train.tsv").write_text("1\ta\tb\tc\td\n")
    assert main(["data", "check", "--task", "retrieval", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "new_aan_pairs.eval.tsv" in err and "new_aan_pairs.test.tsv" in err and str(tmp_path) in err
    assert main(["data", "check", "--task", "image"]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["data", "check", "--task", "listops", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["data", "check", "--task", "text", "--data-dir", str(tmp_path), "--option", "bogus=1"]) == 2
    assert "unknown option" in capsys.readouterr().err


def test_check_file_tasks(tmp_path, capsys):
    import numpy as np

    (tmp_path / "Toy_TRAIN.ts").write_text("@problemName Toy\n@univariate true\n@equalLength true\n@seriesLength 3\n"
                                           "@classLabel true a b\n@data\n1,2,3:a\n3,2,1:b\n1,1,2:a\n2,1,1:b\n")
    (tmp_path / "Toy_TEST.ts").write_text("@problemName Toy\n@classLabel true a b\n@data\n1,2,3:a\n3,2,1:b\n")
    assert main(["data", "check", "--task", "ucr", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "Toy_TRAIN.ts" in text and "classes (2): 0=a, 1=b" in text and "series length: 3 to 3" in text
    assert "train 4, val 0, test 2" in text  # round(0.1 * 4) = 0 held out
    assert main(["data", "check", "--task", "ucr", "--data-dir", str(tmp_path), "--option", "normalize=global",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["classes"] == ["a", "b"] and doc["d_input"] == 1 and len(doc["normalization"]["mean"]) == 1
    with open(tmp_path / "Toy_TEST.ts", "a") as f:
        f.write("1,2,3:c\n")
    assert main(["data", "check", "--task", "ucr", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Toy_TEST.ts:6:" in err and len(err.strip().splitlines()) == 1
    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "data.npz", x_train=np.zeros((4, 6, 2)), y_train=np.array([0.5, 1.0, 1.5, 2.0]),
             x_test=np.zeros((2, 6, 2)), y_test=np.array([1.0, 2.0]))
    assert main(["data", "check", "--task", "arrays", "--data-dir", str(npz)]) == 0
    assert "regression: 1 output(s), loss mse" in capsys.readouterr().out
