"""TaskInfo's head / loss fields and collate's target table (src/ptdssm/data/base.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ptdssm.data import IGNORE_INDEX, ArrayDataset, TaskInfo, collate


def test_defaults_keep_pooled_cross_entropy():
    info = TaskInfo("t", n_classes=3, seq_len=8, d_input=1)
    assert (info.head, info.loss, info.target_len) == ("pooled", "cross-entropy", None)
    assert IGNORE_INDEX == -100


@pytest.mark.parametrize("kw", [
    dict(head="last-k", target_len=4),
    dict(head="token"),
    dict(head="token", loss="mse", n_classes=2),
    dict(head="pooled", loss="mse", n_classes=1),
    dict(head="lm", vocab_size=12, d_input=None),
])
def test_roundtrip_through_asdict(kw):
    base = dict(name="t", n_classes=5, seq_len=16, d_input=3)
    info = TaskInfo(**{**base, **kw})
    assert TaskInfo(**dataclasses.asdict(info)) == info


@pytest.mark.parametrize("kw, match", [
    (dict(head="pool"), "head 'pool'"),
    (dict(loss="l1"), "loss 'l1'"),
    (dict(head="last-k"), "target_len is required"),
    (dict(target_len=3), "target_len is required"),
    (dict(head="token", target_len=3), "target_len is required"),
    (dict(head="last-k", target_len=0), "target_len must be >= 1"),
    (dict(head="lm"), "head 'lm' needs token inputs"),
    (dict(head="last-k", target_len=2, loss="mse"), "loss 'mse' needs head"),
    (dict(n_classes=0), "n_classes must be >= 1"),
])
def test_invalid_combinations(kw, match):
    with pytest.raises(ValueError, match=match):
        TaskInfo(**{**dict(name="t", n_classes=5, seq_len=16, d_input=3), **kw})


def test_pooled_class_targets():
    b = collate([(torch.zeros(4, 1), 2), (torch.zeros(4, 1), torch.tensor(0))])
    assert b["y"].dtype == torch.long and b["y"].tolist() == [2, 0] and b["lengths"] is None


def test_pooled_regression_targets():
    b = collate([(torch.zeros(4, 1), torch.tensor([0.5, -1.0])), (torch.zeros(3, 1), torch.tensor([2.0, 3.0]))])
    assert b["y"].dtype == torch.float32 and b["y"].tolist() == [[0.5, -1.0], [2.0, 3.0]]
    assert b["lengths"].tolist() == [4, 3]
    b = collate([(torch.zeros(2, 1), 0.25), (torch.zeros(2, 1), torch.tensor(1.5, dtype=torch.float64))])
    assert b["y"].dtype == torch.float32 and b["y"].tolist() == [[0.25], [1.5]]


def test_last_k_targets_stack():
    b = collate([(torch.ones(6, dtype=torch.long), torch.tensor([1, 2])),
                 (torch.ones(5, dtype=torch.long), torch.tensor([3, 4]))])
    assert b["y"].dtype == torch.long and b["y"].tolist() == [[1, 2], [3, 4]]
    assert b["x"].tolist() == [[1] * 6, [1] * 5 + [0]]


def test_token_class_targets_padded_with_ignore_index():
    b = collate([(torch.ones(3, dtype=torch.long), torch.tensor([5, -100, 6])),
                 (torch.ones(1, dtype=torch.long), torch.tensor([7]))])
    assert b["y"].tolist() == [[5, -100, 6], [7, IGNORE_INDEX, IGNORE_INDEX]]
    assert b["lengths"].tolist() == [3, 1]


def test_token_regression_targets_padded_with_nan():
    y1 = torch.tensor([[1.0], [2.0], [3.0]])
    y2 = torch.tensor([[4.0], [5.0]])
    b = collate([(torch.zeros(3, 2), y1), (torch.zeros(2, 2), y2)])
    y = b["y"]
    assert y.shape == (2, 3, 1) and y.dtype == torch.float32
    assert y[0, :, 0].tolist() == [1.0, 2.0, 3.0] and y[1, :2, 0].tolist() == [4.0, 5.0]
    assert math.isnan(y[1, 2, 0].item())


def test_array_dataset_keeps_float_targets():
    ds = ArrayDataset(torch.zeros(2, 3, 1), torch.tensor([[0.5], [1.5]], dtype=torch.float64))
    assert ds.y.dtype == torch.float32 and collate([ds[0], ds[1]])["y"].tolist() == [[0.5], [1.5]]
    ds = ArrayDataset(torch.zeros(2, 3, 1), torch.tensor([1, 0], dtype=torch.int32))
    assert ds.y.dtype == torch.long
