"""Byte-level language modelling on real text: the tasks ``fortunes`` and ``text-bytes`` (``head="lm"``).

Both read UTF-8 text, turn it into one byte stream per split and cut each stream into windows of ``L + 1`` bytes
(``L`` = ``data.seq_len``, default 512). A window ``w`` gives the example ``x = w[:-1] + 1`` and ``y = w[1:] + 1``
(int64 ``(L,)``): the target at each position is the next byte. Token ids follow the ``"bytes"`` tokenizer
(:attr:`ptdssm.data.TaskInfo.tokenizer`): id = byte value + 1, 0 = padding, vocabulary 257, so the task declares
``TaskInfo(n_classes=257, vocab_size=257, head="lm", tokenizer="bytes")`` and a run reports bits per byte
(:class:`ptdssm.experiments.objective.Objective`, ``bpb``).

**Windows.** Validation and test (and training by default) take non-overlapping windows starting at ``0, L, 2L,
...``; every byte of the stream but the first is a target exactly once. The last window of a split is usually
short: ``x`` is padded with 0 and ``y`` with -100 (:data:`~ptdssm.data.IGNORE_INDEX`, not scored) up to ``L``.
``data.options.offsets: random`` makes training windows start at random offsets instead, window ``i`` at
``numpy.random.default_rng([generator_seed, i]).integers(0, S - L)`` (``S`` = stream bytes): the same window for
an index in every run, process and epoch (the sampler's shuffling changes the order, not the windows);
``n_train`` then sets how many windows an epoch has (default: as many as the aligned windows).

**fortunes** reads the fortune databases of the Debian/Ubuntu package ``fortunes`` (``apt-get install fortunes``;
about 2.5 MB of English quotations, jokes, poems and definitions in 42 files, e.g. ``art``, ``computers``,
``cookie``, ``literature``, ``science``, ``songs-poems``, ``wisdom``) from ``/usr/share/games/fortunes``, or the
folder ``data.options.path`` / ``--data-dir`` names. Every regular file of the folder is read, in sorted name order,
except the ``strfile`` indexes ``*.dat``, the ``*.u8`` names (symlinks to, or copies of, the plain databases), hidden
files, and files that are not UTF-8 text (or hold NUL bytes): those are listed in ``TaskData.extras["skipped"]``.
A database is entries separated by lines holding only ``%``; an entry is the text between two such lines, leading and
trailing newlines removed; blank entries are dropped. By default terminal overstriking (``c\\b``:
underline and bold in the old databases) is removed so the text reads as printed (``overstrike: keep`` keeps the
raw bytes). Each entry goes to train, validation or test by a seeded hash of its bytes (blake2b keyed with
``data.split_seed``; ``split`` fractions, default 0.9 / 0.05 / 0.05): the split of an entry does not depend on
which files are read or their order, and an entry that occurs twice (in two databases) lands in one split, so no
held-out text is ever trained on. A split's stream is its entries in file order, each followed by ``"\\n%\\n"``
(the database's own separator), encoded as UTF-8.

**text-bytes** reads any UTF-8 (or ASCII) text files from ``data.options.path`` / ``--data-dir`` /
``$PTDSSM_DATA_DIR``: the files matching ``data.options.files`` (a glob relative to the folder, default ``*.txt``;
``**/*.txt`` recurses), in sorted order, concatenated (a newline is added to a file that does not end with one) and
split contiguously: the first 90 % of the bytes train, the next 5 % validation, the last 5 % test (``split``).

Options (``data.options``):

* both: ``path`` (folder; relative paths are under ``--data-dir`` when both are given), ``files``, ``n_train``
  (cap on training windows: a seeded subset of the aligned windows, or the number of random windows),
  ``offsets`` (``aligned`` | ``random``), ``split`` (three fractions summing to 1), ``generator_seed`` (0: the
  random offsets and the ``n_train`` subset).
* ``fortunes``: ``files`` is a list of database names (or one comma-separated string; default: all),
  ``overstrike`` (``strip`` | ``keep``).
* ``text-bytes``: ``files`` is a glob.

``data.train_subset`` / ``val_subset`` / ``test_subset`` take seeded subsets of the windows (quick runs). Missing
data is a one-line :class:`~ptdssm.errors.DataError` that says what to install or pass; a file that is not UTF-8 is
one naming the file and line.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .base import BYTE_VOCAB_SIZE, IGNORE_INDEX, TaskData, TaskInfo, decode_utf8, get_options, seeded_subset
from .registry import register_task

__all__ = ["DEFAULT_FORTUNES_DIR", "ENTRY_SEPARATOR", "ByteWindows", "aligned_starts", "fortune_files",
           "read_fortune_entries", "split_of_entry"]

#: Where ``apt-get install fortunes`` puts the databases.
DEFAULT_FORTUNES_DIR = "/usr/share/games/fortunes"
#: What follows every entry in a ``fortunes`` split's byte stream (the databases' own separator line).
ENTRY_SEPARATOR = b"\n%\n"
DATA_DIR_ENV = "PTDSSM_DATA_DIR"
_DEFAULT_LEN = 512
_SPLITS = ("train", "val", "test")
_COMMON = {"path": None, "n_train": None, "offsets": "aligned", "split": [0.9, 0.05, 0.05], "generator_seed": 0}
_OPTIONS = {"fortunes": {**_COMMON, "files": None, "overstrike": "strip"},
            "text-bytes": {**_COMMON, "files": "*.txt"}}
_CHOICES = {"offsets": ("aligned", "random"), "overstrike": ("strip", "keep")}
_OVERSTRIKE = re.compile(r"[^\x08]\x08")


# ---------------------------------------------------------------------------------------------------- options


def _options(cfg: Any, task: str) -> dict[str, Any]:
    defaults = _OPTIONS[task]
    o = get_options(cfg, task, defaults)
    for key, valid in _CHOICES.items():
        if key in o and o[key] not in valid:
            raise DataError(f"data.options.{key} for task {task!r} must be one of {', '.join(valid)}, got {o[key]!r}")
    split = o["split"]
    if (not isinstance(split, (list, tuple)) or len(split) != 3 or any(float(f) < 0 for f in split)
            or not math.isclose(sum(float(f) for f in split), 1.0, abs_tol=1e-6) or float(split[0]) <= 0):
        raise DataError(f"data.options.split for task {task!r} must be three fractions (train, val, test) >= 0 "
                        f"summing to 1 with train > 0, got {split!r}")
    o["split"] = [float(f) for f in split]
    if o["n_train"] is not None and int(o["n_train"]) < 1:
        raise DataError(f"data.options.n_train for task {task!r} must be >= 1, got {o['n_train']!r}")
    return o


def _info(task: str, description: str) -> Callable[[Any], TaskInfo]:
    def info(cfg: Any) -> TaskInfo:
        _options(cfg, task)
        L = int(cfg.seq_len or _DEFAULT_LEN)
        return TaskInfo(task, n_classes=BYTE_VOCAB_SIZE, seq_len=L, vocab_size=BYTE_VOCAB_SIZE, head="lm",
                        tokenizer="bytes", description=f"{description}, windows of {L} bytes")

    return info


def _resolve(cfg: Any, o: dict[str, Any], fallback: str | None) -> Path | None:
    """``data.options.path`` (under ``data.data_dir`` when relative and both are given), else ``data.data_dir``,
    else ``fallback``."""
    data_dir = getattr(cfg, "data_dir", None)
    if o.get("path"):
        p = Path(str(o["path"])).expanduser()
        return Path(data_dir).expanduser() / p if data_dir and not p.is_absolute() else p
    if data_dir:
        return Path(data_dir).expanduser()
    return Path(fallback).expanduser() if fallback else None


# ------------------------------------------------------------------------------------------------ reading text


def _is_text(path: Path) -> bool:
    raw = path.read_bytes()
    if b"\x00" in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def fortune_files(folder: str | Path, names: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """The fortune databases of ``folder`` to read (sorted by name) and the names skipped, as ``"name (why)"``.

    Without ``names``: every regular file except ``*.dat``, ``*.u8``, hidden files and files that are not UTF-8
    text. With ``names``: exactly those databases (each must exist and be UTF-8 text, else :class:`DataError`).
    """
    folder = Path(folder)
    if names is not None:
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        out = []
        for name in sorted(set(str(n) for n in names)):
            p = folder / name
            if not p.is_file():
                have = ", ".join(q.name for q in fortune_files(folder)[0][:50])
                raise DataError(f"task 'fortunes': data.options.files names {name!r} but {p} is not a file "
                                f"(databases in {folder}: {have or 'none'})")
            decode_utf8(p.read_bytes(), p)  # one line naming the file and line if it is not UTF-8
            out.append(p)
        return out, []
    keep, skipped = [], []
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        if p.name.startswith("."):
            continue
        if p.suffix in (".dat", ".u8"):
            skipped.append(f"{p.name} ({'strfile index' if p.suffix == '.dat' else 'UTF-8 alias'})")
        elif not p.is_file():
            skipped.append(f"{p.name} (not a regular file)")
        elif not _is_text(p):
            skipped.append(f"{p.name} (not UTF-8 text)")
        else:
            keep.append(p)
    return keep, skipped


def read_fortune_entries(path: str | Path, overstrike: str = "strip") -> list[bytes]:
    """The entries of one fortune database, as UTF-8 bytes, in file order (module docstring)."""
    path = Path(path)
    text = decode_utf8(path.read_bytes(), path).replace("\r\n", "\n")
    entries, lines = [], []
    for line in text.split("\n") + ["%"]:  # a final separator closes the last entry
        if line != "%":
            lines.append(line)
            continue
        entry = "\n".join(lines).strip("\n")
        lines = []
        if overstrike == "strip":
            while "\x08" in entry:
                stripped = _OVERSTRIKE.sub("", entry)
                if stripped == entry:
                    stripped = entry.replace("\x08", "")
                entry = stripped
        if entry.strip():
            entries.append(entry.encode("utf-8"))
    return entries


def split_of_entry(entry: bytes, seed: int, fractions: tuple[float, float, float] | list[float] = (0.9, 0.05, 0.05),
                   ) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for an entry: ``u`` = the first 8 bytes of blake2b(entry, key = seed)
    as a fraction of 2**64; train if ``u < f_train``, val if ``u < f_train + f_val``, else test."""
    h = hashlib.blake2b(entry, digest_size=8, key=str(int(seed)).encode()).digest()
    u = int.from_bytes(h, "big") / 2.0**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


