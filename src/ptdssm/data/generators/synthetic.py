"""Synthetic long-range tasks with the length as a parameter: adding, copying, selective copying, associative recall.

Every example is generated on the fly from ``numpy.random.default_rng([seed, split, index])``: datasets cost no
memory, any length works, and an example is the same in every run, process and worker. ``data.options.target``
picks the form; the default is the paper's (``K`` = ``n_memorize``, ``L`` = ``data.seq_len``):

* **adding** (Hochreiter & Schmidhuber 1997, as in Arjovsky et al. 2016): ``x`` float ``(L, 2)``: channel 0 values
  ``U[0, 1)``, channel 1 marks one position in the first half and one in the second; the target is the sum of the two
  marked values, in ``[0, 2)``. ``target: regression`` (default): ``y`` float ``(1,)``, ``TaskInfo(n_classes=1,
  loss="mse")`` (predicting the mean 1 gives MSE 1/6 = 0.167). ``target: class``: the sum quantized into ``n_bins``
  equal bins of ``[0, 2)`` (default 20, width 0.1), a pooled classification.
* **copying** (Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", sec. 4.1): ``K`` (10) symbols from
  ``n_symbols`` (8), ``L - 2K - 1`` blanks (the delay), a delimiter, then ``K`` blanks during which the model
  outputs the memorized symbols in order. ``target: token`` (default): ``y`` int64 ``(L,)`` holds the symbols at
  the last ``K`` positions and -100 (:data:`ptdssm.data.IGNORE_INDEX`, not scored) elsewhere; ``head="token"``.
  (The paper also scores the blank outputs before the delimiter; only the recalled symbols are scored here, so
  accuracy is the fraction of symbols recalled and chance is ``1 / n_symbols``.) ``target: sequence``: the same
  input with ``y`` int64 ``(K,)`` (``head="last-k"``). ``target: class`` (the former form): ``K`` symbols,
  ``L - K - 2`` blanks, a delimiter and a query ``q_k``; the class is the ``k``-th symbol.
* **selective-copying** (Gu & Dao 2023, "Mamba", sec. 3.1 / E.1): ``K`` (16) symbols from ``n_symbols`` (16) at
  random positions of the first ``L - K - 1`` positions, the others noise (blank) tokens, then a delimiter and ``K``
  blanks; the model outputs the symbols in order at those last ``K`` positions. ``token`` (default), ``sequence``
  and ``class`` (delimiter + query ``q_k`` at the end, class = ``k``-th symbol) as for copying.
* **associative-recall**. ``target: token`` (default) is multi-query associative recall (MQAR, Arora et al. 2023,
  "Zoology", sec. 3): ``n_pairs`` (8) key-value pairs (distinct keys from ``n_keys`` (16), values from ``n_values``
  (16)) fill the first ``2 n_pairs`` positions; the rest is blanks with ``n_queries`` queries placed uniformly at
  random (Zoology draws the gaps from a power law), each a key of a distinct pair followed by its value, as in
  Zoology's inputs. ``y`` int64 ``(L,)`` holds the value class at each query key's position and -100 elsewhere.
  ``n_queries`` defaults to ``min(n_pairs, (L - 2 n_pairs) // 2)``. ``target: class`` (the former form; Ba et al.
  2016, H3 Fu et al. 2023): the pairs spread in order over blanks, then a query key as the last token; the class is
  its value (with ``L = 2 n_pairs + 1`` it is H3's compact form).

Token ids: 0 = padding (never produced), 1 = blank/noise, then symbols (or keys and values), then the delimiter and
query tokens. Options (``data.options``): ``n_train`` (10000), ``n_val`` (1000), ``n_test`` (1000),
``generator_seed`` (0), ``target``, and the task's sizes above; ``data.seq_len`` is the length (defaults: adding
200, copying 200, selective-copying 256, associative-recall 64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..base import IGNORE_INDEX, TaskData, TaskInfo, get_options
from ..registry import register_task

__all__ = [
    "SyntheticDataset",
    "adding_example",
    "associative_recall_example",
    "copying_example",
    "selective_copying_example",
]

BLANK = 1
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_COPY_TARGETS = ("token", "sequence", "class")


def adding_example(rng: np.random.Generator, length: int) -> tuple[np.ndarray, float]:
    """``(x float32 (L, 2), sum)``: values ``U[0,1)``, one marker in each half (the adding problem)."""
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    x = np.zeros((length, 2), dtype=np.float32)
    x[:, 0] = rng.random(length, dtype=np.float32)
    half = length // 2
    i, j = int(rng.integers(0, half)), int(rng.integers(half, length))
    x[i, 1] = x[j, 1] = 1.0
    return x, float(x[i, 0]) + float(x[j, 0])


def _check_copy_target(target: str) -> None:
    if target not in _COPY_TARGETS:
        raise ValueError(f"target must be one of {', '.join(_COPY_TARGETS)}, got {target!r}")


def _recall_targets(x: np.ndarray, sym: np.ndarray, target: str) -> np.ndarray:
    """Targets of the ``token`` (``(L,)``, symbols at the last ``K`` positions, -100 before) or ``sequence`` form."""
    if target == "sequence":
        return sym.astype(np.int64)
    y = np.full(x.shape[0], IGNORE_INDEX, dtype=np.int64)
    y[x.shape[0] - len(sym):] = sym
    return y


def copying_example(rng: np.random.Generator, length: int, n_memorize: int = 10, n_symbols: int = 8,
                    target: str = "token") -> tuple[np.ndarray, Any]:
    """Copying: ``(tokens int64 (L,), y)``; ``y`` int64 ``(L,)`` (``token``), ``(n_memorize,)`` (``sequence``) or
    an int (``class``).

    Ids: 1 blank, ``2 .. 1+n_symbols`` symbols, ``2+n_symbols`` delimiter, then query tokens ``q_0 .. q_{n-1}``
    (``class`` form only). Classes are symbol indices ``0 .. n_symbols-1``.
    """
    _check_copy_target(target)
    sym = rng.integers(0, n_symbols, size=n_memorize)
    delim = 2 + n_symbols
    x = np.full(length, BLANK, dtype=np.int64)
    if target == "class":
        if length < n_memorize + 2:
            raise ValueError(f"copying needs length >= n_memorize + 2 = {n_memorize + 2}, got {length}")
        k = int(rng.integers(0, n_memorize))
        x[:n_memorize] = sym + 2
        x[-2], x[-1] = delim, delim + 1 + k
        return x, int(sym[k])
    if length < 2 * n_memorize + 1:
        raise ValueError(f"copying ({target}) needs length >= 2 n_memorize + 1 = {2 * n_memorize + 1}, got {length}")
    x[:n_memorize] = sym + 2
    x[-n_memorize - 1] = delim
    return x, _recall_targets(x, sym, target)


def selective_copying_example(rng: np.random.Generator, length: int, n_memorize: int = 16, n_symbols: int = 16,
                              target: str = "token") -> tuple[np.ndarray, Any]:
    """Selective copying: symbols at random positions among noise; same ids and targets as :func:`copying_example`."""
    _check_copy_target(target)
    delim = 2 + n_symbols
    tail = 2 if target == "class" else n_memorize + 1
    body = length - tail
    if body < n_memorize:
        raise ValueError(f"selective copying needs length >= {n_memorize + tail}, got {length}")
    sym = rng.integers(0, n_symbols, size=n_memorize)
    pos = np.sort(rng.choice(body, size=n_memorize, replace=False))
    x = np.full(length, BLANK, dtype=np.int64)
    x[pos] = sym + 2
    if target == "class":
        k = int(rng.integers(0, n_memorize))
        x[-2], x[-1] = delim, delim + 1 + k
        return x, int(sym[k])
    x[body] = delim
    return x, _recall_targets(x, sym, target)


def associative_recall_example(rng: np.random.Generator, length: int, n_pairs: int = 8, n_keys: int = 16,
                               n_values: int = 16, target: str = "token",
                               n_queries: int | None = None) -> tuple[np.ndarray, Any]:
    """Associative recall: ``(tokens int64 (L,), y)``, ``y`` int64 ``(L,)`` (``token``, MQAR) or an int (``class``).

    Ids: 1 blank, keys ``2 .. 1+n_keys``, values ``2+n_keys .. 1+n_keys+n_values``. ``token``: pairs at
    ``0 .. 2 n_pairs - 1``, then ``n_queries`` (key, value) queries at random non-overlapping places among blanks,
    ``y[p]`` = value class at each query key position ``p``, -100 elsewhere. ``class``: pairs spread over blanks,
    the last token is the query key, ``y`` its value class.
    """
    if target not in ("token", "class"):
        raise ValueError(f"target must be one of token, class, got {target!r}")
    if n_pairs > n_keys:
        raise ValueError(f"associative recall needs n_pairs <= n_keys (distinct keys), got {n_pairs} > {n_keys}")
    if target == "token":
        return _mqar_example(rng, length, n_pairs, n_keys, n_values, n_queries)
    if length < 2 * n_pairs + 1:
        raise ValueError(f"associative recall needs length >= 2 n_pairs + 1 = {2 * n_pairs + 1}, got {length}")
    keys = rng.choice(n_keys, size=n_pairs, replace=False)
    vals = rng.integers(0, n_values, size=n_pairs)
    slots = length - 1 - 2 * n_pairs  # blanks to spread between the pairs
    # choose where the pairs start: n_pairs ordered positions among (slots + n_pairs) "items"
    starts = np.sort(rng.choice(slots + n_pairs, size=n_pairs, replace=False)) + np.arange(n_pairs)
    x = np.full(length, BLANK, dtype=np.int64)
    x[starts] = keys + 2
    x[starts + 1] = vals + 2 + n_keys
    q = int(rng.integers(0, n_pairs))
    x[-1] = keys[q] + 2
    return x, int(vals[q])


def _mqar_example(rng: np.random.Generator, length: int, n_pairs: int, n_keys: int, n_values: int,
                  n_queries: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-query associative recall (Zoology's layout, uniform query places); see the module docstring."""
    region = length - 2 * n_pairs
    q = min(n_pairs, region // 2) if n_queries is None else int(n_queries)
    if not 1 <= q <= n_pairs or 2 * q > region:
        raise ValueError(f"associative recall (token) needs 1 <= n_queries <= n_pairs and length >= 2 (n_pairs + "
                         f"n_queries); got length {length}, n_pairs {n_pairs}, n_queries {n_queries}")
    keys = rng.choice(n_keys, size=n_pairs, replace=False)
    vals = rng.integers(0, n_values, size=n_pairs)
    x = np.full(length, BLANK, dtype=np.int64)
    x[0 : 2 * n_pairs : 2] = keys + 2
    x[1 : 2 * n_pairs : 2] = vals + 2 + n_keys
    which = rng.choice(n_pairs, size=q, replace=False)  # the queried pairs, in query order
    starts = 2 * n_pairs + np.sort(rng.choice(region - q, size=q, replace=False)) + np.arange(q)
    x[starts] = keys[which] + 2
    x[starts + 1] = vals[which] + 2 + n_keys
    y = np.full(length, IGNORE_INDEX, dtype=np.int64)
    y[starts] = vals[which]
    return x, y


class SyntheticDataset(Dataset):
    """``n`` examples made on the fly by ``make(rng)`` with ``rng = default_rng([seed, split, index])``."""

    def __init__(self, make: Callable[[np.random.Generator], tuple[np.ndarray, Any]], n: int, seed: int,
                 split: str) -> None:
        self.make, self.n, self.seed, self.split = make, int(n), int(seed), _SPLIT_IDS[split]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x, y = self.make(np.random.default_rng([self.seed, self.split, int(i)]))
        return torch.from_numpy(x), (torch.from_numpy(y) if isinstance(y, np.ndarray) else y)


@dataclass(frozen=True)
class _Spec:
    name: str
    default_len: int
    options: dict[str, Any]
    description: str


_COMMON = {"n_train": 10000, "n_val": 1000, "n_test": 1000, "generator_seed": 0}
_SPECS = {
    "adding": _Spec("adding", 200, {"n_bins": 20, "target": "regression"},
                    "adding problem (regress the sum of two marked values)"),
    "copying": _Spec("copying", 200, {"n_memorize": 10, "n_symbols": 8, "target": "token"},
                     "copying memory (output the memorized symbols after a delay)"),
    "selective-copying": _Spec("selective-copying", 256, {"n_memorize": 16, "n_symbols": 16, "target": "token"},
                               "selective copying (output the symbols scattered among noise, in order)"),
    "associative-recall": _Spec("associative-recall", 64,
                                {"n_pairs": 8, "n_keys": 16, "n_values": 16, "n_queries": None, "target": "token"},
                                "associative recall (values of the queried keys, multi-query)"),
}
_TARGETS = {"adding": ("regression", "class"), "copying": _COPY_TARGETS, "selective-copying": _COPY_TARGETS,
            "associative-recall": ("token", "class")}


def _opts(cfg: Any, spec: _Spec) -> dict[str, Any]:
    defaults = {**_COMMON, **spec.options}
    opts = get_options(cfg, spec.name, defaults)
    valid = _TARGETS[spec.name]
    if opts["target"] not in valid:
        raise ValueError(f"data.options.target for {spec.name} must be one of {', '.join(valid)}, "
                         f"got {opts['target']!r}")
    return opts


def _info_for(spec: _Spec) -> Callable[[Any], TaskInfo]:
    def info(cfg: Any) -> TaskInfo:
        o = _opts(cfg, spec)
        L = int(cfg.seq_len or spec.default_len)
        desc = f"{spec.description}, length {L}"
        if spec.name == "adding":
            if o["target"] == "regression":
                return TaskInfo(spec.name, n_classes=1, seq_len=L, d_input=2, description=desc, loss="mse")
            return TaskInfo(spec.name, n_classes=int(o["n_bins"]), seq_len=L, d_input=2, description=desc)
        head = {"token": "token", "class": "pooled", "sequence": "last-k"}[o["target"]]
        if spec.name == "associative-recall":
            return TaskInfo(spec.name, n_classes=int(o["n_values"]), seq_len=L, head=head,
                            vocab_size=2 + int(o["n_keys"]) + int(o["n_values"]), description=desc)
        vocab = 2 + int(o["n_symbols"]) + 1 + int(o["n_memorize"])  # pad, blank, symbols, delimiter, queries
        target_len = int(o["n_memorize"]) if head == "last-k" else None
        return TaskInfo(spec.name, n_classes=int(o["n_symbols"]), seq_len=L, vocab_size=vocab, description=desc,
                        head=head, target_len=target_len)

    return info


def _maker(spec: _Spec, o: dict[str, Any], L: int) -> Callable[[np.random.Generator], tuple[np.ndarray, Any]]:
    if spec.name == "adding":
        bins, regression = int(o["n_bins"]), o["target"] == "regression"

        def make(rng: np.random.Generator) -> tuple[np.ndarray, Any]:
            x, s = adding_example(rng, L)
            if regression:
                return x, np.array([s], dtype=np.float32)
            return x, min(int(s / 2.0 * bins), bins - 1)

        return make
    if spec.name == "copying":
        return lambda rng: copying_example(rng, L, int(o["n_memorize"]), int(o["n_symbols"]), o["target"])
    if spec.name == "selective-copying":
        return lambda rng: selective_copying_example(rng, L, int(o["n_memorize"]), int(o["n_symbols"]), o["target"])
    nq = None if o["n_queries"] is None else int(o["n_queries"])
    return lambda rng: associative_recall_example(rng, L, int(o["n_pairs"]), int(o["n_keys"]), int(o["n_values"]),
                                                  o["target"], nq)


def _build_for(spec: _Spec) -> Callable[[Any], TaskData]:
    info_fn = _info_for(spec)

    def build(cfg: Any) -> TaskData:
        info, o = info_fn(cfg), _opts(cfg, spec)
        make = _maker(spec, o, info.seq_len)
        make(np.random.default_rng(0))  # validate the sizes now, with a clear message
        seed = int(o["generator_seed"])
        sizes = {"train": cfg.train_subset or o["n_train"], "val": cfg.val_subset or o["n_val"],
                 "test": cfg.test_subset or o["n_test"]}
        sizes = {k: min(int(v), int(o[f"n_{k}"])) for k, v in sizes.items()}
        sets = {k: SyntheticDataset(make, n, seed, k) for k, n in sizes.items()}
        return TaskData(info, sets["train"], sets["val"], sets["test"], extras={"options": o})

    return build


for _spec in _SPECS.values():
    register_task(_spec.name, info=_info_for(_spec), build=_build_for(_spec), replace=True,
                  description=_spec.description)
