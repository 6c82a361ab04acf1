"""Seeded ListOps generator with the distribution of the LRA release, writing the release's TSV layout.

Algorithm (LRA ``lra_benchmarks/data/listops.py``; facts in ``data-formats.md`` section 2.1):

* a node at ``depth < max_depth`` is a leaf with probability ``1 - value_p`` (0.75), a value uniform in 0..9; at
  ``max_depth`` it is always a leaf. Otherwise it draws ``randint(2, max_args)`` children at ``depth + 1`` and an
  operator uniformly from ``[MIN``, ``[MAX``, ``[MED``, ``[SM`` (sum modulo 10). The root has depth 1.
* length = operators + values + closing brackets (parentheses not counted); a tree is kept when
  ``min_length < length < max_length`` (500 and 2000 in LRA), and duplicates are dropped.
* each operator node prints left-nested: ``[MAX 2 9]`` is ``( ( ( [MAX 2 ) 9 ) ] )``.
* ``MED`` is ``int(median)`` (the mean of the two middle values truncated for an even count), ``SM`` is the sum mod 10.

Differences from the original: a seed (the original never seeds ``random``), generation-order deduplication (the
original iterates a ``set``), and a draw that already exceeds ``max_length`` is abandoned early; rejected draws are
discarded either way, so the distribution of kept trees is unchanged, only faster.

:func:`write_listops_release` writes ``<out>/listops-1000/basic_{train,val,test}.tsv`` exactly like the release
(``csv.writer`` with a tab delimiter: header ``Source<TAB>Target``, CRLF line ends), so the reader
(:mod:`ptdssm.data.lra.listops`) is exercised on the generator's files.
"""

from __future__ import annotations

import csv
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "OPERATORS",
    "ListOpsParams",
    "evaluate_listops",
    "generate_listops",
    "listops_stats",
    "tree_to_string",
    "tree_value",
    "write_listops_release",
    "write_listops_tsv",
]

#: The LRA operators (``[FIRST`` / ``[LAST`` exist in the original code but are excluded there too).
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"

Tree = int | tuple[str, list["Tree"]]


@dataclass(frozen=True)
class ListOpsParams:
    """Generator parameters (LRA defaults).

    Attributes:
        min_length, max_length: keep trees with ``min_length < length < max_length`` (strict; length counts
            operators, values and ``]``).
        max_depth: nodes at this depth are always leaves.
        max_args: most children of an operator (at least 2).
        value_p: probability that a node above ``max_depth`` is an operator (LRA ``VALUE_P = 0.25``).
        operators: operator tokens to draw from.
    """

    min_length: int = 500
    max_length: int = 2000
    max_depth: int = 10
    max_args: int = 10
    value_p: float = 0.25
    operators: tuple[str, ...] = OPERATORS

    def validate(self) -> None:
        """Raise ``ValueError`` for parameters that cannot produce a tree."""
        if self.max_args < 2:
            raise ValueError(f"max_args must be >= 2, got {self.max_args}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {self.max_depth}")
        if not 0.0 <= self.value_p <= 1.0:
            raise ValueError(f"value_p must be in [0, 1], got {self.value_p}")
        if self.max_length - self.min_length < 2:
            raise ValueError(f"no length L with {self.min_length} < L < {self.max_length}")
        bad = [op for op in self.operators if op not in OPERATORS]
        if bad or not self.operators:
            raise ValueError(f"operators must be a non-empty subset of {OPERATORS}, got {list(self.operators)}")


class _TooLong(Exception):
    pass


def _draw(rng: random.Random, depth: int, p: ListOpsParams, budget: list[int]) -> Tree:
    r = rng.random() if depth < p.max_depth else 1.0
    if r > p.value_p:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLong
        return rng.randint(0, 9)
    n = rng.randint(2, p.max_args)
    budget[0] -= 2
    children = [_draw(rng, depth + 1, p, budget) for _ in range(n)]
    op = rng.choice(p.operators)
    return (op, children)


def _length(t: Tree) -> int:
    if isinstance(t, int):
        return 1
    return 2 + sum(_length(c) for c in t[1])


def tree_value(t: Tree) -> int:
    """The value 0..9 of a tree."""
    if isinstance(t, int):
        return t
    op, children = t
    vals = [tree_value(c) for c in children]
    return _apply(op, vals)


