"""Image data: the IDX reader on files the tests write, MNIST/psMNIST layouts, Fashion-MNIST, digits, collate."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import TaskData, TaskInfo, available_tasks, build_task, collate, register_task, task_info
from ptdssm.data.images import (
    FASHION_MNIST_DIR,
    IDXFormatError,
    bitreversal_permutation,
    find_idx_files,
    read_idx,
)


def _write_idx(path: Path, arr: np.ndarray, *, gz: bool, code: int = 0x08) -> None:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def _fake_mnist(root: Path, n_train: int = 40, n_test: int = 10, gz: bool = True) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    ytr = (np.arange(n_train) % 10).astype(np.uint8)
    xte = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    yte = (np.arange(n_test) % 10).astype(np.uint8)
    sfx = ".gz" if gz else ""
    root.mkdir(parents=True, exist_ok=True)
    _write_idx(root / f"train-images-idx3-ubyte{sfx}", xtr, gz=gz)
    _write_idx(root / f"train-labels-idx1-ubyte{sfx}", ytr, gz=gz)
    _write_idx(root / f"t10k-images-idx3-ubyte{sfx}", xte, gz=gz)
    _write_idx(root / f"t10k-labels-idx1-ubyte{sfx}", yte, gz=gz)
    return xtr, ytr, xte, yte


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", a, gz=gz)
    np.testing.assert_array_equal(read_idx(tmp_path / "a", expect_ndim=3), a)
    f = np.linspace(-1, 1, 6, dtype=np.float32)
    _write_idx(tmp_path / "f", f, gz=gz, code=0x0D)
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), f)


def test_read_idx_rejects_corrupt_files(tmp_path):
    a = np.zeros((3, 4, 4), dtype=np.uint8)
    _write_idx(tmp_path / "ok", a, gz=False)
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "magic").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(IDXFormatError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(IDXFormatError, match="data bytes"):
        read_idx(tmp_path / "short")
    with pytest.raises(IDXFormatError, match="dimensions"):
        read_idx(tmp_path / "ok", expect_ndim=1)
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"garbage" * 3)
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(tmp_path / "badgz")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def test_missing_files_error_lists_what_was_searched(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        find_idx_files([tmp_path / "a", tmp_path / "b"], "train")
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path / "a") in msg
    assert str(tmp_path / "b" / "MNIST" / "raw") in msg
    with pytest.raises(FileNotFoundError, match="train-labels"):
        build_task(DataConfig(task="mnist", data_dir=str(tmp_path)))


def test_label_count_mismatch(tmp_path):
    _fake_mnist(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(IDXFormatError, match="labels"):
        build_task(DataConfig(task="mnist", data_dir=str(tmp_path)))


def test_bitreversal_permutation():
    p = bitreversal_permutation(8)
    np.testing.assert_array_equal(p, [0, 4, 2, 6, 1, 5, 3, 7])
    p784 = bitreversal_permutation(784)
    assert sorted(p784.tolist()) == list(range(784)) and p784[1] == 512


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_layouts_and_split(tmp_path, gz):
    xtr, ytr, xte, yte = _fake_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    d = build_task(DataConfig(task="mnist", data_dir=str(tmp_path), val_fraction=0.25, split_seed=1))
    assert d.sizes() == {"train": 30, "val": 10, "test": 10} and d.info.seq_len == 784
    x, y = d.test[3]
    assert x.shape == (784, 1) and int(y) == yte[3]
    np.testing.assert_allclose(x[:, 0].numpy(), xte[3].reshape(-1) / 255.0, rtol=1e-6)
    # seeded split: same seed same split, train and val disjoint and covering
    d2 = build_task(DataConfig(task="mnist", data_dir=str(tmp_path), val_fraction=0.25, split_seed=1))
    assert torch.equal(d.val.indices, d2.val.indices)
    assert sorted(d.train.indices.tolist() + d.val.indices.tolist()) == list(range(40))
    # 1024: zero-padded 32x32
    d = build_task(DataConfig(task="mnist", data_dir=str(tmp_path), seq_len=1024))
    x, _ = d.test[0]
    img = x[:, 0].reshape(32, 32).numpy()
    np.testing.assert_allclose(img[2:30, 2:30], xte[0] / 255.0, rtol=1e-6)
    assert img[:2].sum() == 0 and img[:, 30:].sum() == 0
    # psMNIST: bit-reversal permutation of the 784 pixels
    d = build_task(DataConfig(task="psmnist", data_dir=str(tmp_path)))
    x, _ = d.test[0]
    np.testing.assert_allclose(x[:, 0].numpy(), (xte[0].reshape(-1) / 255.0)[bitreversal_permutation(784)], rtol=1e-6)
    with pytest.raises(ValueError, match="seq_len"):
        build_task(DataConfig(task="mnist", data_dir=str(tmp_path), seq_len=1000))


def test_subsets_and_normalize(tmp_path):
    _fake_mnist(tmp_path)
    d = build_task(DataConfig(task="mnist", data_dir=str(tmp_path), train_subset=7, test_subset=4, normalize=True))
    assert len(d.train) == 7 and len(d.test) == 4
    xs = torch.stack([d.train[i][0] for i in range(7)])
    assert abs(float(xs.mean())) < 1e-5 and abs(float(xs.std(unbiased=False)) - 1) < 1e-3


def test_fashion_mnist_real_files():
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed in {FASHION_MNIST_DIR}: apt-get install -y dataset-fashion-mnist")
    d = build_task(DataConfig(task="fashion-mnist"))
    assert d.sizes() == {"train": 54000, "val": 6000, "test": 10000}
    x, y = d.train[0]
    assert x.shape == (784, 1) and 0 <= float(x.min()) and float(x.max()) <= 1 and 0 <= int(y) < 10
    labels = d.test.labels.numpy()
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10


def test_digits():
    d = build_task(DataConfig(task="digits"))
    assert sum(d.sizes().values()) == 1797 and d.info.seq_len == 64 and d.info.n_classes == 10
    x, _ = d.train[0]
    assert x.shape == (64, 1) and float(x.max()) <= 1.0


def test_registry_and_collate():
    assert {"fashion-mnist", "mnist", "digits", "listops", "retrieval"} <= set(available_tasks())
    info = task_info(DataConfig(task="retrieval"))
    assert info.is_pair and info.vocab_size is not None
    with pytest.raises(ValueError, match="unknown task"):
        task_info(DataConfig(task="nope"))
    with pytest.raises(ValueError, match="already registered"):
        register_task("digits", info=lambda c: None, build=lambda c: None)
    # variable-length token examples and pairs
    b = collate([(torch.tensor([3, 4, 5]), 1), (torch.tensor([6]), 0)])
    assert b["x"].tolist() == [[3, 4, 5], [6, 0, 0]] and b["lengths"].tolist() == [3, 1]
    b = collate([(torch.ones(4, 1), 1), (torch.ones(4, 1), 0)])
    assert b["x"].shape == (2, 4, 1) and b["lengths"] is None
    b = collate([((torch.tensor([1, 2]), torch.tensor([3])), 1), ((torch.tensor([1]), torch.tensor([4, 5, 6])), 0)])
    assert b["x"].shape == (2, 2) and b["x2"].shape == (2, 3) and b["lengths2"].tolist() == [1, 3]
    b = collate([(torch.tensor([1, 2, 0]), 1, 2)])
    assert b["lengths"].tolist() == [2]
    assert isinstance(TaskInfo("t", 2, 5, d_input=1), TaskInfo) and TaskData
