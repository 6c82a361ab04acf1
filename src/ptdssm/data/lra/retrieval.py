"""LRA Retrieval: do two AAN papers cite each other? (``tsv_data/new_aan_pairs.{train,eval,test}.tsv``)

Format (``data-formats.md`` section 1.3): no header, five tab-separated fields ``label, id1, id2, text1, text2``;
quotes are literal characters (no CSV quoting, LRA reads with ``use_quote_delim=False``), the label is parsed as a
float then cast (``1`` and ``1.0`` both occur), ids are opaque strings. ``eval`` is the validation split.

Tokenization as in :mod:`ptdssm.data.lra.text`: ``level: char`` (S4: characters, vocabulary from the train documents
``text1 + text2`` with ``<pad>, <unk>, <eos>`` first, 98 entries on the release, each document truncated to 3999 +
``<eos>`` for ``seq_len`` 4000) or ``level: byte`` (LRA: UTF-8 bytes + 1, 257 ids). Examples are pairs
``((x1, x2), y)`` (``TaskInfo.is_pair``) for the retrieval head.

Options: ``level`` (char), ``min_freq`` (1), ``append_eos`` (true for char), ``vocab_size`` (98), ``cache`` (true).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..base import TaskData, TaskInfo
from ..registry import register_task
from ._cache import cached_arrays
from ._common import (
    PairTokenDataset,
    apply_subsets,
    encode_documents,
    get_options,
    pack,
    parse_label,
    smallest_uint,
    text_vocab_size,
)
from ._find import DataNotFoundError, data_root, find_leaf

__all__ = ["read_aan_tsv"]

SPLITS = {"train": "train", "val": "eval", "test": "test"}
_DEFAULTS = {"level": "char", "min_freq": 1, "append_eos": None, "vocab_size": 98, "cache": True}
_HINT = "AAN pairs are in the LRA release (lra_release.gz -> lra_release/tsv_data/new_aan_pairs.*.tsv)"


def read_aan_tsv(path: str | Path) -> tuple[np.ndarray, list[str], list[str], list[tuple[str, str]]]:
    """``(labels, text1, text2, ids)`` of one ``new_aan_pairs.*.tsv`` (``ValueError`` with file:line if malformed)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"AAN file not found: {path}")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    labels: list[int] = []
    t1: list[str] = []
    t2: list[str] = []
    ids: list[tuple[str, str]] = []
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 5:
                raise ValueError(f"{path}: line {line_no}: expected 5 tab-separated fields (label, id1, id2, text1, "
                                 f"text2), got {len(row)}")
            y = parse_label(row[0], (0, 1), f"{path}: line {line_no}")
            labels.append(y)
            ids.append((row[1], row[2]))
            t1.append(row[3])
            t2.append(row[4])
    return np.asarray(labels, dtype=np.int64), t1, t2, ids


def _opts(cfg: Any) -> dict[str, Any]:
    opts = get_options(cfg, "retrieval", _DEFAULTS)
    if opts["append_eos"] is None:
        opts["append_eos"] = opts["level"] == "char"
    return opts


def _info(cfg: Any) -> TaskInfo:
    opts = _opts(cfg)
    return TaskInfo("retrieval", n_classes=2, seq_len=cfg.seq_len or 4000, is_pair=True,
                    vocab_size=text_vocab_size(opts["level"], bool(opts["append_eos"]), opts["vocab_size"]),
                    description="LRA Retrieval: AAN document pairs (tsv_data/new_aan_pairs.*.tsv)")


def _build(cfg: Any) -> TaskData:
    info, opts = _info(cfg), _opts(cfg)
    root = data_root(cfg.data_dir, "retrieval")
    required = [f"new_aan_pairs.{f}.tsv" for f in SPLITS.values()]
    folder = find_leaf(root, "tsv_data", required, task="retrieval", hint=_HINT)
    files = {s: folder / f"new_aan_pairs.{f}.tsv" for s, f in SPLITS.items()}
    key = {k: opts[k] for k in ("level", "min_freq", "append_eos", "vocab_size")} | {"seq_len": info.seq_len}

    def build() -> dict[str, np.ndarray]:
        data = {s: read_aan_tsv(p) for s, p in files.items()}
        docs = {}
        for s, (_, a, b, _) in data.items():
            docs[f"{s}1"], docs[f"{s}2"] = a, b
        docs["train"] = data["train"][1] + data["train"][2]  # the vocabulary is built on both train documents
        enc = encode_documents(docs, level=opts["level"], seq_len=info.seq_len, append_eos=bool(opts["append_eos"]),
                               min_freq=int(opts["min_freq"]), vocab_size=int(info.vocab_size or 0))
        dtype = smallest_uint(len(enc["vocab"]))
        out: dict[str, np.ndarray] = {"vocab": np.asarray(enc["vocab"])}
        for s, (y, _, _, _) in data.items():
            for k in ("1", "2"):
                seqs, raw = enc[s + k]
                out[f"{s}{k}_flat"], out[f"{s}{k}_offsets"] = pack(seqs, dtype)
                out[f"{s}{k}_raw"] = np.asarray(raw, dtype=np.int64)
            out[f"{s}_labels"] = y
        return out

    arrays = cached_arrays("retrieval", key, build, sources=files.values(), enabled=bool(opts["cache"]))
    idx = apply_subsets(cfg, *(np.arange(len(arrays[f"{s}_labels"])) for s in SPLITS))
    sets = {s: PairTokenDataset(arrays[f"{s}1_flat"], arrays[f"{s}1_offsets"], arrays[f"{s}2_flat"],
                                arrays[f"{s}2_offsets"], arrays[f"{s}_labels"], ix)
            for s, ix in zip(SPLITS, idx, strict=True)}
    return TaskData(info, sets["train"], sets["val"], sets["test"],
                    extras={"vocab": [str(t) for t in arrays["vocab"]], "folder": str(folder),
                            "level": opts["level"]})


register_task("retrieval", info=_info, build=_build, replace=True,
              description="LRA Retrieval: AAN document pairs, character (S4) or byte (LRA) level, 4000 per document")
