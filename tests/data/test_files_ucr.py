"""The ``ucr`` task: the UCR/UEA ``.ts`` reader, its discovery of files, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import build_task, task_info
from ptdssm.data.files import read_ts, read_ts_header
from ptdssm.errors import DataError

HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 4
@classLabel true up down
@data
"""
TRAIN = [([0.5, 1.0, 1.5, 2.0], "up"), ([2.0, 1.0, 0.0, -1.0], "down"), ([1.0, 2.0, 3.0, 4.0], "up"),
         ([4.0, 3.0, 2.5, 2.0], "down"), ([0.0, 0.25, 0.5, 0.75], "up"), ([9.0, 8.0, 7.0, 6.0], "down")]
TEST = [([1.0, 1.5, 2.0, 2.5], "up"), ([3.0, 2.0, 1.0, 0.0], "down")]


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch):
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)


def _lines(cases):
    return "".join(",".join(repr(v) for v in vals) + f":{lab}\n" for vals, lab in cases)


def write_toy(folder, name="Toy", header=HEADER, train=TRAIN, test=TEST):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_TRAIN.ts").write_text(header + _lines(train))
    (folder / f"{name}_TEST.ts").write_text(header + _lines(test))
    return folder


def cfg(folder, **kw):
    return DataConfig(task="ucr", data_dir=str(folder), **kw)


def test_parse_values_and_labels(tmp_path):
    write_toy(tmp_path)
    f = read_ts(tmp_path / "Toy_TRAIN.ts")
    assert f.header.problem == "Toy" and f.header.labels == ["up", "down"] and f.header.series_length == 4
    assert f.labels == [lab for _, lab in TRAIN] and f.lines == list(range(10, 16))
    for s, (vals, _) in zip(f.series, TRAIN, strict=True):
        assert s.shape == (4, 1) and s[:, 0].tolist() == vals


def test_task_info_and_datasets(tmp_path):
    write_toy(tmp_path)
    c = cfg(tmp_path, val_fraction=1 / 3)
    info = task_info(c)
    assert (info.n_classes, info.seq_len, info.d_input, info.loss, info.head) == (2, 4, 1, "cross-entropy", "pooled")
    data = build_task(c)
    assert data.sizes() == {"train": 4, "val": 2, "test": 2}
    assert data.extras["classes"] == ["up", "down"] and data.extras["problem"] == "Toy"
    val_labels = sorted(int(data.val[i][1]) for i in range(2))
    assert val_labels == [0, 1]  # stratified: one of each class
    seen = {tuple(data.train[i][0][:, 0].tolist()): int(data.train[i][1]) for i in range(4)}
    seen.update({tuple(data.val[i][0][:, 0].tolist()): int(data.val[i][1]) for i in range(2)})
    assert seen == {tuple(v): ["up", "down"].index(lab) for v, lab in TRAIN}
    assert data.test[1][0][:, 0].tolist() == TEST[1][0] and int(data.test[1][1]) == 1
    again = build_task(cfg(tmp_path, val_fraction=1 / 3))
    assert torch.equal(again.val.x, data.val.x)  # seeded
    other = [build_task(cfg(tmp_path, val_fraction=1 / 3, split_seed=s)).val.x for s in range(6)]
    assert any(not torch.equal(o, data.val.x) for o in other)


MULTI = """@problemName Multi
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2 3
@data
1,2,3:10,20,30:1
4,5:40,50:2
6,7,8,?:60,70,80,?:3
1,2:3,4:1
"""


def test_multivariate_variable_length_and_trailing_missing(tmp_path):
    (tmp_path / "Multi_TRAIN.ts").write_text(MULTI)
    (tmp_path / "Multi_TEST.ts").write_text(MULTI)
    info = task_info(cfg(tmp_path))
    assert (info.d_input, info.seq_len, info.n_classes) == (2, 3, 3)
    data = build_task(cfg(tmp_path, val_fraction=0.0))
    assert data.sizes() == {"train": 4, "val": 0, "test": 4}
    x, y, n = data.test[1]
    assert n == 2 and x.shape == (3, 2) and x.tolist() == [[4, 40], [5, 50], [0, 0]] and int(y) == 1
    assert data.test[2][2] == 3 and data.test[2][0].tolist() == [[6, 60], [7, 70], [8, 80]]
    assert data.extras["length_range"] == [2, 3]


def test_missing_values_error_or_zero(tmp_path):
    text = MULTI.replace("4,5:40,50:2", "4,?,5:40,41,50:2")
    (tmp_path / "Multi_TRAIN.ts").write_text(text)
    (tmp_path / "Multi_TEST.ts").write_text(MULTI)
    with pytest.raises(DataError, match=r"Multi_TRAIN\.ts:10: missing value .* time step 1"):
        build_task(cfg(tmp_path))
    data = build_task(cfg(tmp_path, val_fraction=0.0, options={"missing": "zero"}))
    assert data.train[1][0].tolist() == [[4, 40], [0, 41], [5, 50]]


def test_regression_archive(tmp_path):
    header = HEADER.replace("@classLabel true up down", "@classLabel false\n@targetLabel true")
    write_toy(tmp_path, header=header, train=[(v, str(i + 0.5)) for i, (v, _) in enumerate(TRAIN)],
              test=[(v, "2.25") for v, _ in TEST])
    info = task_info(cfg(tmp_path))
    assert (info.loss, info.n_classes) == ("mse", 1)
    data = build_task(cfg(tmp_path, val_fraction=0.0))
    assert data.train.y.dtype == torch.float32 and data.train.y[:, 0].tolist() == [i + 0.5 for i in range(6)]


