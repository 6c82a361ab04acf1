"""Induction heads: the exact documented construction, its invariants, both target forms, options and errors."""

import numpy as np
import pytest
import torch

from ptdssm.config import DataConfig
from ptdssm.data import IGNORE_INDEX, build_task, collate, task_info
from ptdssm.data.generators.induction import TRIGGER, induction_heads_example


def _reference(seed: int, split: int, index: int, L: int, V: int) -> tuple[list[int], int, int]:
    """The module docstring's recipe, in plain Python: the draws b, tokens, p in that order."""
    rng = np.random.default_rng([seed, split, index])
    b = int(rng.integers(0, V))
    tokens = [int(t) + 2 for t in rng.integers(0, V, size=L - 1)]
    p = int(rng.integers(0, L - 2))
    x = tokens + [TRIGGER]
    x[p], x[p + 1] = TRIGGER, b + 2
    return x, b, p


@pytest.mark.parametrize("L,V", [(256, 16), (12, 4), (3, 2)])
def test_examples_follow_the_documented_construction(L, V):
    data = build_task(DataConfig(task="induction-heads", seq_len=L, options={"vocab": V, "generator_seed": 5,
                                                                              "n_train": 40, "n_val": 7,
                                                                              "n_test": 9}))
    assert data.sizes() == {"train": 40, "val": 7, "test": 9}
    positions = set()
    for split_id, split in enumerate(("train", "val", "test")):
        ds = getattr(data, split)
        for i in range(len(ds)):
            x, y = ds[i]
            ref_x, b, p = _reference(5, split_id, i, L, V)
            assert x.dtype == y.dtype == torch.int64 and x.shape == y.shape == (L,)
            assert x.tolist() == ref_x
            assert y.tolist() == [IGNORE_INDEX] * (L - 1) + [b]
            # invariants: the trigger exactly twice (at p and at the end), b right after the first one
            trig = (x == TRIGGER).nonzero().flatten().tolist()
            assert trig == [p, L - 1] and int(x[p + 1]) - 2 == int(y[-1])
            assert int(x.min()) >= 1 and int(x.max()) <= V + 1
            positions.add(p)
    if L == 3:
        assert positions == {0}
    info = data.info
    assert (info.head, info.n_classes, info.vocab_size, info.seq_len, info.target_len) == ("token", V, V + 2, L, None)


def test_sequence_target_is_last_k_with_k_1_and_splits_differ():
    cfg = DataConfig(task="induction-heads", seq_len=32, options={"target": "sequence", "n_train": 20})
    data = build_task(cfg)
    info = task_info(cfg)
    assert (info.head, info.target_len, info.n_classes, info.vocab_size) == ("last-k", 1, 16, 18)
    token = build_task(DataConfig(task="induction-heads", seq_len=32, options={"n_train": 20}))
    for i in range(20):
        (xs, ys), (xt, yt) = data.train[i], token.train[i]
        assert torch.equal(xs, xt) and ys.tolist() == [int(yt[-1])]
    batch = collate([data.train[i] for i in range(4)])
    assert batch["x"].shape == (4, 32) and batch["y"].shape == (4, 1)
    assert not torch.equal(token.train[0][0], token.val[0][0])
    again = build_task(DataConfig(task="induction-heads", seq_len=32, options={"n_train": 20}))
    assert all(torch.equal(again.train[i][0], token.train[i][0]) for i in range(20))
    # answers are spread over the vocabulary (a uniform draw)
    answers = np.bincount([int(token.train[i][1][-1]) for i in range(20)] +
                          [int(y[-1]) for _, y in (token.test[i] for i in range(200))], minlength=16)
    assert (answers > 0).sum() >= 12


def test_defaults_subsets_and_errors():
    info = task_info(DataConfig(task="induction-heads"))
    assert info.seq_len == 256 and info.vocab_size == 18
    data = build_task(DataConfig(task="induction-heads", seq_len=16, train_subset=5, val_subset=3))
    assert data.sizes() == {"train": 5, "val": 3, "test": 1000}
    with pytest.raises(IndexError):
        data.train[5]
    with pytest.raises(ValueError, match="unknown option.*data.options.n_symbols"):
        task_info(DataConfig(task="induction-heads", options={"n_symbols": 4}))
    with pytest.raises(ValueError, match="target"):
        task_info(DataConfig(task="induction-heads", options={"target": "class"}))
    with pytest.raises(ValueError, match="length >= 3"):
        build_task(DataConfig(task="induction-heads", seq_len=2))
    with pytest.raises(ValueError, match="vocab"):
        task_info(DataConfig(task="induction-heads", options={"vocab": 0}))
    with pytest.raises(ValueError, match="target"):
        induction_heads_example(np.random.default_rng(0), 8, target="pooled")