def _apply(op: str, vals: Sequence[int]) -> int:
    if op == "[MIN":
        return min(vals)
    if op == "[MAX":
        return max(vals)
    if op == "[SM":
        return sum(vals) % 10
    if op == "[MED":
        s = sorted(vals)
        n = len(s)
        return s[n // 2] if n % 2 else int((s[n // 2 - 1] + s[n // 2]) / 2)
    raise ValueError(f"unknown ListOps operator {op!r}")


def tree_to_string(t: Tree) -> str:
    """The release's ``Source`` string: every operator node left-nested, ``( ( [OP a ) b ) ... ] )``."""
    if isinstance(t, int):
        return str(t)
    op, children = t
    s = op
    for c in children:
        s = f"( {s} {tree_to_string(c)} )"
    return f"( {s} {END} )"


def evaluate_listops(source: str) -> int:
    """Evaluate a ``Source`` string (parentheses ignored) with a stack; the label of the example."""
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for tok in source.replace("(", " ").replace(")", " ").split():
        if tok in OPERATORS:
            stack.append((tok, []))
        elif tok == END:
            op, vals = stack.pop()
            v = _apply(op, vals)
            if stack:
                stack[-1][1].append(v)
            else:
                result = v
        else:
            v = int(tok)
            if stack:
                stack[-1][1].append(v)
            else:
                result = v
    if result is None or stack:
        raise ValueError("unbalanced ListOps expression")
    return result


def generate_listops(n: int, *, seed: int = 0, params: ListOpsParams | None = None,
                     max_draws: int | None = None) -> tuple[list[str], list[int]]:
    """``n`` distinct ListOps examples ``(sources, labels)`` in generation order.

    Args:
        n: number of distinct examples.
        seed: seed of the ``random.Random`` used for every draw.
        params: :class:`ListOpsParams` (LRA defaults).
        max_draws: give up (``RuntimeError``) after this many draws (default ``1000 * n + 10000``), e.g. when the
            length bounds admit fewer than ``n`` distinct trees.
    """
    p = params or ListOpsParams()
    p.validate()
    rng = random.Random(seed)
    seen: set[str] = set()
    sources: list[str] = []
    labels: list[int] = []
    limit = max_draws if max_draws is not None else 1000 * n + 10000
    draws = 0
    while len(sources) < n:
        draws += 1
        if draws > limit:
            raise RuntimeError(f"ListOps generator: only {len(sources)} of {n} distinct trees with "
                               f"{p.min_length} < length < {p.max_length} after {limit} draws")
        try:
            t = _draw(rng, 1, p, [p.max_length - 1])
        except _TooLong:
            continue
        if not p.min_length < _length(t) < p.max_length:
            continue
        s = tree_to_string(t)
        if s in seen:
            continue
        seen.add(s)
        sources.append(s)
        labels.append(tree_value(t))
    return sources, labels


def write_listops_tsv(path: str | Path, sources: Sequence[str], labels: Sequence[int], *,
                      lineterminator: str = "\r\n") -> Path:
    """Write one release TSV: header ``Source<TAB>Target``, one row per example (``csv.writer``, tab delimiter)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator=lineterminator)
        w.writerow(["Source", "Target"])
        for s, y in zip(sources, labels, strict=True):
            w.writerow([s, int(y)])
    return path


def write_listops_release(out: str | Path, n_train: int, n_val: int | None = None, n_test: int | None = None, *,
                          seed: int = 0, params: ListOpsParams | None = None, task_name: str = "basic",
                          lineterminator: str = "\r\n") -> dict[str, Any]:
    """Generate and write ``<out>/listops-1000/<task_name>_{train,val,test}.tsv``.

    ``n_val`` and ``n_test`` default to ``max(1, n_train // 10)``. Examples are distinct across the three files
    (generated as one pool, then cut in order: train, val, test, like LRA). Returns the folder, the counts and
    :func:`listops_stats` of all examples.
    """
    n_val = max(1, n_train // 10) if n_val is None else n_val
    n_test = max(1, n_train // 10) if n_test is None else n_test
    sources, labels = generate_listops(n_train + n_val + n_test, seed=seed, params=params)
    folder = Path(out) / "listops-1000"
    cuts = {"train": (0, n_train), "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, n_train + n_val + n_test)}
    for split, (a, b) in cuts.items():
        write_listops_tsv(folder / f"{task_name}_{split}.tsv", sources[a:b], labels[a:b],
                          lineterminator=lineterminator)
    return {"folder": str(folder), "counts": {k: b - a for k, (a, b) in cuts.items()},
            "stats": listops_stats(sources, labels)}


def _token_length(source: str) -> int:
    return sum(1 for t in source.split() if t not in ("(", ")"))


def listops_stats(sources: Sequence[str], labels: Sequence[int]) -> dict[str, Any]:
    """Label frequencies and token-length statistics (length without parentheses, as the acceptance rule counts)."""
    lengths = sorted(_token_length(s) for s in sources)
    n = len(lengths)
    counts = Counter(int(y) for y in labels)
    q = statistics.quantiles(lengths, n=10) if n >= 2 else [float(lengths[0])] * 9 if n else []
    return {
        "n": n,
        "label_freq": {str(k): counts.get(k, 0) / max(n, 1) for k in range(10)},
        "length": {"min": lengths[0] if n else None, "max": lengths[-1] if n else None,
                   "mean": statistics.fmean(lengths) if n else None,
                   "median": statistics.median(lengths) if n else None,
                   "p10": q[0] if q else None, "p90": q[-1] if q else None},
        "chars": {"min": min((len(s) for s in sources), default=None),
                  "max": max((len(s) for s in sources), default=None)},
    }