def test_series_normalization(tmp_path):
    write_toy(tmp_path)
    data = build_task(cfg(tmp_path, val_fraction=0.0, options={"normalize": "series"}))
    for i, (vals, _) in enumerate(TRAIN):
        v = np.asarray(vals)
        np.testing.assert_allclose(data.train[i][0][:, 0].numpy(), (v - v.mean()) / v.std(), rtol=1e-6)
    data = build_task(cfg(tmp_path, val_fraction=0.0, options={"normalize": "global"}))
    allv = np.concatenate([v for v, _ in TRAIN])
    np.testing.assert_allclose(data.test[0][0][:, 0].numpy(), (np.asarray(TEST[0][0]) - allv.mean()) / allv.std(),
                               rtol=1e-6)
    assert data.extras["normalization"]["mean"] == pytest.approx([allv.mean()])


def test_seq_len_cuts_and_subsets(tmp_path):
    write_toy(tmp_path)
    data = build_task(cfg(tmp_path, seq_len=3, val_fraction=0.0, train_subset=2))
    assert data.info.seq_len == 3 and data.train.x.shape == (2, 3, 1) and data.extras["truncated"] == 4


def test_file_discovery(tmp_path):
    write_toy(tmp_path / "archive" / "Toy")
    data = build_task(cfg(tmp_path / "archive", options={"name": "Toy"}))
    assert data.extras["files"]["train"].endswith("Toy_TRAIN.ts")
    assert task_info(cfg(tmp_path / "archive")).n_classes == 2  # one problem one level down: found
    write_toy(tmp_path / "archive" / "Other", name="Other")
    with pytest.raises(DataError, match="several problems .*Other, Toy.*data.options.name"):
        task_info(cfg(tmp_path / "archive"))
    assert task_info(DataConfig(task="ucr", options={"path": str(tmp_path / "archive/Toy/Toy_TRAIN.ts")})).seq_len == 4
    (tmp_path / "archive/Toy/Toy_TEST.ts").unlink()
    with pytest.raises(DataError, match="Toy_TEST.ts is missing"):
        task_info(cfg(tmp_path / "archive", options={"name": "Toy"}))
    with pytest.raises(DataError, match="no Nope_TRAIN.ts"):
        task_info(cfg(tmp_path / "archive", options={"name": "Nope"}))
    with pytest.raises(DataError, match="--data-dir"):
        task_info(DataConfig(task="ucr"))
    with pytest.raises(DataError, match="unknown option.*data.options.bogus"):
        task_info(cfg(tmp_path, options={"bogus": 1}))


@pytest.mark.parametrize("line, match", [
    ("1.0,2.0,3.0:up", r"Toy_TRAIN\.ts:16: 3 values per dimension, but @seriesLength is 4 \(truncated line\?\)"),
    ("1.0,2.0,3.0,4.0:5.0,6.0,7.0,8.0:up", r"Toy_TRAIN\.ts:16: 2 dimension\(s\) and a label, expected 1"),
    ("1.0,2.0,3.0,4.0:sideways", r"Toy_TRAIN\.ts:16: unknown label 'sideways' \(@classLabel: up down\)"),
    ("1.0,,3.0,4.0:up", r"Toy_TRAIN\.ts:16: dimension 1, value 2: empty value \(truncated line\?\)"),
    ("1.0,x,3.0,4.0:up", r"Toy_TRAIN\.ts:16: dimension 1, value 2: value 'x' is not a number"),
    ("1.0,2.0,3.0,4.0:", r"Toy_TRAIN\.ts:16: missing label"),
    ("1.0,NaN,3.0,4.0:up", r"Toy_TRAIN\.ts:16: missing value \(NaN or '\?'\) at time step 1"),
    ("?,?,?,?:up", r"Toy_TRAIN\.ts:16: a case with no observed value"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, match):
    write_toy(tmp_path)
    with open(tmp_path / "Toy_TRAIN.ts", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=match) as exc:
        build_task(cfg(tmp_path))
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("header, match", [
    (HEADER.replace("@data\n", ""), r":9: data before @data"),
    (HEADER.replace("@timeStamps false", "@timeStamps true"), "@timeStamps true is not supported"),
    (HEADER.replace("@missing false", "@missing maybe"), r":4: @missing expects true or false"),
    (HEADER.replace("@seriesLength 4", "@seriesLength four"), r":7: @serieslength expects an integer"),
    (HEADER.replace("@problemName Toy", "@problem Toy"), r":2: unknown header tag '@problem'"),
    (HEADER.replace("@classLabel true up down", "@classLabel true"), "lists no labels"),
    (HEADER.replace("@univariate true", "@univariate true\n@dimensions 3"), "@univariate true but @dimensions 3"),
])
def test_bad_headers(tmp_path, header, match):
    write_toy(tmp_path, header=header)
    with pytest.raises(DataError, match=match):
        read_ts_header(tmp_path / "Toy_TRAIN.ts")


def test_no_labels_and_no_cases(tmp_path):
    write_toy(tmp_path, header=HEADER.replace("@classLabel true up down", "@classLabel false"),
              train=[([1.0, 2.0, 3.0, 4.0], "")][:0])
    with pytest.raises(DataError, match=r"no labels"):
        task_info(cfg(tmp_path))
    with pytest.raises(DataError, match=r"no cases after @data"):
        read_ts(tmp_path / "Toy_TRAIN.ts")
    (tmp_path / "Toy_TRAIN.ts").write_text("@problemName Toy\n")
    with pytest.raises(DataError, match=r"Toy_TRAIN.ts: no @data line"):
        read_ts(tmp_path / "Toy_TRAIN.ts")