# ------------------------------------------------------------------------------------------------ the dataset


class ByteWindows(Dataset):
    """Next-byte examples cut from a byte stream (module docstring).

    Args:
        stream: uint8 bytes of the split.
        seq_len: ``L``.
        starts: window start offsets; ``None`` with ``n_random`` draws them per index.
        n_random: number of random windows (``offsets: random``); window ``i`` starts at
            ``default_rng([seed, i]).integers(0, max(S - L, 1))``.
        seed: seed of the random windows.
    """

    def __init__(self, stream: np.ndarray, seq_len: int, starts: np.ndarray | None = None, n_random: int | None = None,
                 seed: int = 0) -> None:
        self.stream = np.asarray(stream, dtype=np.uint8)
        self.seq_len, self.seed = int(seq_len), int(seed)
        if starts is None and n_random is None:
            starts = aligned_starts(len(self.stream), self.seq_len)
        self.starts = None if starts is None else np.asarray(starts, dtype=np.int64)
        self.n = len(self.starts) if self.starts is not None else int(n_random)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.n

    def start(self, i: int) -> int:
        if self.starts is not None:
            return int(self.starts[i])
        hi = max(len(self.stream) - self.seq_len, 1)  # starts 0 .. S-L-1: a full window of L + 1 bytes
        return int(np.random.default_rng([self.seed, int(i)]).integers(0, hi))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        s, L = self.start(i), self.seq_len
        w = self.stream[s: s + L + 1].astype(np.int64) + 1
        m = len(w) - 1  # real positions
        x = np.zeros(L, dtype=np.int64)
        y = np.full(L, IGNORE_INDEX, dtype=np.int64)
        x[:m], y[:m] = w[:-1], w[1:]
        return torch.from_numpy(x), torch.from_numpy(y)


