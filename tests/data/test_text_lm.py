"""Byte-level LM tasks ``fortunes`` and ``text-bytes``: exact windows against an independent construction, the split by
entry (no shared entry, duplicates together), determinism, options and one-line errors; TaskInfo.tokenizer."""

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import (
    BYTE_VOCAB_SIZE,
    IGNORE_INDEX,
    TaskInfo,
    build_task,
    collate,
    decode_bytes,
    encode_bytes,
    task_info,
)
from ptdssm.errors import DataError

SEP = b"\n%\n"


def _entries(prefix: str, n: int) -> list[str]:
    return [f"{prefix} entry {i}: " + "words " * (i % 5) + ("\n\tsecond line -- author" if i % 3 == 0 else "")
            for i in range(n)]


def _write_db(path: Path, entries: list[str], *, trailing_sep: bool = True) -> None:
    text = "\n%\n".join(entries) + ("\n%\n" if trailing_sep else "\n")
    path.write_bytes(text.encode("utf-8"))


@pytest.fixture
def fortune_dir(tmp_path):
    d = tmp_path / "fortunes"
    d.mkdir()
    alpha = _entries("alpha", 40) + ["caf\u00e9 na\u00efve \u2014 unicode"]
    beta = _entries("beta", 30) + ["shared quotation"]
    gamma = ["shared quotation", "gamma last entry without separator"]
    _write_db(d / "alpha", alpha)
    _write_db(d / "beta", beta)
    _write_db(d / "gamma", gamma, trailing_sep=False)
    (d / "alpha.dat").write_bytes(b"\x00\x00\x00\x02\x00\x00\x00\x29" + bytes(range(64)))  # strfile index
    (d / "latin1").write_bytes("caf\xe9\n%\n".encode("latin-1"))  # not UTF-8: skipped
    (d / ".hidden").write_text("ignored\n%\n")
    try:
        os.symlink("alpha", d / "alpha.u8")
    except OSError:
        (d / "alpha.u8").write_bytes((d / "alpha").read_bytes())
    return d, {"alpha": alpha, "beta": beta, "gamma": gamma}


def _cfg(task, data_dir=None, seq_len=16, **options):
    return DataConfig(task=task, data_dir=None if data_dir is None else str(data_dir), seq_len=seq_len,
                      options=options)


def _expected_split(entry: bytes, seed: int, fractions) -> str:
    """The documented rule, written out again: blake2b(entry, key=str(seed)), first 8 bytes big-endian / 2**64."""
    u = int(hashlib.blake2b(entry, digest_size=8, key=str(seed).encode()).hexdigest(), 16) / 2**64
    return "train" if u < fractions[0] else ("val" if u < fractions[0] + fractions[1] else "test")


def _expected_windows(stream: bytes, L: int) -> list[tuple[list[int], list[int]]]:
    """Non-overlapping windows in plain Python: x = bytes + 1 padded with 0, y = next bytes + 1 padded with -100."""
    out = []
    start = 0
    while start + 1 < len(stream):
        chunk = stream[start:start + L + 1]
        x = [b + 1 for b in chunk[:-1]]
        y = [b + 1 for b in chunk[1:]]
        out.append((x + [0] * (L - len(x)), y + [IGNORE_INDEX] * (L - len(y))))
        start += L
    return out


def _examples(ds) -> list[tuple[list[int], list[int]]]:
    return [(ds[i][0].tolist(), ds[i][1].tolist()) for i in range(len(ds))]


# ---------------------------------------------------------------------------------------------------- fortunes


def test_fortunes_windows_match_an_independent_construction(fortune_dir):
    d, dbs = fortune_dir
    fractions = [0.5, 0.25, 0.25]
    data = build_task(_cfg("fortunes", d, seq_len=16, split=fractions))
    streams = {"train": b"", "val": b"", "test": b""}
    for name in ("alpha", "beta", "gamma"):  # sorted file order, entries in file order
        for e in dbs[name]:
            raw = e.encode("utf-8")
            streams[_expected_split(raw, 42, fractions)] += raw + SEP
    assert all(streams.values()), "each split should get entries with these fractions"
    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        assert _examples(ds) == _expected_windows(streams[split], 16)
        x, y = ds[0]
        assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (16,)
    assert data.extras["stream_bytes"] == {k: len(v) for k, v in streams.items()}
    assert data.extras["files"] == {"alpha": 41, "beta": 31, "gamma": 2}
    skipped = " ".join(data.extras["skipped"])
    assert "alpha.dat" in skipped and "alpha.u8" in skipped and "latin1 (not UTF-8 text)" in skipped
    assert ".hidden" not in skipped and ".hidden" not in data.extras["files"]
    info = data.info
    assert (info.head, info.vocab_size, info.n_classes, info.tokenizer, info.seq_len) == ("lm", 257, 257, "bytes", 16)
    # every byte but the first of a split is a target exactly once; x is y shifted right by one inside the stream
    targets = [t for _, y in _examples(data.val) for t in y if t != IGNORE_INDEX]
    assert bytes(t - 1 for t in targets) == streams["val"][1:]
    # multi-byte UTF-8 text survives: the windows of the split holding it decode back to it
    holder = [k for k, v in streams.items() if "na\u00efve".encode() in v]
    ds = getattr(data, holder[0])
    assert "caf\u00e9 na\u00efve \u2014 unicode" in decode_bytes(torch.cat([ds[i][0] for i in range(len(ds))]))


