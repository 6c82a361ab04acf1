"""The induction-heads task (Olsson et al. 2022, "In-context learning and induction heads"; as in Gu & Dao 2023,
"Mamba", sec. 4.1.2): recall the token that followed the earlier occurrence of a trigger.

An example of length ``L`` (``data.seq_len``, default 256) is ``L - 1`` tokens drawn uniformly from ``vocab``
(16) symbols, with a special trigger token at one random position ``p`` in ``0 .. L - 3`` followed by a symbol
``b``; the last position holds the trigger again. The answer is ``b``: a model that solves it finds the earlier
trigger and copies what came after it. The trigger occurs exactly twice (at ``p`` and at ``L - 1``); ``b`` is the
symbol at ``p + 1`` (it may also occur elsewhere, as any symbol does).

Token ids: 0 = padding (never produced), 1 = the trigger, ``2 .. 1 + vocab`` = the symbols (``vocab_size`` =
``vocab + 2``); the class of ``b`` is its symbol index ``0 .. vocab - 1`` (``n_classes`` = ``vocab``).

Generation, from ``rng = numpy.random.default_rng([generator_seed, split, index])`` (split 0 train, 1 val, 2 test;
the house style of :mod:`ptdssm.data.generators.synthetic`), in this order: ``b = rng.integers(0, vocab)``,
``tokens = rng.integers(0, vocab, size=L - 1)``, ``p = rng.integers(0, L - 2)``; then ``x[:L-1] = tokens + 2``,
``x[p] = 1``, ``x[p + 1] = b + 2``, ``x[L - 1] = 1``.

``data.options.target``: ``token`` (default; ``head="token"``): ``y`` int64 ``(L,)``, ``b`` at the last position
and -100 (not scored) elsewhere, so accuracy is the fraction of examples answered; ``sequence`` (``head="last-k"``
with ``K = 1``): ``y`` int64 ``(1,)`` = ``[b]``. Options: ``vocab`` (16), ``n_train`` (10000), ``n_val`` (1000),
``n_test`` (1000), ``generator_seed`` (0), ``target``. Chance is ``1 / vocab``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import IGNORE_INDEX, TaskData, TaskInfo, get_options
from ..registry import register_task
from .synthetic import SyntheticDataset

__all__ = ["TRIGGER", "induction_heads_example"]

#: Token id of the trigger.
TRIGGER = 1
_DEFAULT_LEN = 256
_DEFAULTS = {"vocab": 16, "n_train": 10000, "n_val": 1000, "n_test": 1000, "generator_seed": 0, "target": "token"}
_TARGETS = ("token", "sequence")
_DESCRIPTION = "induction heads (after a trigger at the end, recall the token that followed its earlier occurrence)"


def induction_heads_example(rng: np.random.Generator, length: int, vocab: int = 16,
                            target: str = "token") -> tuple[np.ndarray, np.ndarray]:
    """``(x int64 (L,), y)``: ``y`` int64 ``(L,)`` (``token``) or ``(1,)`` (``sequence``); see the module docstring."""
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {', '.join(_TARGETS)}, got {target!r}")
    if length < 3:
        raise ValueError(f"induction heads needs length >= 3 (trigger, answer, trigger), got {length}")
    if vocab < 1:
        raise ValueError(f"induction heads needs vocab >= 1, got {vocab}")
    b = int(rng.integers(0, vocab))
    tokens = rng.integers(0, vocab, size=length - 1)
    p = int(rng.integers(0, length - 2))
    x = np.empty(length, dtype=np.int64)
    x[: length - 1] = tokens + 2
    x[p], x[p + 1], x[length - 1] = TRIGGER, b + 2, TRIGGER
    if target == "sequence":
        return x, np.array([b], dtype=np.int64)
    y = np.full(length, IGNORE_INDEX, dtype=np.int64)
    y[length - 1] = b
    return x, y


def _opts(cfg: Any) -> dict[str, Any]:
    o = get_options(cfg, "induction-heads", _DEFAULTS)
    if o["target"] not in _TARGETS:
        raise ValueError(f"data.options.target for induction-heads must be one of {', '.join(_TARGETS)}, "
                         f"got {o['target']!r}")
    if int(o["vocab"]) < 1:
        raise ValueError(f"data.options.vocab for induction-heads must be >= 1, got {o['vocab']!r}")
    return o


def induction_info(cfg: Any) -> TaskInfo:
    o = _opts(cfg)
    L, V = int(cfg.seq_len or _DEFAULT_LEN), int(o["vocab"])
    head = "token" if o["target"] == "token" else "last-k"
    return TaskInfo("induction-heads", n_classes=V, seq_len=L, vocab_size=V + 2, head=head,
                    target_len=1 if head == "last-k" else None,
                    description=f"{_DESCRIPTION}, vocabulary {V}, length {L}")


def induction_build(cfg: Any) -> TaskData:
    info, o = induction_info(cfg), _opts(cfg)
    L, V, target = info.seq_len, int(o["vocab"]), o["target"]
    induction_heads_example(np.random.default_rng(0), L, V, target)  # validate the sizes now, with a clear message

    def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return induction_heads_example(rng, L, V, target)

    seed = int(o["generator_seed"])
    sizes = {k: min(int(getattr(cfg, f"{k}_subset", None) or o[f"n_{k}"]), int(o[f"n_{k}"]))
             for k in ("train", "val", "test")}
    sets = {k: SyntheticDataset(make, n, seed, k) for k, n in sizes.items()}
    return TaskData(info, sets["train"], sets["val"], sets["test"], extras={"options": o})


register_task("induction-heads", info=induction_info, build=induction_build, replace=True, description=_DESCRIPTION)
