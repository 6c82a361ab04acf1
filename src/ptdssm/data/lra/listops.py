"""LRA ListOps reader (``listops-1000/basic_{train,val,test}.tsv``) and the generated ``listops-synthetic`` task.

Format (``data-formats.md`` section 1.1): header ``Source<TAB>Target``, one example per row, CRLF (the release was
written by ``csv.writer``) or LF line ends. Tokenization follows S4: ``]`` becomes ``X``, parentheses are dropped,
whitespace split, truncation to ``seq_len - 1`` tokens and ``<eos>`` appended (``append_eos``); the vocabulary is
built on the **train** file: ``<pad>`` 0, ``<unk>`` 1, ``<eos>`` 2, then tokens by descending frequency (ties in
string order), 18 entries on the release. Splits are the release's three files (``val_fraction`` is not used).

Options (``data.options``): ``append_eos`` (true), ``task_name`` (``basic``), ``vocab_size`` (18: the embedding size;
a larger train vocabulary keeps its most frequent tokens), ``cache`` (true).

``listops-synthetic`` generates a release-layout folder with :mod:`ptdssm.data.generators.listops` into the data
cache on first use (or reads ``data_dir`` when it holds one, e.g. from ``ptdssm data generate listops``) and then
reads it with the same reader. Its options: ``n_train`` (2000), ``n_val``/``n_test`` (``n_train // 10``),
``generator_seed`` (0), ``min_length`` (500), ``max_length`` (2000), ``max_depth`` (10), ``max_args`` (10).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..base import TaskData, TaskInfo, read_utf8
from ..registry import register_task
from ._cache import cache_dir, cache_key, cached_arrays
from ._common import EOS, TokenDataset, Vocab, apply_subsets, get_options, pack, parse_label, smallest_uint
from ._find import DataNotFoundError, data_root, find_leaf

__all__ = ["listops_tokens", "load_listops_folder", "read_listops_tsv"]

SPLIT_FILES = ("train", "val", "test")
_HINT = ("ListOps is in the LRA release (lra_release.gz -> lra_release/listops-1000); or generate one offline with "
         "`ptdssm data generate listops --out DIR`")


def listops_tokens(source: str) -> list[str]:
    """S4/LRA tokenization of a ``Source`` string: ``]`` -> ``X``, parentheses dropped, whitespace split."""
    return source.replace("(", " ").replace(")", " ").replace("]", "X").split()


def read_listops_tsv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(sources, targets)`` of one release TSV; ``ValueError`` naming the file and line for a malformed row."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"ListOps file not found: {path}")
    text = read_utf8(path)  # a damaged byte: one line naming the file and line
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = next(rows, None)
    if header is None:
        raise ValueError(f"{path}: empty file (expected a header 'Source<TAB>Target')")
    if [h.strip() for h in header[:2]] != ["Source", "Target"]:
        raise ValueError(f"{path}: line 1: expected the header 'Source<TAB>Target', got {header[:2]!r}")
    sources: list[str] = []
    targets: list[int] = []
    for line_no, row in enumerate(rows, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != 2:
            raise ValueError(f"{path}: line {line_no}: expected 2 tab-separated fields (Source, Target), "
                             f"got {len(row)}")
        y = parse_label(row[1], range(10), f"{path}: line {line_no}", "Target")
        sources.append(row[0])
        targets.append(y)
    return sources, np.asarray(targets, dtype=np.int64)


def _process(files: dict[str, Path], seq_len: int, append_eos: bool, vocab_size: int) -> dict[str, np.ndarray]:
    data = {split: read_listops_tsv(p) for split, p in files.items()}
    toks = {split: [listops_tokens(s) for s in srcs] for split, (srcs, _) in data.items()}
    counts: Counter = Counter()
    for t in toks["train"]:
        counts.update(t)
    vocab = Vocab.build(counts, max_size=vocab_size)
    keep = seq_len - 1 if append_eos else seq_len
    dtype = smallest_uint(len(vocab))
    out: dict[str, np.ndarray] = {"vocab": np.asarray(vocab.itos)}
    for split, seqs in toks.items():
        ids = [np.asarray(vocab.encode(t[:keep]) + ([EOS] if append_eos else []), dtype=dtype) for t in seqs]
        flat, offsets = pack(ids, dtype)
        out[f"{split}_flat"], out[f"{split}_offsets"], out[f"{split}_labels"] = flat, offsets, data[split][1]
        out[f"{split}_raw_lengths"] = np.asarray([len(t) for t in seqs], dtype=np.int64)
    return out


def load_listops_folder(folder: Path, cfg: Any, info: TaskInfo, opts: dict[str, Any]) -> TaskData:
    """Read a ``listops-1000`` folder into :class:`TaskData` (tokenize, vocabulary from train, cache)."""
    files = {s: folder / f"{opts['task_name']}_{s}.tsv" for s in SPLIT_FILES}
    key = {"seq_len": info.seq_len, "append_eos": bool(opts["append_eos"]), "vocab_size": info.vocab_size,
           "task_name": opts["task_name"]}
    arrays = cached_arrays("listops", key, lambda: _process(files, info.seq_len, bool(opts["append_eos"]),
                                                            int(info.vocab_size or 18)),
                           sources=files.values(), enabled=bool(opts["cache"]))
    sets = {s: TokenDataset(arrays[f"{s}_flat"], arrays[f"{s}_offsets"], arrays[f"{s}_labels"]) for s in SPLIT_FILES}
    idx = apply_subsets(cfg, *(np.arange(len(sets[s].labels)) for s in SPLIT_FILES))
    for s, ix in zip(SPLIT_FILES, idx, strict=True):
        sets[s].indices = ix
    vocab = [str(t) for t in arrays["vocab"]]
    raw = np.concatenate([arrays[f"{s}_raw_lengths"] for s in SPLIT_FILES])
    return TaskData(info, sets["train"], sets["val"], sets["test"],
                    extras={"vocab": vocab, "folder": str(folder),
                            "truncated": int((raw + int(bool(opts["append_eos"])) > info.seq_len).sum())})


# --------------------------------------------------------------------------------------------------------------------
# listops (the release)

_DEFAULTS = {"append_eos": True, "task_name": "basic", "vocab_size": 18, "cache": True}


def _info(cfg: Any) -> TaskInfo:
    opts = get_options(cfg, "listops", _DEFAULTS)
    return TaskInfo("listops", n_classes=10, seq_len=cfg.seq_len or 2048, vocab_size=int(opts["vocab_size"]),
                    description="LRA ListOps (listops-1000/basic_*.tsv)")


def _build(cfg: Any) -> TaskData:
    info = _info(cfg)
    opts = get_options(cfg, "listops", _DEFAULTS)
    root = data_root(cfg.data_dir, "listops")
    required = [f"{opts['task_name']}_{s}.tsv" for s in SPLIT_FILES]
    folder = find_leaf(root, "listops-1000", required, task="listops", hint=_HINT)
    return load_listops_folder(folder, cfg, info, opts)


register_task("listops", info=_info, build=_build, replace=True,
              description="LRA ListOps (listops-1000/basic_*.tsv), 10 classes, length 2048")

# --------------------------------------------------------------------------------------------------------------------
# listops-synthetic (generated offline)

_SYN_DEFAULTS = {**_DEFAULTS, "n_train": 2000, "n_val": None, "n_test": None, "generator_seed": 0,
                 "min_length": 500, "max_length": 2000, "max_depth": 10, "max_args": 10}


def _syn_info(cfg: Any) -> TaskInfo:
    opts = get_options(cfg, "listops-synthetic", _SYN_DEFAULTS)
    return TaskInfo("listops-synthetic", n_classes=10, seq_len=cfg.seq_len or 2048,
                    vocab_size=int(opts["vocab_size"]),
                    description="ListOps generated offline with the LRA distribution")


def generated_listops_folder(opts: dict[str, Any]) -> Path:
    """The cache folder of a generated ListOps release for these options (generated on first use, atomically)."""
    from ..generators.listops import ListOpsParams, write_listops_release

    n_train = int(opts["n_train"])
    n_val = int(opts["n_val"]) if opts["n_val"] is not None else max(1, n_train // 10)
    n_test = int(opts["n_test"]) if opts["n_test"] is not None else max(1, n_train // 10)
    params = ListOpsParams(min_length=int(opts["min_length"]), max_length=int(opts["max_length"]),
                           max_depth=int(opts["max_depth"]), max_args=int(opts["max_args"]))
    key = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "seed": int(opts["generator_seed"]),
           "params": [params.min_length, params.max_length, params.max_depth, params.max_args],
           "task_name": opts["task_name"]}
    digest, _ = cache_key("listops-synthetic", key)
    final = cache_dir() / f"listops-synthetic-{digest[:20]}"
    if (final / "listops-1000" / f"{opts['task_name']}_test.tsv").is_file():
        return final / "listops-1000"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    write_listops_release(tmp, n_train, n_val, n_test, seed=int(opts["generator_seed"]), params=params,
                          task_name=opts["task_name"])
    try:
        os.replace(tmp, final)
    except OSError:  # another process won the race (or a stale folder exists): use it, drop ours
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / "listops-1000" / f"{opts['task_name']}_test.tsv").is_file():
            raise
    return final / "listops-1000"


def _syn_build(cfg: Any) -> TaskData:
    info = _syn_info(cfg)
    opts = get_options(cfg, "listops-synthetic", _SYN_DEFAULTS)
    required = [f"{opts['task_name']}_{s}.tsv" for s in SPLIT_FILES]
    if cfg.data_dir:
        folder = find_leaf(data_root(cfg.data_dir, "listops-synthetic"), "listops-1000", required,
                           task="listops-synthetic", hint=_HINT)
    else:
        folder = generated_listops_folder(opts)
    return load_listops_folder(folder, cfg, info, opts)


register_task("listops-synthetic", info=_syn_info, build=_syn_build, replace=True,
              description="ListOps generated offline (LRA distribution), cached on first use")
