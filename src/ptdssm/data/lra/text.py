"""LRA Text: IMDB movie reviews at the character or byte level (the official ``aclImdb/`` release).

Layout (Maas et al. 2011, ``aclImdb_v1.tar.gz``): ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``, one UTF-8
review per file (``train/unsup`` is ignored); label 0 = ``neg``, 1 = ``pos``. Files are read in the order
``neg`` then ``pos``, by numeric id. Reviews are not cleaned (``<br />`` tags and non-ASCII characters stay).

Tokenization (``data-formats.md`` section 1.2), ``data.options.level``:

* ``char`` (default, S4): Unicode characters, vocabulary from the train reviews with ``min_freq`` 15 (about 135
  entries: ``<pad>``, ``<unk>``, ``<eos>`` + characters), truncation to 4095 + ``<eos>`` (``seq_len`` 4096);
* ``byte`` (LRA's ``ByteTextEncoder``): UTF-8 bytes + 1, vocabulary 257 (no ``<eos>`` unless ``append_eos``).

Splits: LRA and S4 validate on the test set (``val_split: test``, the default); ``val_split: train`` holds out a
seeded ``data.val_fraction`` of train instead. Options: ``level``, ``min_freq`` (15), ``append_eos`` (true for
``char``, false for ``byte``), ``vocab_size`` (135, the char-level embedding size), ``val_split``, ``cache``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..base import TaskData, TaskInfo, seeded_split
from ..registry import register_task
from ._cache import cached_arrays
from ._common import TokenDataset, apply_subsets, encode_documents, get_options, pack, smallest_uint, text_vocab_size
from ._find import data_root, find_leaf

__all__ = ["read_imdb_split"]

_DEFAULTS = {"level": "char", "min_freq": 15, "append_eos": None, "vocab_size": 135, "val_split": "test",
             "cache": True}
_HINT = ("IMDB is not in the LRA release: download aclImdb_v1.tar.gz (https://ai.stanford.edu/~amaas/data/"
         "sentiment/) and unpack it under the data folder")
_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def read_imdb_split(folder: str | Path) -> tuple[list[str], np.ndarray, list[Path]]:
    """``(texts, labels, files)`` of ``aclImdb/train`` or ``aclImdb/test`` (``neg`` = 0, ``pos`` = 1)."""
    folder = Path(folder)
    texts: list[str] = []
    labels: list[int] = []
    files: list[Path] = []
    for label, sub in enumerate(("neg", "pos")):
        d = folder / sub
        if not d.is_dir():
            raise FileNotFoundError(f"IMDB folder not found: {d} (expected <id>_<rating>.txt review files)")

        def order(p: Path) -> tuple[int, int, str]:
            m = _NAME.match(p.name)
            return (int(m.group(1)), int(m.group(2)), p.name) if m else (1 << 62, 0, p.name)

        for p in sorted(d.glob("*.txt"), key=order):
            texts.append(p.read_bytes().decode("utf-8", "replace"))
            labels.append(label)
            files.append(p)
    return texts, np.asarray(labels, dtype=np.int64), files


def _opts(cfg: Any) -> dict[str, Any]:
    opts = get_options(cfg, "text", _DEFAULTS)
    if opts["append_eos"] is None:
        opts["append_eos"] = opts["level"] == "char"
    if opts["val_split"] not in ("test", "train"):
        raise ValueError(f"data.options.val_split must be 'test' or 'train', got {opts['val_split']!r}")
    return opts


def _info(cfg: Any) -> TaskInfo:
    opts = _opts(cfg)
    return TaskInfo("text", n_classes=2, seq_len=cfg.seq_len or 4096,
                    vocab_size=text_vocab_size(opts["level"], bool(opts["append_eos"]), opts["vocab_size"]),
                    description="LRA Text: IMDB reviews, character or byte level (aclImdb/)")


def _build(cfg: Any) -> TaskData:
    info, opts = _info(cfg), _opts(cfg)
    root = data_root(cfg.data_dir, "text")
    folder = find_leaf(root, "aclImdb", ["train/pos", "train/neg", "test/pos", "test/neg"], task="text",
                       hint=_HINT)
    key = {k: opts[k] for k in ("level", "min_freq", "append_eos", "vocab_size")} | {"seq_len": info.seq_len}

    def build() -> dict[str, np.ndarray]:
        tr_text, tr_y, _ = read_imdb_split(folder / "train")
        te_text, te_y, _ = read_imdb_split(folder / "test")
        enc = encode_documents({"train": tr_text, "test": te_text}, level=opts["level"], seq_len=info.seq_len,
                               append_eos=bool(opts["append_eos"]), min_freq=int(opts["min_freq"]),
                               vocab_size=int(info.vocab_size or 0))
        dtype = smallest_uint(len(enc["vocab"]))
        out: dict[str, np.ndarray] = {"vocab": np.asarray(enc["vocab"])}
        for split, y in (("train", tr_y), ("test", te_y)):
            seqs, raw = enc[split]
            out[f"{split}_flat"], out[f"{split}_offsets"] = pack(seqs, dtype)
            out[f"{split}_labels"], out[f"{split}_raw"] = y, np.asarray(raw, dtype=np.int64)
        return out

    sources = [p for s in ("train/pos", "train/neg", "test/pos", "test/neg") for p in (folder / s).glob("*.txt")]
    arrays = cached_arrays("text", key, build, sources=sources, enabled=bool(opts["cache"]))
    n_tr, n_te = len(arrays["train_labels"]), len(arrays["test_labels"])
    if opts["val_split"] == "test":
        tr_idx, va_idx = np.arange(n_tr), np.arange(n_te)
    else:
        tr_idx, va_idx = seeded_split(n_tr, cfg.val_fraction, cfg.split_seed)
    tr_idx, va_idx, te_idx = apply_subsets(cfg, tr_idx, va_idx, np.arange(n_te))
    train = TokenDataset(arrays["train_flat"], arrays["train_offsets"], arrays["train_labels"], tr_idx)
    val_src = "test" if opts["val_split"] == "test" else "train"
    val = TokenDataset(arrays[f"{val_src}_flat"], arrays[f"{val_src}_offsets"], arrays[f"{val_src}_labels"], va_idx)
    test = TokenDataset(arrays["test_flat"], arrays["test_offsets"], arrays["test_labels"], te_idx)
    return TaskData(info, train, val, test, extras={"vocab": [str(t) for t in arrays["vocab"]],
                                                     "folder": str(folder), "level": opts["level"]})


register_task("text", info=_info, build=_build, replace=True,
              description="LRA Text: IMDB reviews, character (S4) or byte (LRA) level, length 4096")
