"""Helpers shared by the LRA readers: options, vocabularies, ragged token datasets, seeded splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..base import get_options, seeded_subset  # get_options: re-exported for the readers

__all__ = [
    "parse_label",
    "SPECIALS",
    "CharEncoder",
    "PairTokenDataset",
    "TokenDataset",
    "Vocab",
    "apply_subsets",
    "char_codes",
    "char_vocab",
    "get_options",
    "pack",
    "random_split_indices",
    "smallest_uint",
]

#: Special tokens, in id order (S4's convention): padding 0, unknown 1, end of sequence 2.
SPECIALS = ("<pad>", "<unk>", "<eos>")
PAD, UNK, EOS = 0, 1, 2


def parse_label(text: str, valid: Sequence[int], where: str, field: str = "label") -> int:
    """An integer class label from a release file (``"1"``, ``"1.0"``), or a ``ValueError`` naming ``where`` (file
    and line) and the field."""
    try:
        y = int(float(text))
    except ValueError:
        raise ValueError(f"{where}: {field} {text[:20]!r} is not a number") from None
    if y not in valid:
        raise ValueError(f"{where}: {field} {y} is not in {min(valid)}..{max(valid)}")
    return y


def smallest_uint(n: int) -> np.dtype:
    """The smallest unsigned integer dtype holding ``0..n-1``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.int64)