def aligned_starts(n_bytes: int, seq_len: int) -> np.ndarray:
    """Starts ``0, L, 2L, ...`` of non-overlapping windows whose targets cover bytes ``1 .. n_bytes - 1`` once."""
    if n_bytes < 2:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_bytes - 1, seq_len, dtype=np.int64)


def _datasets(cfg: Any, o: dict[str, Any], info: TaskInfo, streams: dict[str, bytes]) -> dict[str, ByteWindows]:
    """The three splits' windows; ``n_train`` and ``data.*_subset`` cap them (the smaller cap wins)."""
    L, seed = info.seq_len, int(o["generator_seed"])
    sets = {}
    for k, raw in streams.items():
        arr = np.frombuffer(raw, dtype=np.uint8)
        starts = aligned_starts(len(arr), L)
        caps = [int(c) for c in (getattr(cfg, f"{k}_subset", None), o["n_train"] if k == "train" else None) if c]
        if k == "train" and o["offsets"] == "random":
            n = int(o["n_train"] or len(starts)) if len(arr) >= 2 else 0
            sets[k] = ByteWindows(arr, L, n_random=min([n, *caps]), seed=seed)
        else:
            sets[k] = ByteWindows(arr, L, starts=seeded_subset(starts, min(caps) if caps else None,
                                                               seed + _SPLITS.index(k)))
    return sets


