"""Offline generators: ListOps (LRA distribution), Pathfinder (release layout), MNIST-1D (published data), synthetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import IGNORE_INDEX, build_task, collate, task_info
from ptdssm.data.generators.listops import (
    ListOpsParams,
    evaluate_listops,
    generate_listops,
    listops_stats,
    tree_to_string,
    write_listops_release,
)
from ptdssm.data.generators.mnist1d import make_mnist1d
from ptdssm.data.generators.pathfinder import (
    bright_fraction,
    generate_pathfinder_image,
    preset,
    write_pathfinder_release,
)
from ptdssm.data.generators.synthetic import (
    adding_example,
    associative_recall_example,
    copying_example,
    selective_copying_example,
)
from ptdssm.data.lra.pathfinder import read_metadata_file


@pytest.fixture(autouse=True)
def _data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PTDSSM_DATA_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------------------- ListOps

def test_listops_statistics_match_published():
    """300 trees at LRA's bounds vs the published re-implementation's statistics (data-formats.md 2.1):
    length 501-1999, median ~995, mean ~1064; labels 0 and 9 ~17% each, 1-8 ~7.6-9.1% each."""
    src, lab = generate_listops(300, seed=11)
    st = listops_stats(src, lab)
    assert 500 < st["length"]["min"] and st["length"]["max"] < 2000
    assert 900 <= st["length"]["median"] <= 1100 and 980 <= st["length"]["mean"] <= 1160
    f = st["label_freq"]
    assert f["0"] > 0.11 and f["9"] > 0.11  # extremes over-represented (MIN/MAX over many arguments)
    assert all(0.03 < f[str(k)] < 0.15 for k in range(1, 9))
    assert all(evaluate_listops(s) == y for s, y in zip(src, lab, strict=True))
    assert len(set(src)) == len(src)


def test_listops_generator_is_seeded_and_formats():
    p = ListOpsParams(min_length=5, max_length=40, max_args=4)
    assert generate_listops(20, seed=1, params=p) == generate_listops(20, seed=1, params=p)
    assert generate_listops(20, seed=1, params=p) != generate_listops(20, seed=2, params=p)
    assert tree_to_string(("[MAX", [2, 9])) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert tree_to_string(("[MED", [1, ("[SM", [3, 4]), 8])) == "( ( ( ( [MED 1 ) ( ( ( [SM 3 ) 4 ) ] ) ) 8 ) ] )"
    assert evaluate_listops("( ( ( ( ( [MED 1 ) 2 ) 6 ) 9 ) ] )") == 4  # int(median 4.0)
    assert evaluate_listops("( ( ( [MED 2 ) 5 ) ] )") == 3  # int(3.5)
    with pytest.raises(ValueError, match="no length"):
        generate_listops(1, params=ListOpsParams(min_length=10, max_length=11))
    with pytest.raises(RuntimeError, match="distinct"):
        generate_listops(50, params=ListOpsParams(min_length=0, max_length=2), max_draws=200)


def test_listops_release_roundtrip_through_reader(tmp_path):
    res = write_listops_release(tmp_path, 30, seed=5, params=ListOpsParams(min_length=5, max_length=50))
    assert res["counts"] == {"train": 30, "val": 3, "test": 3}
    raw = (tmp_path / "listops-1000/basic_train.tsv").read_bytes()
    assert raw.startswith(b"Source\tTarget\r\n")
    data = build_task(DataConfig(task="listops", data_dir=str(tmp_path)))
    assert data.sizes() == {"train": 30, "val": 3, "test": 3}


def test_listops_synthetic_task_generates_into_cache(tmp_path):
    opts = {"n_train": 12, "min_length": 5, "max_length": 40}
    c = DataConfig(task="listops-synthetic", options=opts)
    data = build_task(c)
    assert data.sizes() == {"train": 12, "val": 1, "test": 1}
    assert list((tmp_path / "cache").glob("listops-synthetic-*/listops-1000/basic_train.tsv"))
    again = build_task(c)  # reused, identical
    assert torch.equal(again.train[0][0], data.train[0][0])


# -------------------------------------------------------------------------------------------------------- Pathfinder

def _markers_on_snake_ends(info, label):
    a, b = info["snakes"]
    m0, m1 = (np.asarray(m) for m in info["markers"])
    assert np.allclose(m0, a[0][0])
    assert np.allclose(m1, (a if label == 1 else b)[-1][1])


def test_pathfinder_images_labels_and_brightness():
    rng = np.random.default_rng(0)
    p = preset(32)
    labels, bright = [], []
    for _ in range(60):
        img, label, info = generate_pathfinder_image(rng, p)
        assert img.shape == (32, 32) and img.dtype == np.uint8 and img.max() == 255
        assert len(info["snakes"][0]) == len(info["snakes"][1]) == 14
        _markers_on_snake_ends(info, label)
        labels.append(label)
        bright.append(bright_fraction(img))
    assert 15 <= sum(labels) <= 45  # Bernoulli(0.5): balanced in expectation
    assert 0.05 < float(np.mean(bright)) < 0.16  # published prototype ~11% at 32 px
    img, label, info = generate_pathfinder_image(np.random.default_rng(1), preset(128), label=0)
    assert img.shape == (128, 128) and label == 0
    _markers_on_snake_ends(info, 0)
    assert 0.02 < bright_fraction(img) < 0.10  # real Path-X ~5.3%


def test_pathfinder_release_layout_and_determinism(tmp_path):
    r1 = write_pathfinder_release(tmp_path / "a", 5, seed=3, per_batch=2)
    folder = tmp_path / "a/pathfinder32/curv_contour_length_14"
    assert sorted(p.name for p in (folder / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    assert (folder / "imgs/2/sample_0.png").is_file() and not (folder / "imgs/2/sample_1.png").exists()
    rows = read_metadata_file(folder / "metadata/1.npy")
    assert rows[0][:3] == ["imgs/1", "sample_0.png", "0"] and len(rows[0]) == 11
    assert (folder / "metadata/0.npy").read_text().endswith("\n")
    write_pathfinder_release(tmp_path / "b", 5, seed=3, per_batch=2, metadata_format="npy")
    assert (tmp_path / "b/pathfinder32/curv_contour_length_14/metadata/0.npy").read_bytes()[:6] == b"\x93NUMPY"
    for k, i in ((0, 0), (0, 1), (2, 0)):
        a = (folder / f"imgs/{k}/sample_{i}.png").read_bytes()
        b = (tmp_path / f"b/pathfinder32/curv_contour_length_14/imgs/{k}/sample_{i}.png").read_bytes()
        assert a == b
    assert r1["n"] == 5
    data = build_task(DataConfig(task="pathfinder", data_dir=str(tmp_path / "b")))
    assert sum(data.sizes().values()) == 5


# ----------------------------------------------------------------------------------------------------------- MNIST-1D

def test_mnist1d_reproduces_published_dataset():
    """Values of the official mnist1d_data.pkl (greydanus/mnist1d, 4,000 / 1,000, length 40)."""
    d = make_mnist1d()
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert d["y"][:20].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3]
    assert d["y_test"][:10].tolist() == [2, 6, 3, 9, 4, 3, 1, 9, 5, 2]
    np.testing.assert_allclose(d["x"][0, :6], [-0.332006, -0.47191, -0.778697, -1.009741, -0.882353, 0.103935],
                               atol=1e-5)
    assert np.bincount(np.concatenate([d["y"], d["y_test"]])).tolist() == [500] * 10
    data = build_task(DataConfig(task="mnist1d"))
    assert data.sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert data.train[0][0].shape == (40, 1)


# ---------------------------------------------------------------------------------------------------------- synthetic

def test_adding_problem():
    rng = np.random.default_rng(0)
    sums = []
    for _ in range(300):
        x, s = adding_example(rng, 50)
        marks = np.flatnonzero(x[:, 1])
        assert len(marks) == 2 and marks[0] < 25 <= marks[1]
        assert s == pytest.approx(float(x[marks, 0].sum()))
        sums.append(s)
    assert 0.9 < np.mean(sums) < 1.1 and np.var(sums) == pytest.approx(1 / 6, rel=0.25)  # baseline MSE 0.167


def test_adding_task_regression_default_and_class_option():
    c = DataConfig(task="adding", seq_len=64, options={"n_train": 8})
    info = task_info(c)
    assert (info.loss, info.head, info.n_classes, info.d_input) == ("mse", "pooled", 1, 2)
    data = build_task(c)
    x, y = data.train[3]
    assert x.shape == (64, 2) and y.dtype == torch.float32 and y.shape == (1,)
    assert y.item() == pytest.approx(float(x[x[:, 1] == 1, 0].double().sum()), abs=1e-6)
    assert torch.equal(build_task(c).train[3][0], x)  # deterministic
    batch = collate([data.train[i] for i in range(4)])
    assert batch["y"].shape == (4, 1) and batch["y"].dtype == torch.float32
    c = DataConfig(task="adding", seq_len=64, options={"n_train": 8, "n_bins": 10, "target": "class"})
    info = task_info(c)
    assert (info.loss, info.n_classes) == ("cross-entropy", 10)
    x, y = build_task(c).train[3]
    assert y == min(int(float(x[x[:, 1] == 1, 0].sum()) / 2 * 10), 9)
    with pytest.raises(ValueError, match="target for adding must be one of regression, class"):
        task_info(DataConfig(task="adding", options={"target": "token"}))


def _expected_copy_targets(x, K, delim):
    """Independent reading of a copying/selective-copying token example: the non-blank tokens before the delimiter,
    in order, are the targets of the last K positions."""
    L = len(x)
    assert x[L - K - 1] == delim and (x[L - K:] == 1).all()
    body = x[: L - K - 1]
    syms = [int(t) - 2 for t in body if t != 1]
    assert len(syms) == K
    return [-100] * (L - K) + syms


def test_copying_forms():
    rng = np.random.default_rng(0)
    x, y = copying_example(rng, 30, n_memorize=5, n_symbols=8)  # token (default)
    assert y.dtype == np.int64 and y.tolist() == _expected_copy_targets(x, 5, 10)
    assert (x[5:-6] == 1).all() and ((x[:5] >= 2) & (x[:5] < 10)).all()
    x, y = copying_example(rng, 30, n_memorize=5, n_symbols=8, target="sequence")
    assert y.shape == (5,) and (x[:5] - 2 == y).all() and x[-6] == 10
    x, y = copying_example(rng, 30, n_memorize=5, n_symbols=8, target="class")
    k = int(x[-1]) - (2 + 8) - 1
    assert x[-2] == 10 and int(x[k]) - 2 == y and (x[5:-2] == 1).all()
    with pytest.raises(ValueError, match="target must be one of"):
        copying_example(rng, 30, target="tokens")
    with pytest.raises(ValueError, match="length >= 2 n_memorize"):
        copying_example(rng, 20, n_memorize=10)


def test_selective_copying_forms():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = selective_copying_example(rng, 60, n_memorize=6, n_symbols=4)
        assert y.tolist() == _expected_copy_targets(x, 6, 6)
    x, y = selective_copying_example(rng, 100, n_memorize=6, n_symbols=4, target="class")
    syms = x[:-2][x[:-2] != 1] - 2
    assert len(syms) == 6 and syms[int(x[-1]) - 7] == y
    x, y = selective_copying_example(rng, 40, n_memorize=6, n_symbols=4, target="sequence")
    assert y.tolist() == _expected_copy_targets(x, 6, 6)[-6:]
    with pytest.raises(ValueError, match="length"):
        build_task(DataConfig(task="selective-copying", seq_len=10))


@pytest.mark.parametrize("task", ["copying", "selective-copying"])
def test_copy_tasks_token_head_batches(task):
    c = DataConfig(task=task, options={"n_train": 4, "n_memorize": 5}, seq_len=40)
    info = task_info(c)
    assert (info.head, info.target_len, info.loss) == ("token", None, "cross-entropy")
    batch = collate([build_task(c).train[i] for i in range(4)])
    assert batch["y"].shape == (4, 40) and batch["x"].shape == (4, 40)
    assert (batch["y"][:, :35] == IGNORE_INDEX).all() and (batch["y"][:, 35:] >= 0).all()
    c = DataConfig(task=task, options={"target": "sequence", "n_train": 4}, seq_len=40)
    assert (task_info(c).head, task_info(c).target_len) == ("last-k", 10 if task == "copying" else 16)
    assert collate([build_task(c).train[i] for i in range(4)])["y"].shape == (4, task_info(c).target_len)
    c = DataConfig(task=task, options={"target": "class"}, seq_len=40)
    assert task_info(c).head == "pooled"


def _expected_mqar_targets(x, n_pairs, n_keys):
    """Independent reading of an MQAR example: the key -> value map of the first 2 n_pairs tokens, then every key
    token after them is a query whose target is its value (the value follows it in the input)."""
    table = {int(x[2 * i]): int(x[2 * i + 1]) for i in range(n_pairs)}
    assert len(table) == n_pairs and all(2 <= k < 2 + n_keys for k in table)
    y = [-100] * len(x)
    for p in range(2 * n_pairs, len(x)):
        if 2 <= x[p] < 2 + n_keys:
            assert x[p + 1] == table[int(x[p])]
            y[p] = table[int(x[p])] - 2 - n_keys
        else:
            assert x[p] == 1 or (p > 0 and 2 <= x[p - 1] < 2 + n_keys)
    return y


def test_associative_recall_forms():
    rng = np.random.default_rng(0)
    for L in (17, 200):
        x, y = associative_recall_example(rng, L, n_pairs=8, n_keys=16, n_values=16, target="class")
        q = x[-1]
        pos = np.flatnonzero(x[:-1] == q)
        assert len(pos) == 1 and x[pos[0] + 1] - 2 - 16 == y
    first_query = []
    for L, nq, expect_q in ((32, None, 8), (24, None, 4), (64, 3, 3)):
        for _ in range(30):
            x, y = associative_recall_example(rng, L, n_pairs=8, n_keys=16, n_values=16, n_queries=nq)
            assert y.tolist() == _expected_mqar_targets(x, 8, 16)
            assert int((y != -100).sum()) == expect_q
            first_query.append(int(np.flatnonzero(y != -100)[0]))
    assert len(set(first_query)) > 5  # queries are placed at random
    with pytest.raises(ValueError, match="n_queries"):
        associative_recall_example(rng, 20, n_pairs=8, n_queries=3)
    info = task_info(DataConfig(task="associative-recall"))
    assert info.vocab_size == 34 and info.n_classes == 16 and info.head == "token"
    c = DataConfig(task="associative-recall", seq_len=40, options={"n_train": 3})
    b = collate([build_task(c).train[i] for i in range(3)])
    assert b["y"].shape == (3, 40) and int((b["y"] != IGNORE_INDEX).sum()) == 3 * 8
    assert task_info(DataConfig(task="associative-recall", options={"target": "class"})).head == "pooled"


# ------------------------------------------------------------------------------ packaged configs train one step

_SYN_TASK_OPTIONS = {
    "listops-synthetic": "{n_train: 8, min_length: 5, max_length: 40}",
    "adding": "{n_train: 8, n_val: 4, n_test: 4}",
    "copying": "{n_train: 8, n_val: 4, n_test: 4}",
    "selective-copying": "{n_train: 8, n_val: 4, n_test: 4}",
    "associative-recall": "{n_train: 8, n_val: 4, n_test: 4}",
    "mnist1d": "{num_samples: 200}",
}


def test_synthetic_configs_exist_and_load():
    from ptdssm.config import available_configs, load_config

    configs = available_configs()
    for task in _SYN_TASK_OPTIONS:
        for model in ("s4", "s4d", "s4-ptd", "s5", "s5-ptd"):
            cfg = load_config(configs[f"{task}-{model}"])
            assert cfg.data.task == task and cfg.model.name == model


# The configs come from one template per task: one S4-family and one S5-family model train a step each.
@pytest.mark.parametrize("name", [f"{t}-{m}" for t in _SYN_TASK_OPTIONS for m in ("s4-ptd", "s5-ptd")])
def test_synthetic_configs_train_one_step(name, tmp_path):
    from ptdssm.config import available_configs, load_config
    from ptdssm.experiments.train import train

    task = name.rsplit("-s", 1)[0]
    overrides = [f"data.options={_SYN_TASK_OPTIONS[task]}", "data.batch_size=4", "model.n_layers=1",
                 "model.d_model=8", "model.layer.d_state=4", "train.epochs=1", "train.max_steps_per_epoch=1",
                 "train.progress=false", f"train.out={tmp_path / 'run'}", "train.device=cpu"]
    if "-s5" in name:
        overrides.append("model.layer.blocks=1")
    if task != "mnist1d" and task != "listops-synthetic":
        overrides.append("data.seq_len=48")
    result = train(load_config(available_configs()[name], overrides))
    assert result.results