def test_fortunes_splits_share_no_entry_and_duplicates_stay_together(fortune_dir):
    d, dbs = fortune_dir
    data = build_task(_cfg("fortunes", d, seq_len=8, split=[0.6, 0.2, 0.2]))
    per_split = {}
    for split in ("train", "val", "test"):
        stream = getattr(data, split).stream.tobytes()
        per_split[split] = [e for e in stream.split(SEP) if e]
    sets = {k: set(v) for k, v in per_split.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    everything = [e.encode() for name in ("alpha", "beta", "gamma") for e in dbs[name]]
    assert sorted(sum(per_split.values(), [])) == sorted(everything)  # nothing lost, duplicates kept
    holder = [k for k, v in per_split.items() if b"shared quotation" in v]
    assert len(holder) == 1 and per_split[holder[0]].count(b"shared quotation") == 2
    # the split of an entry does not depend on which files are read
    only_beta = build_task(_cfg("fortunes", d, seq_len=8, split=[0.6, 0.2, 0.2], files=["beta"]))
    for split in ("train", "val", "test"):
        beta_entries = {e for e in getattr(only_beta, split).stream.tobytes().split(SEP) if e}
        assert beta_entries <= sets[split]
    # another split_seed gives another split
    other = build_task(DataConfig(task="fortunes", data_dir=str(d), seq_len=8, split_seed=7,
                                  options={"split": [0.6, 0.2, 0.2]}))
    assert other.train.stream.tobytes() != data.train.stream.tobytes()


def test_fortunes_entry_parsing_and_overstrike(tmp_path):
    raw = "first\n%\n\n_\bb_\bo_\bl_\bd and B\bBO\bOL\bLD\n\n%\n%\n   \n%\nlast line\r\nno separator\r\n"
    (tmp_path / "db").write_bytes(raw.encode())
    data = build_task(_cfg("fortunes", tmp_path, seq_len=4, split=[1.0, 0.0, 0.0]))
    assert data.train.stream.tobytes() == b"first" + SEP + b"bold and BOLD" + SEP + b"last line\nno separator" + SEP
    assert len(data.val) == len(data.test) == 0
    kept = build_task(_cfg("fortunes", tmp_path, seq_len=4, split=[1.0, 0.0, 0.0], overstrike="keep"))
    assert b"_\bb_\bo" in kept.train.stream.tobytes()


def test_fortunes_is_deterministic_and_options_cap_and_randomize(fortune_dir):
    d, _ = fortune_dir
    a = build_task(_cfg("fortunes", d, seq_len=8))
    b = build_task(_cfg("fortunes", d, seq_len=8))
    for split in ("train", "val", "test"):
        assert _examples(getattr(a, split)) == _examples(getattr(b, split))
    n_all = len(a.train)
    capped = build_task(_cfg("fortunes", d, seq_len=8, n_train=5))
    assert len(capped.train) == 5 and set(capped.train.starts.tolist()) <= set(a.train.starts.tolist())
    assert len(capped.val) == len(a.val)
    sub = build_task(DataConfig(task="fortunes", data_dir=str(d), seq_len=8, train_subset=3, val_subset=2))
    assert len(sub.train) == 3 and len(sub.val) == 2
    # random offsets: full windows at seeded per-index offsets, the same in every build
    r1 = build_task(_cfg("fortunes", d, seq_len=8, offsets="random", n_train=50, generator_seed=3))
    r2 = build_task(_cfg("fortunes", d, seq_len=8, offsets="random", n_train=50, generator_seed=3))
    r3 = build_task(_cfg("fortunes", d, seq_len=8, offsets="random", n_train=50, generator_seed=4))
    assert len(r1.train) == 50 and _examples(r1.train) == _examples(r2.train)
    assert _examples(r1.train) != _examples(r3.train)
    stream = a.train.stream.tobytes()
    for i in range(50):
        s = int(np.random.default_rng([3, i]).integers(0, len(stream) - 8))
        x, y = r1.train[i]
        assert x.tolist() == [c + 1 for c in stream[s:s + 8]] and y.tolist() == [c + 1 for c in stream[s + 1:s + 9]]
    assert len(build_task(_cfg("fortunes", d, seq_len=8, offsets="random")).train) == n_all
    batch = collate([r1.train[i] for i in range(4)])
    assert batch["x"].shape == batch["y"].shape == (4, 8) and batch["lengths"] is None


def test_fortunes_errors_are_one_line(tmp_path, fortune_dir):
    d, _ = fortune_dir
    with pytest.raises(DataError, match="missing .*does not exist") as e:  # refused for every task (build_task)
        build_task(_cfg("fortunes", tmp_path / "missing"))
    assert "\n" not in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.dat").write_bytes(b"\x00\x01")
    with pytest.raises(DataError, match="apt-get install fortunes"):
        build_task(_cfg("fortunes", empty))
    with pytest.raises(DataError, match="'nope'.*databases in .*alpha"):
        build_task(_cfg("fortunes", d, files=["alpha", "nope"]))
    with pytest.raises(DataError, match=r"latin1:1: not UTF-8"):
        build_task(_cfg("fortunes", d, files="latin1"))
    with pytest.raises(DataError, match="unknown option.*data.options.bogus"):
        task_info(_cfg("fortunes", d, bogus=1))
    with pytest.raises(DataError, match="data.options.split"):
        build_task(_cfg("fortunes", d, split=[0.5, 0.5, 0.5]))
    with pytest.raises(DataError, match="data.options.offsets"):
        build_task(_cfg("fortunes", d, offsets="sliding"))
    # files as one comma-separated string (as --option files=alpha,gamma gives)
    two = build_task(_cfg("fortunes", d, files="alpha,gamma"))
    assert list(two.extras["files"]) == ["alpha", "gamma"]


def test_fortunes_info_reads_no_data_and_defaults():
    info = task_info(DataConfig(task="fortunes", data_dir="/definitely/not/here"))
    assert info.seq_len == 512 and info.vocab_size == BYTE_VOCAB_SIZE == 257 and info.tokenizer == "bytes"


@pytest.mark.skipif(not Path("/usr/share/games/fortunes/cookie").is_file(), reason="apt-get install fortunes")
def test_the_installed_fortunes_package():
    data = build_task(DataConfig(task="fortunes", seq_len=512))
    assert data.extras["folder"] == "/usr/share/games/fortunes"
    assert len(data.extras["files"]) >= 40 and "cookie" in data.extras["files"]
    assert not any(name.endswith((".dat", ".u8")) for name in data.extras["files"])
    sizes = data.extras["stream_bytes"]
    assert sizes["train"] > 2_000_000 and 80_000 < sizes["val"] < 200_000 and 80_000 < sizes["test"] < 200_000
    text = data.test.stream.tobytes().decode("utf-8")
    assert text.count(" the ") > 500 and "\x08" not in text
    val_entries = {e for e in data.val.stream.tobytes().split(SEP) if e}
    train_entries = {e for e in data.train.stream.tobytes().split(SEP) if e}
    assert not val_entries & train_entries


# -------------------------------------------------------------------------------------------------- text-bytes


def test_text_bytes_contiguous_split_and_windows(tmp_path):
    (tmp_path / "b.txt").write_bytes("Second file, no final newline \u00e9".encode())
    (tmp_path / "a.txt").write_bytes(b"First file.\n" * 30)
    (tmp_path / "notes.md").write_bytes(b"not read\n")
    data = build_task(_cfg("text-bytes", tmp_path, seq_len=32))
    stream = (tmp_path / "a.txt").read_bytes() + (tmp_path / "b.txt").read_bytes() + b"\n"
    a = int(len(stream) * 0.9)
    b = a + int(len(stream) * 0.05)
    parts = {"train": stream[:a], "val": stream[a:b], "test": stream[b:]}
    for split, part in parts.items():
        assert _examples(getattr(data, split)) == _expected_windows(part, 32)
    assert data.extras["files"] == {"a.txt": 360, "b.txt": len(stream) - 360}
    assert data.info.name == "text-bytes" and data.info.tokenizer == "bytes" and data.info.head == "lm"
    md = build_task(_cfg("text-bytes", tmp_path, seq_len=32, files="*.md", split=[0.5, 0.25, 0.25]))
    assert md.train.stream.tobytes() + md.val.stream.tobytes() + md.test.stream.tobytes() == b"not read\n"


def test_text_bytes_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("PTDSSM_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        build_task(_cfg("text-bytes"))
    with pytest.raises(DataError, match="no file .* matches"):
        build_task(_cfg("text-bytes", tmp_path))
    (tmp_path / "bad.txt").write_bytes(b"line one\nline two\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: not UTF-8") as e:
        build_task(_cfg("text-bytes", tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="unknown option.*overstrike"):
        task_info(_cfg("text-bytes", tmp_path, overstrike="keep"))


# ------------------------------------------------------------------------------------------ tokenizer, TaskInfo


def test_taskinfo_tokenizer_round_trips_and_old_dicts_load():
    info = TaskInfo("fortunes", n_classes=257, seq_len=8, vocab_size=257, head="lm", tokenizer="bytes")
    assert TaskInfo(**asdict(info)) == info
    old = {k: v for k, v in asdict(info).items() if k != "tokenizer"}  # a checkpoint written before the field
    assert TaskInfo(**old).tokenizer is None
    with pytest.raises(ValueError, match="vocab_size 257"):
        TaskInfo("t", n_classes=10, seq_len=8, vocab_size=10, tokenizer="bytes")
    with pytest.raises(ValueError, match="tokenizer"):
        TaskInfo("t", n_classes=10, seq_len=8, vocab_size=10, tokenizer="")
    ids = encode_bytes("h\u00e9!")
    assert ids.tolist() == [ord("h") + 1, 0xC3 + 1, 0xA9 + 1, ord("!") + 1]
    assert decode_bytes(torch.cat([ids, torch.zeros(3, dtype=torch.long)])) == "h\u00e9!"


def test_cli_data_check_reports_a_text_task(fortune_dir, capsys):
    from ptdssm.cli import main

    d, _ = fortune_dir
    assert main(["data", "check", "--task", "fortunes", "--data-dir", str(d), "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    assert "tokenizer: bytes" in out and "stream bytes: train" in out and "files: alpha 41, beta 31, gamma 2" in out


def test_an_lm_model_trains_on_fortune_windows(fortune_dir):
    """One optimizer step of a tiny LM on a batch: the head is over 257 ids and the loss is finite and falls."""
    from ptdssm.config import ModelConfig
    from ptdssm.experiments.objective import Objective
    from ptdssm.models.factory import build_model

    d, _ = fortune_dir
    data = build_task(_cfg("fortunes", d, seq_len=16))
    torch.manual_seed(0)
    net = build_model(ModelConfig(name="s4d", n_layers=1, d_model=16, norm="layer", layer={"d_state": 8}), data.info)
    batch = collate([data.train[i] for i in range(8)])
    obj = Objective(data.info)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        out = net(batch["x"])
        assert out.shape == (8, 16, 257)
        loss = obj.loss(out, batch["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    m = obj.summarize(obj.stats(net(batch["x"]), batch["y"]))
    assert m["bpb"] == pytest.approx(m["loss"] / np.log(2))


def test_train_then_evaluate_reports_bits_per_byte(fortune_dir, tmp_path, capsys):
    """A tiny byte-level Mamba LM trained for one epoch from the CLI; ``ptdssm evaluate`` prints bits per token and
    its JSON ``bpb`` is the loss in bits (loss / ln 2)."""
    import json
    import math

    from ptdssm.cli import main

    d, _ = fortune_dir
    out = tmp_path / "run"
    tiny = ["--set", "model.n_layers=1", "--set", "model.d_model=8", "--set", "model.layer.d_state=4",
            "--set", "data.batch_size=4", "--set", "data.seq_len=16"]
    assert main(["train", "--task", "fortunes", "--model", "mamba", "--data-dir", str(d), "--out", str(out),
                 "--epochs", "1", "--no-progress", "--json", *tiny]) == 0
    capsys.readouterr()
    ckpt = str(out / "checkpoints" / "best.pt")
    assert main(["evaluate", "--checkpoint", ckpt, "--data-dir", str(d), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bpb"] == pytest.approx(res["loss"] / math.log(2))
    assert main(["evaluate", "--checkpoint", ckpt, "--data-dir", str(d)]) == 0
    assert f"{res['bpb']:.4f} bits per token" in capsys.readouterr().out
