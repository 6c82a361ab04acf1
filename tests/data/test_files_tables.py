"""The ``arrays`` (.npz / .npy) and ``csv`` tasks, the stratified split and the shared options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import build_task, collate, task_info
from ptdssm.data.files import npz_shapes, stratified_split
from ptdssm.errors import DataError


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch):
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)


def _toy_arrays(n_train=12, n_test=4, L=5, d=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (L,) if d is None else (L, d)
    return {"x_train": rng.normal(size=(n_train, *shape)).astype(np.float32),
            "y_train": np.array(["cat", "dog", "emu"] * (n_train // 3)),
            "x_test": rng.normal(size=(n_test, *shape)).astype(np.float32),
            "y_test": np.array(["dog", "cat", "emu", "dog"][:n_test])}


def acfg(folder, **kw):
    return DataConfig(task="arrays", data_dir=str(folder), **kw)


# ------------------------------------------------------------------------------------------------------ stratified

def test_stratified_split_proportions_and_seed():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    keep, held = stratified_split(labels, 0.1, seed=3)
    assert len(held) == 10 and np.bincount(labels[held]).tolist() == [5, 3, 2]
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    again = stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(stratified_split(labels, 0.1, seed=4)[1], held)
    # largest remainders: 0.3 * (5, 3, 2) = (1.5, 0.9, 0.6) -> floor (1, 0, 0), 3 held in all: +1 to class 1, 2
    small = np.array([0] * 5 + [1] * 3 + [2] * 2)
    _, h = stratified_split(small, 0.3, seed=0)
    assert np.bincount(small[h], minlength=3).tolist() == [1, 1, 1]
    _, h = stratified_split(small, 0.2, seed=0)  # (1.0, 0.6, 0.4): floor (1, 0, 0), 2 held: +1 to class 1
    assert np.bincount(small[h], minlength=3).tolist() == [1, 1, 0]


# ----------------------------------------------------------------------------------------------------------- arrays

def test_data_npz_values_labels_and_shapes(tmp_path):
    arr = _toy_arrays()
    np.savez(tmp_path / "data.npz", **arr)
    shapes = npz_shapes(tmp_path / "data.npz")
    assert shapes["x_train"][0] == (12, 5) and shapes["y_test"][0] == (4,)
    info = task_info(acfg(tmp_path))
    assert (info.n_classes, info.seq_len, info.d_input, info.loss) == (3, 5, 1, "cross-entropy")
    data = build_task(acfg(tmp_path, val_fraction=0.25))
    assert data.extras["classes"] == ["cat", "dog", "emu"]
    assert data.sizes() == {"train": 9, "val": 3, "test": 4}
    assert sorted(data.val.y.tolist()) == [0, 1, 2]
    np.testing.assert_array_equal(data.test.x[:, :, 0].numpy(), arr["x_test"])
    assert data.test.y.tolist() == [1, 0, 2, 1]
    rows = {tuple(np.round(r, 6)): i for i, r in enumerate(arr["x_train"].tolist())}
    for ds in (data.train, data.val):
        for x, y in zip(ds.x, ds.y, strict=True):
            i = rows[tuple(np.round(x[:, 0].tolist(), 6))]
            assert ["cat", "dog", "emu"][int(y)] == arr["y_train"][i]


def test_split_files_npy_and_given_validation(tmp_path):
    arr = _toy_arrays(d=2)
    for k in ("train", "test"):
        np.savez(tmp_path / f"{k}.npz", x=arr[f"x_{k}"], y=arr[f"y_{k}"])
    info = task_info(acfg(tmp_path))
    assert (info.d_input, info.seq_len) == (2, 5)
    np.savez(tmp_path / "val.npz", x=arr["x_test"][:2], y=arr["y_test"][:2])
    data = build_task(acfg(tmp_path))
    assert data.sizes() == {"train": 12, "val": 2, "test": 4}
    np.testing.assert_array_equal(data.val.x.numpy(), arr["x_test"][:2])
    npy = tmp_path / "npy"
    npy.mkdir()
    for k, v in arr.items():
        np.save(npy / f"{k}.npy", v)
    data = build_task(acfg(npy, val_fraction=0.0))
    np.testing.assert_array_equal(data.train.x.numpy(), arr["x_train"])
    explicit = build_task(DataConfig(task="arrays", data_dir=str(tmp_path),
                                     options={"train": "train.npz", "test": "test.npz"}, val_fraction=0.0))
    np.testing.assert_array_equal(explicit.train.x.numpy(), arr["x_train"])


def test_regression_targets(tmp_path):
    arr = _toy_arrays()
    arr["y_train"] = np.linspace(0, 1, 12)
    arr["y_test"] = np.array([0.5, 0.25, 1.0, 2.0])
    np.savez(tmp_path / "data.npz", **arr)
    info = task_info(acfg(tmp_path))
    assert (info.loss, info.n_classes, info.head) == ("mse", 1, "pooled")
    data = build_task(acfg(tmp_path, val_fraction=0.0))
    assert data.train.y.dtype == torch.float32 and data.train.y[:, 0].tolist() == pytest.approx(arr["y_train"])
    assert collate([data.test[0], data.test[1]])["y"].tolist() == [[0.5], [0.25]]
    arr["y_train"] = np.stack([arr["y_train"], -arr["y_train"]], axis=1)
    arr["y_test"] = np.zeros((4, 2))
    np.savez(tmp_path / "data.npz", **arr)
    assert task_info(acfg(tmp_path)).n_classes == 2
    arr = _toy_arrays()
    arr["y_train"] = np.array([1.0, 2.0, 3.0] * 4)
    arr["y_test"] = np.array([1.0, 2.0, 3.0, 1.0])
    np.savez(tmp_path / "data.npz", **arr)
    info = task_info(acfg(tmp_path, options={"target": "class"}))
    assert (info.loss, info.n_classes) == ("cross-entropy", 3)


def test_trailing_nan_is_padding_and_lengths_arrays(tmp_path):
    arr = _toy_arrays()
    arr["x_train"][0, 3:] = np.nan
    arr["x_test"][1, 1:] = np.nan
    np.savez(tmp_path / "data.npz", **arr)
    data = build_task(acfg(tmp_path, val_fraction=0.0))
    x, y, n = data.train[0]
    assert n == 3 and x[3:].abs().sum() == 0 and torch.equal(x[:3, 0], torch.from_numpy(arr["x_train"][0, :3]))
    assert data.test[1][2] == 1
    arr = _toy_arrays()
    np.savez(tmp_path / "data.npz", **arr, lengths_test=np.array([5, 2, 5, 1]))
    data = build_task(acfg(tmp_path, val_fraction=0.0))
    assert data.test.lengths.tolist() == [5, 2, 5, 1] and data.test.x[3, 1:].abs().sum() == 0


def test_array_errors(tmp_path):
    arr = _toy_arrays()
    arr["x_train"][4, 2] = np.nan
    np.savez(tmp_path / "data.npz", **arr)
    with pytest.raises(DataError, match=r"data\.npz\[x_train\]\[4\]: missing value .* time step 2"):
        build_task(acfg(tmp_path))
    data = build_task(acfg(tmp_path, val_fraction=0.0, options={"missing": "zero", "normalize": "series"}))
    assert data.train.x[4, 2, 0] == 0
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros(3), np.zeros(4)
    np.savez(tmp_path / "data.npz", x_train=ragged, y_train=np.array([0, 1]), x_test=ragged, y_test=np.array([0, 1]))
    with pytest.raises(DataError, match=r"data\.npz: x_train is an object \(ragged\) array"):
        build_task(acfg(tmp_path))
    arr = _toy_arrays()
    arr["y_train"] = arr["y_train"][:-1]
    np.savez(tmp_path / "data.npz", **arr)
    with pytest.raises(DataError, match=r"x has 12 series but y has shape \(11,\)"):
        build_task(acfg(tmp_path))
    arr = _toy_arrays()
    del arr["y_test"]
    np.savez(tmp_path / "data.npz", **arr)
    with pytest.raises(DataError, match=r"no array 'y_test' to go with 'x_test'"):
        task_info(acfg(tmp_path))
    (tmp_path / "data.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"data\.npz: not a readable \.npz file"):
        task_info(acfg(tmp_path))
    (tmp_path / "data.npz").unlink()
    with pytest.raises(DataError, match=r"no data\.npz, train\.npz/test\.npz or x_train\.npy"):
        task_info(acfg(tmp_path))


# -------------------------------------------------------------------------------------------------------------- csv

def test_csv_header_string_labels_and_variable_length(tmp_path):
    (tmp_path / "train.csv").write_text("label,t0,t1,t2\nup,1,2,3\ndown,3,2,1\nup,0,1,\ndown,5,4,3\n")
    (tmp_path / "test.csv").write_text("up,1,1.5,2\ndown,2,1,0\n")
    c = DataConfig(task="csv", data_dir=str(tmp_path), val_fraction=0.0)
    info = task_info(c)
    assert (info.n_classes, info.seq_len, info.d_input) == (2, 3, 1)
    data = build_task(c)
    assert data.extras["classes"] == ["down", "up"]
    assert data.train.y.tolist() == [1, 0, 1, 0] and data.train.lengths.tolist() == [3, 3, 2, 3]
    assert data.train.x[:, :, 0].tolist() == [[1, 2, 3], [3, 2, 1], [0, 1, 0], [5, 4, 3]]
    assert data.test.x[0, :, 0].tolist() == [1, 1.5, 2]


def test_csv_label_last_integer_and_regression_labels(tmp_path):
    (tmp_path / "train.csv").write_text("1,2,3,7\n4,5,6,-1\n")
    (tmp_path / "test.csv").write_text("0,0,0,7\n")
    data = build_task(DataConfig(task="csv", data_dir=str(tmp_path), val_fraction=0.0,
                                 options={"label_column": "last"}))
    assert data.extras["classes"] == [-1, 7] and data.train.y.tolist() == [1, 0]
    assert data.train.x[1, :, 0].tolist() == [4, 5, 6]
    (tmp_path / "train.csv").write_text("0.5,1,2\n1.5,3,4\n")
    (tmp_path / "test.csv").write_text("2,1,1\n")
    info = task_info(DataConfig(task="csv", data_dir=str(tmp_path)))
    assert (info.loss, info.n_classes) == ("mse", 1)


@pytest.mark.parametrize("row, match", [
    ("up,1,x,3", r"train\.csv:3: value 'x' is not a number"),
    (",1,2,3", r"train\.csv:3: empty label"),
    ("up", r"train\.csv:3: a row with a label but no values"),
    ("up,1,,3", r"train\.csv:3: missing value"),
    ("up,1,inf,3", r"train\.csv:3: holds inf"),
])
def test_csv_errors_name_file_and_line(tmp_path, row, match):
    (tmp_path / "train.csv").write_text(f"up,1,2,3\ndown,3,2,1\n{row}\n")
    (tmp_path / "test.csv").write_text("up,1,2,3\n")
    with pytest.raises(DataError, match=match):
        build_task(DataConfig(task="csv", data_dir=str(tmp_path)))


def test_csv_missing_files_and_bad_options(tmp_path):
    (tmp_path / "train.csv").write_text("up,1,2,3\n")
    with pytest.raises(DataError, match=r"test\.csv is missing"):
        task_info(DataConfig(task="csv", data_dir=str(tmp_path)))
    (tmp_path / "test.csv").write_text("up,1,2,3\n")
    with pytest.raises(DataError, match="at least 2"):
        task_info(DataConfig(task="csv", data_dir=str(tmp_path)))
    with pytest.raises(DataError, match="normalize .* must be one of none, series, global"):
        task_info(DataConfig(task="csv", data_dir=str(tmp_path), options={"normalize": "minmax"}))
    with pytest.raises(DataError, match="label_column"):
        task_info(DataConfig(task="csv", data_dir=str(tmp_path), options={"label_column": 2}))
    with pytest.raises(DataError, match="train and data.options.test go together"):
        task_info(DataConfig(task="csv", options={"train": str(tmp_path / "train.csv")}))