@dataclass
class Vocab:
    """A token vocabulary: specials first, then tokens by descending train frequency (ties in string order)."""

    itos: list[str]

    def __post_init__(self) -> None:
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, counts: Counter | dict[str, int], *, min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = SPECIALS) -> Vocab:
        """From token counts (of the train split): keep tokens seen ``>= min_freq`` times, at most ``max_size`` in all
        (the rarest are dropped, i.e. become ``<unk>``)."""
        toks = sorted((t for t, c in counts.items() if c >= min_freq and t not in specials),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            toks = toks[: max(0, max_size - len(specials))]
        return cls(list(specials) + toks)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids (unknown tokens -> ``<unk>``)."""
        get = self.stoi.get
        return [get(t, UNK) for t in tokens]


def char_codes(text: str) -> np.ndarray:
    """Unicode code points of ``text`` as ``uint32`` (fast, no Python loop)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def pack(seqs: Sequence[np.ndarray], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate variable-length id arrays into ``(flat, offsets)`` with ``offsets[i]:offsets[i+1]`` = item i."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([np.asarray(s, dtype=dtype) for s in seqs]) if seqs else np.zeros(0, dtype)
    return flat.astype(dtype, copy=False), offsets


class TokenDataset(Dataset):
    """Variable-length token sequences stored flat: examples ``(x int64 (L_i,), y)``; :func:`collate` right-pads."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, labels: np.ndarray,
                 indices: np.ndarray | None = None) -> None:
        self.flat, self.offsets, self.labels = flat, offsets, np.asarray(labels, dtype=np.int64)
        self.indices = np.arange(len(self.labels)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(len(self.indices))

    def tokens(self, i: int) -> np.ndarray:
        """The ids of example ``i`` (numpy)."""
        j = int(self.indices[i])
        return self.flat[self.offsets[j]: self.offsets[j + 1]]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.tokens(i).astype(np.int64)), int(self.labels[self.indices[i]])


class PairTokenDataset(Dataset):
    """Pairs of token sequences (retrieval): examples ``((x1, x2), y)`` with int64 ``(L_1,)``, ``(L_2,)``."""

    def __init__(self, flat1: np.ndarray, off1: np.ndarray, flat2: np.ndarray, off2: np.ndarray,
                 labels: np.ndarray, indices: np.ndarray | None = None) -> None:
        self.a = TokenDataset(flat1, off1, labels, indices)
        self.b = TokenDataset(flat2, off2, labels, indices)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        (x1, y), (x2, _) = self.a[i], self.b[i]
        return (x1, x2), y


def random_split_indices(n: int, lengths: Sequence[int], seed: int) -> list[np.ndarray]:
    """``torch.utils.data.random_split(range(n), lengths, generator=Generator().manual_seed(seed))`` as sorted index
    arrays: one ``randperm(n)`` cut into consecutive pieces (S4/S5's Pathfinder and CIFAR splits)."""
    if sum(lengths) != n:
        raise ValueError(f"split lengths {list(lengths)} do not add up to {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    out, start = [], 0
    for ln in lengths:
        out.append(np.sort(perm[start: start + ln]))
        start += ln
    return out


def apply_subsets(cfg: Any, train: np.ndarray, val: np.ndarray, test: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded ``data.{train,val,test}_subset`` of the index arrays (for quick runs)."""
    seed = int(getattr(cfg, "split_seed", 42))
    return (seeded_subset(train, getattr(cfg, "train_subset", None), seed),
            seeded_subset(val, getattr(cfg, "val_subset", None), seed),
            seeded_subset(test, getattr(cfg, "test_subset", None), seed))


def char_vocab(docs: Sequence[np.ndarray], *, min_freq: int = 1, max_size: int | None = None) -> Vocab:
    """Character vocabulary from code-point arrays (train documents): specials, then characters seen
    ``>= min_freq`` times by descending count (ties by code point), at most ``max_size`` entries in all."""
    counts: Counter = Counter()
    chunk: list[np.ndarray] = []
    size = 0

    def flush() -> None:
        if chunk:
            cps, cnt = np.unique(np.concatenate(chunk), return_counts=True)
            for cp, c in zip(cps.tolist(), cnt.tolist(), strict=True):
                counts[chr(cp)] += c
            chunk.clear()

    for d in docs:
        chunk.append(d)
        size += len(d)
        if size > 5_000_000:
            flush()
            size = 0
    flush()
    return Vocab.build(counts, min_freq=min_freq, max_size=max_size)


class CharEncoder:
    """Maps code-point arrays to vocabulary ids with numpy (unknown characters -> ``<unk>``)."""

    def __init__(self, vocab: Vocab) -> None:
        pairs = sorted((ord(t), i) for t, i in vocab.stoi.items() if len(t) == 1)
        self.cps = np.asarray([p for p, _ in pairs], dtype=np.uint32)
        self.ids = np.asarray([i for _, i in pairs], dtype=np.int64)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        if len(self.cps) == 0:
            return np.full(len(codes), UNK, dtype=np.int64)
        pos = np.searchsorted(self.cps, codes)
        pos_c = np.minimum(pos, len(self.cps) - 1)
        hit = self.cps[pos_c] == codes
        return np.where(hit, self.ids[pos_c], UNK)


def text_vocab_size(level: str, append_eos: bool, declared: int) -> int:
    """Embedding size of a text task: bytes ``257`` (+1 for ``<eos>``), characters the declared size."""
    if level == "byte":
        return 257 + int(append_eos)
    if level == "char":
        return int(declared)
    raise ValueError(f"data.options.level must be 'char' or 'byte', got {level!r}")


def encode_documents(splits: dict[str, Sequence[str]], *, level: str, seq_len: int, append_eos: bool,
                     min_freq: int, vocab_size: int) -> dict[str, Any]:
    """Tokenize documents per split, building the character vocabulary on ``splits["train"]``.

    * ``level="char"`` (S4): Unicode characters; vocabulary ``<pad>, <unk>, <eos>`` + train characters seen
      ``>= min_freq`` times, at most ``vocab_size`` entries; ``<eos>`` (id 2) appended when ``append_eos``.
    * ``level="byte"`` (LRA's ``ByteTextEncoder``): UTF-8 bytes, id = byte + 1 (0 = padding), 257 ids; ``<eos>`` is
      id 257 when ``append_eos``.

    Each document keeps its first ``seq_len`` ids (``seq_len - 1`` before ``<eos>``).

    Returns:
        ``{"vocab": list of str, "<split>": (list of id arrays, raw lengths)}``.
    """
    keep = seq_len - 1 if append_eos else seq_len
    out: dict[str, Any] = {}
    if level == "byte":
        eos = 257
        out["vocab"] = ["<pad>"] + [f"<0x{b:02x}>" for b in range(256)] + (["<eos>"] if append_eos else [])
        for split, docs in splits.items():
            seqs, raw = [], []
            for d in docs:
                b = np.frombuffer(d.encode("utf-8", "surrogateescape"), dtype=np.uint8)
                raw.append(len(b))
                ids = b[:keep].astype(np.int64) + 1
                seqs.append(np.append(ids, eos) if append_eos else ids)
            out[split] = (seqs, raw)
        return out
    if level != "char":
        raise ValueError(f"data.options.level must be 'char' or 'byte', got {level!r}")
    codes = {split: [char_codes(d) for d in docs] for split, docs in splits.items()}
    vocab = char_vocab(codes["train"], min_freq=min_freq, max_size=vocab_size)
    enc = CharEncoder(vocab)
    out["vocab"] = vocab.itos
    for split, cs in codes.items():
        seqs = [np.append(enc(c[:keep]), EOS) if append_eos else enc(c[:keep]) for c in cs]
        out[split] = (seqs, [len(c) for c in cs])
    return out
