"""LRA readers on tiny fixtures written in each release's exact format (data-formats.md section 1 recipes)."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ptdssm.config import DataConfig
from ptdssm.data import build_task, collate, task_info
from ptdssm.data.generators.listops import ListOpsParams, generate_listops, write_listops_tsv
from ptdssm.data.generators.pathfinder import generate_pathfinder_image, preset
from ptdssm.data.lra import DataNotFoundError, find_leaf
from ptdssm.data.lra._cache import cached_arrays
from ptdssm.data.lra.image import CIFAR_GRAY_MEAN, CIFAR_GRAY_STD


@pytest.fixture(autouse=True)
def _data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PTDSSM_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)


def cfg(task: str, data_dir: Path | None = None, **kw) -> DataConfig:
    return DataConfig(task=task, data_dir=str(data_dir) if data_dir else None, **kw)


# --------------------------------------------------------------------------------------------------------- ListOps

def _eval_listops(source: str) -> int:
    """Independent evaluator: recursive descent over the bracketed tokens (not the generator's code)."""
    toks = [t for t in source.split() if t not in ("(", ")")]
    pos = 0

    def node() -> int:
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t.isdigit():
            return int(t)
        args = []
        while toks[pos] != "]":
            args.append(node())
        pos += 1
        if t == "[MIN":
            return min(args)
        if t == "[MAX":
            return max(args)
        if t == "[SM":
            return sum(args) % 10
        s = sorted(args)
        return int(np.floor(np.median(s)))

    return node()


def write_listops_fixture(root: Path) -> dict[str, tuple[list[str], list[int]]]:
    folder = root / "lra_release" / "lra_release" / "listops-1000"
    src, lab = generate_listops(30, seed=3, params=ListOpsParams(min_length=5, max_length=60))
    src = ["( ( ( [MAX 2 ) 9 ) ] )"] + src  # the doc's example
    lab = [9] + lab
    splits = {"train": (src[:20], lab[:20]), "val": (src[20:26], lab[20:26]), "test": (src[26:], lab[26:])}
    for split, (s, y) in splits.items():
        write_listops_tsv(folder / f"basic_{split}.tsv", s, y, lineterminator="\n" if split == "val" else "\r\n")
    return splits


def test_listops_reader_labels_lengths_vocab_and_nesting(tmp_path):
    splits = write_listops_fixture(tmp_path)
    assert b"\r\n" in (tmp_path / "lra_release/lra_release/listops-1000/basic_train.tsv").read_bytes()
    assert b"\r\n" not in (tmp_path / "lra_release/lra_release/listops-1000/basic_val.tsv").read_bytes()
    data = build_task(cfg("listops", tmp_path))
    assert data.sizes() == {"train": 20, "val": 6, "test": 5}
    vocab = data.extras["vocab"]
    assert vocab[:3] == ["<pad>", "<unk>", "<eos>"] and len(vocab) <= 18
    assert set(vocab[3:]) <= {"[MIN", "[MAX", "[MED", "[SM", "X", *map(str, range(10))}
    for split, ds in (("train", data.train), ("val", data.val), ("test", data.test)):
        sources, labels = splits[split]
        for i in range(len(ds)):
            x, y = ds[i]
            assert y == labels[i] == _eval_listops(sources[i])
            n_tok = sum(1 for t in sources[i].split() if t not in ("(", ")"))
            assert x.dtype == torch.int64 and len(x) == n_tok + 1 and int(x[-1]) == 2  # <eos>
    x0 = data.train[0][0]
    assert [vocab[i] for i in x0.tolist()] == ["[MAX", "2", "9", "X", "<eos>"]
    batch = collate([data.train[i] for i in range(4)])
    assert batch["x"].shape[0] == 4 and batch["lengths"] is not None


def test_listops_truncation_subsets_and_cache(tmp_path):
    write_listops_fixture(tmp_path)
    data = build_task(cfg("listops", tmp_path, seq_len=8, train_subset=7))
    assert len(data.train) == 7
    assert all(len(data.train[i][0]) <= 8 and int(data.train[i][0][-1]) == 2 for i in range(7))
    assert data.extras["truncated"] > 0
    cache = list((tmp_path / "cache").glob("listops-*.npz"))
    assert len(cache) == 1
    build_task(cfg("listops", tmp_path, seq_len=8))  # same options: same entry
    assert len(list((tmp_path / "cache").glob("listops-*.npz"))) == 1
    build_task(cfg("listops", tmp_path, seq_len=9))  # a new option value: a new entry
    assert len(list((tmp_path / "cache").glob("listops-*.npz"))) == 2
    cache[0].write_bytes(b"corrupt")  # a corrupt entry is rebuilt
    again = build_task(cfg("listops", tmp_path, seq_len=8))
    assert len(again.train) == 20 and np.load(cache[0]).files


def test_listops_errors_name_what_is_missing(tmp_path):
    write_listops_fixture(tmp_path)
    folder = tmp_path / "lra_release/lra_release/listops-1000"
    (folder / "basic_val.tsv").unlink()
    with pytest.raises(DataNotFoundError) as e:
        build_task(cfg("listops", tmp_path))
    msg = str(e.value)
    assert "listops-1000" in msg and "basic_val.tsv" in msg and str(tmp_path) in msg and "lacks" in msg
    (folder / "basic_val.tsv").write_text("Source\tTarget\n( [MAX 1 ] )\t1\textra\n")
    with pytest.raises(ValueError, match=r"basic_val.tsv: line 2: expected 2 tab-separated fields"):
        build_task(cfg("listops", tmp_path, options={"cache": False}))
    (folder / "basic_val.tsv").write_text("Input\tOutput\n")
    with pytest.raises(ValueError, match="header"):
        build_task(cfg("listops", tmp_path, options={"cache": False}))
    with pytest.raises(ValueError, match="unknown option"):
        task_info(cfg("listops", tmp_path, options={"levle": "x"}))
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        build_task(cfg("listops"))


def test_find_leaf_nesting_and_message(tmp_path):
    for layout in ("listops-1000", "a/listops-1000", "lra_release/lra_release/listops-1000"):
        root = tmp_path / layout.replace("/", "_")
        leaf = root / layout
        leaf.mkdir(parents=True)
        (leaf / "f.tsv").write_text("x")
        assert find_leaf(root, "listops-1000", ["f.tsv"], task="t") == leaf
        assert find_leaf(leaf, "listops-1000", ["f.tsv"], task="t") == leaf  # pointed at the leaf itself
    with pytest.raises(DataNotFoundError) as e:
        find_leaf(tmp_path, "pathfinder32/curv_contour_length_14", ["metadata/*.npy"], task="pathfinder",
                  hint="get it")
    assert "pathfinder32/curv_contour_length_14" in str(e.value) and "metadata/*.npy" in str(e.value)
    assert "get it" in str(e.value)


def test_cache_keys_and_atomic_entries(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(3)}

    src = tmp_path / "src.txt"
    src.write_text("1")
    folder = tmp_path / "c"
    assert cached_arrays("t", {"k": 1}, build, sources=[src], folder=folder)["a"].tolist() == [0, 1, 2]
    cached_arrays("t", {"k": 1}, build, sources=[src], folder=folder)
    assert len(calls) == 1
    cached_arrays("t", {"k": 2}, build, sources=[src], folder=folder)
    assert len(calls) == 2
    src.write_text("22")  # a changed source file invalidates
    cached_arrays("t", {"k": 1}, build, sources=[src], folder=folder)
    assert len(calls) == 3
    assert not list(folder.glob("*.tmp"))
    for f in folder.glob("*.npz"):
        f.write_bytes(f.read_bytes()[:40])  # truncated
    cached_arrays("t", {"k": 1}, build, sources=[src], folder=folder)
    assert len(calls) == 4


# ------------------------------------------------------------------------------------------------------------ Text

LONG = "a" * 5000


def write_imdb_fixture(root: Path) -> None:
    base = root / "aclImdb"
    reviews = {
        "train/pos": {"0_9.txt": "Great film.<br /><br />Loved it.", "1_7.txt": "Naïve but fun — très bien 😀",
                      "10_10.txt": LONG},
        "train/neg": {"0_2.txt": "Awful.", "2_1.txt": "Bad \"acting\"."},
        "test/pos": {"0_8.txt": "Good."},
        "test/neg": {"0_3.txt": "Meh ü."},
    }
    for sub, files in reviews.items():
        (base / sub).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (base / sub / name).write_text(text, encoding="utf-8")
    (base / "train/unsup").mkdir()
    (base / "train/unsup/0_0.txt").write_text("unlabeled", encoding="utf-8")
    (base / "imdb.vocab").write_text("the\n")


def test_text_char_level(tmp_path):
    write_imdb_fixture(tmp_path)
    data = build_task(cfg("text", tmp_path, options={"min_freq": 1}))
    assert data.sizes() == {"train": 5, "val": 2, "test": 2}  # LRA/S4: validation = test
    vocab = data.extras["vocab"]
    labels = [data.train[i][1] for i in range(5)]
    assert labels == [0, 0, 1, 1, 1]  # neg then pos, numeric id order
    texts = ["Awful.", "Bad \"acting\".", "Great film.<br /><br />Loved it.", "Naïve but fun — très bien 😀", LONG]
    for i, t in enumerate(texts):
        x = data.train[i][0].tolist()
        assert len(x) == min(len(t), 4095) + 1 and x[-1] == 2
        assert "".join(vocab[j] for j in x[:-1]) == t[:4095]
    assert len(data.train[3][0]) == len("Naïve but fun — très bien 😀") + 1  # characters, not bytes
    assert data.train[4][0].shape == (4096,)
    # characters rarer than min_freq become <unk>
    rare = build_task(cfg("text", tmp_path, options={"min_freq": 2}))
    assert "😀" not in rare.extras["vocab"] and 1 in rare.train[3][0].tolist()


def test_text_byte_level_and_val_from_train(tmp_path):
    write_imdb_fixture(tmp_path)
    c = cfg("text", tmp_path, options={"level": "byte"}, seq_len=100)
    assert task_info(c).vocab_size == 257
    data = build_task(c)
    t = "Naïve but fun — très bien 😀"
    assert data.train[3][0].tolist() == [b + 1 for b in t.encode("utf-8")]
    assert len(data.train[3][0]) > len(t)
    assert data.train[4][0].shape == (100,)
    data = build_task(cfg("text", tmp_path, val_fraction=0.4, options={"val_split": "train", "min_freq": 1}))
    assert data.sizes() == {"train": 3, "val": 2, "test": 2}


def test_text_missing_folder_message(tmp_path):
    (tmp_path / "aclImdb/train/pos").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as e:
        build_task(cfg("text", tmp_path))
    assert "train/neg" in str(e.value) and "aclImdb_v1.tar.gz" in str(e.value)


# ------------------------------------------------------------------------------------------------------- Retrieval

def write_aan_fixture(root: Path) -> None:
    folder = root / "lra_release" / "tsv_data"
    folder.mkdir(parents=True)
    rows = {
        "train": [("1", "P07-1001", "P05-1022", 'He said "hello" there.', "b'bytes-like text'"),
                  ("0", "W03-0419", "J93-2004", "x" * 4500, "short"),
                  ("1.0", "A00-1001", "A00-2002", "first", "second doc")],
        "eval": [("0", "E1", "E2", "eval one", "eval two")],
        "test": [("1.0", "T1", "T2", "test one", 'he said "there')],
    }
    for split, rs in rows.items():
        with open(folder / f"new_aan_pairs.{split}.tsv", "w", encoding="utf-8", newline="") as f:
            for r in rs:
                f.write("\t".join(r) + "\n")


def test_retrieval_pairs_labels_quotes_truncation(tmp_path):
    write_aan_fixture(tmp_path)
    c = cfg("retrieval", tmp_path)
    assert task_info(c).is_pair
    data = build_task(c)
    assert data.sizes() == {"train": 3, "val": 1, "test": 1}
    vocab = data.extras["vocab"]

    def dec(x):
        return "".join(vocab[i] for i in x.tolist() if i != 2)

    (a, b), y = data.train[0]
    assert y == 1 and dec(a) == 'He said "hello" there.' and dec(b) == "b'bytes-like text'"
    (a, b), y = data.train[1]
    assert y == 0 and a.shape == (4000,) and int(a[-1]) == 2 and dec(b) == "short"
    assert data.train[2][1] == 1 and data.test[0][1] == 1
    assert dec(data.test[0][0][1]) == 'he said "there'  # quote kept literally, no CSV quoting
    batch = collate([data.train[i] for i in range(3)])
    assert batch["x"].shape == (3, 4000) and batch["x2"].shape[0] == 3 and batch["lengths2"] is not None


def test_retrieval_malformed_row(tmp_path):
    write_aan_fixture(tmp_path)
    (tmp_path / "lra_release/tsv_data/new_aan_pairs.eval.tsv").write_text("0\tE1\tE2\tonly four\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs.eval.tsv: line 1: expected 5 tab-separated fields"):
        build_task(cfg("retrieval", tmp_path))


# ----------------------------------------------------------------------------------------------------------- Image

def write_cifar_fixture(root: Path, per_batch: int = 20) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
        out[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": per_batch, b"num_vis": 3072}, f)
    return out


def test_image_grayscale_normalization_split(tmp_path):
    raw = write_cifar_fixture(tmp_path)
    data = build_task(cfg("image", tmp_path))
    assert data.sizes() == {"train": 90, "val": 10, "test": 20}
    d, labels = raw["test_batch"]
    r, g, b = (d[:, :1024].astype(np.int64), d[:, 1024:2048].astype(np.int64), d[:, 2048:].astype(np.int64))
    gray = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16  # ITU-R 601-2 luma in Pillow's fixed point
    for i in range(3):
        x, y = data.test[i]
        assert x.shape == (1024, 1) and y == labels[i]
        expect = (gray[i] / 255.0 - CIFAR_GRAY_MEAN) / CIFAR_GRAY_STD
        np.testing.assert_allclose(x[:, 0].numpy(), expect, atol=1e-5)
    tok = build_task(cfg("image", tmp_path, options={"tokenize": True}))
    assert task_info(cfg("image", options={"tokenize": True})).vocab_size == 256
    assert tok.test[0][0].dtype == torch.int64 and tok.test[0][0].tolist() == gray[0].tolist()
    # the split is S4's: the last 10% of randperm(n) seeded 42
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(42)).numpy()
    assert sorted(data.val.indices.tolist()) == sorted(perm[90:].tolist())


def test_image_bad_batch_file(tmp_path):
    write_cifar_fixture(tmp_path)
    (tmp_path / "cifar-10-batches-py/data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8),
                                                                               b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data_batch_3: expected data \(N, 3072\)"):
        build_task(cfg("image", tmp_path))
    (tmp_path / "cifar-10-batches-py/test_batch").unlink()
    with pytest.raises(DataNotFoundError, match="test_batch"):
        build_task(cfg("image", tmp_path))


# ------------------------------------------------------------------------------------------------------ Pathfinder

def write_pathfinder_fixture(root: Path, res: int = 32, counts=(4, 3, 2), difficulty="curv_contour_length_14"):
    """metadata/0.npy (text), 1.npy (a real .npy), 10.npy (numeric order), combined.npy (skipped), an empty PNG."""
    folder = root / f"pathfinder{res}" / difficulty
    rng = np.random.default_rng(1)
    p = preset(res)
    expected = []
    for k, n in zip((0, 1, 10), counts, strict=True):
        (folder / "imgs" / str(k)).mkdir(parents=True)
        rows = []
        for i in range(n):
            img, label, _ = generate_pathfinder_image(rng, p)
            Image.fromarray(img).save(folder / "imgs" / str(k) / f"sample_{i}.png")
            rows.append([f"imgs/{k}", f"sample_{i}.png", str(i), str(label), "1.0", "14", "4", "2", "0.5", "1", "1"])
            expected.append((img, label))
        (folder / "metadata").mkdir(exist_ok=True)
        if k == 1:
            np.save(folder / "metadata" / "1.npy", np.asarray(rows))
        else:
            (folder / "metadata" / f"{k}.npy").write_text("".join(" ".join(r) + "\n" for r in rows))
    (folder / "imgs/0/sample_99.png").write_bytes(b"")
    with open(folder / "metadata/0.npy", "a") as f:
        f.write("imgs/0 sample_99.png 99 1 1.0 14 4 2 0.5 1 1\n")
    (folder / "metadata/combined.npy").write_text("imgs/0 sample_0.png 0 0 1 1 1 1 1 1 1\n")
    return folder, expected


def test_pathfinder_reader(tmp_path):
    folder, expected = write_pathfinder_fixture(tmp_path / "lra_release")
    data = build_task(cfg("pathfinder", tmp_path))
    n = len(expected)
    assert sum(data.sizes().values()) == n == 9  # empty PNG skipped, combined.npy skipped
    assert data.sizes() == {"train": 9 - 2 * int(0.9), "val": int(0.9), "test": int(0.9)}
    assert data.extras["skipped_empty"][0].endswith("sample_99.png")
    assert data.extras["skipped_meta"][0].endswith("combined.npy")
    everything = sorted([*data.train.indices, *data.val.indices, *data.test.indices])
    assert everything == list(range(n))
    for j in range(n):  # order: metadata 0, 1, 10 (numeric), lines in order
        x, y = data.train.pixels[j], data.train.labels[j]
        assert y == expected[j][1] and np.array_equal(x, expected[j][0].reshape(-1))
    x, _ = data.train[0]
    assert x.shape == (1024, 1) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    centered = build_task(cfg("pathfinder", tmp_path, options={"normalize": "center"}))
    assert float(centered.train[0][0].min()) >= -1.0 and float(centered.train[0][0].min()) < 0
    # S4's split: random_split(n, [n - 2 int(n/10), int(n/10), int(n/10)], seed 42)
    big = write_pathfinder_fixture(tmp_path / "big", counts=(10, 6, 4))[0]
    d2 = build_task(cfg("pathfinder", big))
    assert d2.sizes() == {"train": 16, "val": 2, "test": 2}
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(42)).numpy()
    assert d2.val.indices.tolist() == sorted(perm[16:18].tolist())
    assert d2.test.indices.tolist() == sorted(perm[18:].tolist())


def test_pathfinder_difficulty_and_errors(tmp_path):
    write_pathfinder_fixture(tmp_path, counts=(2, 1, 1), difficulty="curv_baseline")
    with pytest.raises(DataNotFoundError) as e:
        build_task(cfg("pathfinder", tmp_path))
    assert "pathfinder32/curv_contour_length_14" in str(e.value) and "metadata/*.npy" in str(e.value)
    data = build_task(cfg("pathfinder", tmp_path, options={"difficulty": "easy"}))
    assert sum(data.sizes().values()) == 4
    (tmp_path / "pathfinder32/curv_baseline/imgs/1/sample_0.png").unlink()
    with pytest.raises(DataNotFoundError, match=r"1 image\(s\) listed in the metadata are missing.*sample_0.png"):
        build_task(cfg("pathfinder", tmp_path, options={"difficulty": "easy", "cache": False}))


def test_pathx_128(tmp_path):
    write_pathfinder_fixture(tmp_path, res=128, counts=(2, 1, 1))
    data = build_task(cfg("pathx", tmp_path))
    assert task_info(cfg("pathx")).seq_len == 16384
    assert data.train[0][0].shape == (16384, 1)
    with pytest.raises(ValueError, match="16384"):
        task_info(cfg("pathx", seq_len=1024))


# ----------------------------------------------------------------------------------------------- ListOps TSV quoting

def test_listops_reader_accepts_csv_quoting_of_plain_fields(tmp_path):
    folder = tmp_path / "listops-1000"
    folder.mkdir()
    for split in ("train", "val", "test"):
        with open(folder / f"basic_{split}.tsv", "w", newline="") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow(["Source", "Target"])
            w.writerow(["( ( [SM 3 ) 9 ) ] )", "2"])
    data = build_task(cfg("listops", tmp_path))
    assert data.train[0][1] == 2


# ------------------------------------------------------------------------------- every LRA config trains one step

LRA_CONFIG_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


@pytest.fixture(scope="module")
def lra_fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lra-fixtures")
    write_listops_fixture(root)
    write_imdb_fixture(root)
    write_aan_fixture(root)
    write_cifar_fixture(root, per_batch=4)
    write_pathfinder_fixture(root / "lra_release", counts=(10, 6, 4))
    write_pathfinder_fixture(root / "lra_release", res=128, counts=(6, 2, 2))
    return root


MODELS = ("s4", "s4d", "s4-ptd", "s5", "s5-ptd", "lru", "long-conv")


@pytest.mark.parametrize("name", [*(f"{t}-{m}" for t in LRA_CONFIG_TASKS for m in MODELS), "image-hyena"])
def test_lra_configs_train_one_step_on_fixtures(name, lra_fixture_root, tmp_path, monkeypatch):
    """Each packaged LRA config (at tiny width) reads its fixture data and trains one step."""
    from ptdssm.config import available_configs, load_config
    from ptdssm.experiments.train import train

    monkeypatch.setenv("PTDSSM_DATA_CACHE", str(lra_fixture_root / "cache"))  # shared by the models of a task
    configs = available_configs()
    assert name in configs, f"no packaged config {name}"
    overrides = [f"data.data_dir={lra_fixture_root}", "data.batch_size=2", "model.n_layers=1",
                 "model.d_model=8", "train.epochs=1", "train.max_steps_per_epoch=1",
                 "train.progress=false", f"train.out={tmp_path / name}", "train.device=cpu"]
    if not name.endswith(("-long-conv", "-hyena")):  # the convolutional families have no state size
        overrides.append("model.layer.d_state=4")
    if name.endswith(("-s5", "-s5-ptd")):
        overrides.append("model.layer.blocks=1")
    if name.startswith("text-"):
        overrides.append("data.options={min_freq: 1}")
    result = train(load_config(configs[name], overrides))
    losses = [v for k, v in _flatten(result.results).items() if k.endswith("loss")]
    assert losses and all(np.isfinite(v) for v in losses), (name, result.results)


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
    return out