# ---------------------------------------------------------------------------------------------------- fortunes


def _fortunes_dir(cfg: Any, o: dict[str, Any]) -> Path:
    d = _resolve(cfg, o, DEFAULT_FORTUNES_DIR)
    assert d is not None
    if not d.is_dir():
        raise DataError(f"task 'fortunes': no fortune databases at {d} (install them: apt-get install fortunes, or "
                        f"pass --data-dir D / data.options.path with fortune files)")
    return d


def fortunes_build(cfg: Any) -> TaskData:
    o = _options(cfg, "fortunes")
    info = _info("fortunes", _DESCRIPTIONS["fortunes"])(cfg)
    folder = _fortunes_dir(cfg, o)
    files, skipped = fortune_files(folder, o["files"])
    if not files:
        raise DataError(f"task 'fortunes': {folder} holds no fortune database (UTF-8 text files other than *.dat "
                        f"and *.u8); apt-get install fortunes, or pass --data-dir D with fortune files")
    parts: dict[str, list[bytes]] = {k: [] for k in _SPLITS}
    counts, per_file = {k: 0 for k in _SPLITS}, {}
    for p in files:
        entries = read_fortune_entries(p, o["overstrike"])
        per_file[p.name] = len(entries)
        for e in entries:
            k = split_of_entry(e, int(cfg.split_seed), o["split"])
            parts[k].append(e + ENTRY_SEPARATOR)
            counts[k] += 1
    if sum(counts.values()) == 0:
        raise DataError(f"task 'fortunes': the databases in {folder} hold no entries (entries are separated by "
                        f"lines holding only '%')")
    streams = {k: b"".join(v) for k, v in parts.items()}
    sets = _datasets(cfg, o, info, streams)
    extras = {"folder": str(folder), "files": per_file, "skipped": skipped, "entries": counts,
              "stream_bytes": {k: len(v) for k, v in streams.items()}, "tokenizer": "bytes", "options": o}
    return TaskData(info, sets["train"], sets["val"], sets["test"], extras=extras)


# -------------------------------------------------------------------------------------------------- text-bytes


def text_bytes_build(cfg: Any) -> TaskData:
    o = _options(cfg, "text-bytes")
    info = _info("text-bytes", _DESCRIPTIONS["text-bytes"])(cfg)
    folder = _resolve(cfg, o, os.environ.get(DATA_DIR_ENV))
    if folder is None:
        raise DataError("task 'text-bytes' reads UTF-8 text files: pass --data-dir D (data.data_dir) or "
                        f"data.options.path, or set ${DATA_DIR_ENV}")
    if not folder.is_dir():
        raise DataError(f"task 'text-bytes': {folder} is not a folder (expected UTF-8 text files matching "
                        f"{o['files']!r})")
    files = sorted(p for p in folder.glob(str(o["files"])) if p.is_file())
    if not files:
        raise DataError(f"task 'text-bytes': no file in {folder} matches data.options.files {o['files']!r}")
    chunks, sizes = [], {}
    for p in files:
        raw = p.read_bytes()
        decode_utf8(raw, p)
        if raw and not raw.endswith(b"\n"):
            raw += b"\n"
        chunks.append(raw)
        sizes[str(p.relative_to(folder))] = len(raw)
    stream = b"".join(chunks)
    a = int(len(stream) * o["split"][0])
    b = a + int(len(stream) * o["split"][1])
    streams = {"train": stream[:a], "val": stream[a:b], "test": stream[b:]}
    sets = _datasets(cfg, o, info, streams)
    extras = {"folder": str(folder), "files": sizes, "stream_bytes": {k: len(v) for k, v in streams.items()},
              "tokenizer": "bytes", "options": o}
    return TaskData(info, sets["train"], sets["val"], sets["test"], extras=extras)


_DESCRIPTIONS = {
    "fortunes": "byte-level language model on the fortune databases (apt-get install fortunes), bits per byte",
    "text-bytes": "byte-level language model on your UTF-8 text files (--data-dir), bits per byte",
}
register_task("fortunes", info=_info("fortunes", _DESCRIPTIONS["fortunes"]), build=fortunes_build, replace=True,
              description=_DESCRIPTIONS["fortunes"])
register_task("text-bytes", info=_info("text-bytes", _DESCRIPTIONS["text-bytes"]), build=text_bytes_build,
              replace=True, description=_DESCRIPTIONS["text-bytes"])
