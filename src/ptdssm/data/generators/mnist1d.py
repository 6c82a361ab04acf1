"""MNIST-1D (Greydanus 2020), generated offline from its published description, and the ``mnist1d`` task.

The dataset is 10 hand-made 12-point templates (one per digit), each sample a template put through seeded random
transforms, then subsampled to 40 points. Published recipe (default arguments: 5,000 samples, seed 42, 80/20
train/test split), in the order the random numbers are drawn, per sample:

1. *pad*: append ``p = 36 + int(u * 25)`` zeros (``u ~ U[0, 1)``) to ``template + 1e-8``;
2. *dilate*: linear interpolation to ``12 + 60 = 72`` points;
3. *scale*: multiply by ``1 + 0.4 (u - 0.5)``;
4. *translate*: circular shift right by ``k``, uniform in ``0..47``;
5. *correlated noise* where the signal is exactly 0: ``gaussian_filter(0.25 * N(0, 1), sigma=2)``;
6. *iid noise* ``0.02 * N(0, 1)`` everywhere;
7. *shear*: subtract ``0.75 (u - 0.5) * linspace(-0.5, 0.5)``;
8. *subsample*: linear interpolation to 40 points.

Samples are made class by class (``num_samples // 10`` each), shuffled with one permutation, standardized with the
mean and standard deviation of the whole set, and split 80/20. The templates are whitened per digit, shifted to
start at 0 and divided by 6. With the legacy ``numpy.random.RandomState(42)`` stream this reproduces the official
``mnist1d_data.pkl`` (4,000 train / 1,000 test, length 40). No download is ever attempted.

Task ``mnist1d``: ``(x, y)`` with ``x`` float32 ``(40, 1)``; validation is a seeded ``data.val_fraction`` of train.
Options: ``num_samples`` (5000), ``generator_seed`` (42), ``shuffle_seq`` (false).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ..base import ArrayDataset, TaskData, TaskInfo, get_options, seeded_split, seeded_subset
from ..registry import register_task

__all__ = ["MNIST1D_DEFAULTS", "make_mnist1d", "mnist1d_templates"]

#: The published default arguments.
MNIST1D_DEFAULTS: dict[str, Any] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": (36, 60), "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
}

# The ten 12-point templates of the published dataset (digits 0..9).
_TEMPLATES = (
    (5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5),
    (5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5),
    (5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5),
    (5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5),
    (5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5),
    (5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5),
    (5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5),
    (5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5),
)


def mnist1d_templates() -> np.ndarray:
    """The templates ``(10, 12)``: whitened per digit, shifted to start at 0, divided by 6."""
    x = np.asarray(_TEMPLATES, dtype=np.float64)
    x = x - x.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    x = x - x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, len(x)), x)


def _sample(template: np.ndarray, rs: np.random.RandomState, a: dict[str, Any]) -> np.ndarray:
    low, high = a["padding"]
    p = low + int(rs.rand() * (high - low + 1))
    x = np.concatenate([template + 1e-8, np.zeros(p)])
    x = _resample(x, a["template_len"] + high)
    x = x * (1 + a["scale_coeff"] * (rs.rand() - 0.5))
    x = np.roll(x, int(rs.choice(a["max_translation"])))
    mask = x != 0
    corr = gaussian_filter(a["corr_noise_scale"] * rs.randn(*x.shape), 2)
    x = mask * x + (1 - mask) * corr
    x = x + a["iid_noise_scale"] * rs.randn(*x.shape)
    x = x - a["shear_scale"] * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, a["final_seq_length"])


def make_mnist1d(**overrides: Any) -> dict[str, np.ndarray]:
    """Generate MNIST-1D: ``{"x", "y", "x_test", "y_test"}`` (float64 ``(N, 40)``, int64 labels).

    Keyword arguments override :data:`MNIST1D_DEFAULTS` (e.g. ``num_samples=10000``, ``seed=0``).
    """
    unknown = set(overrides) - set(MNIST1D_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown MNIST-1D argument(s) {sorted(unknown)}; valid: {sorted(MNIST1D_DEFAULTS)}")
    a = {**MNIST1D_DEFAULTS, **overrides}
    rs = np.random.RandomState(a["seed"])
    templates = mnist1d_templates()
    per_class = a["num_samples"] // len(templates)
    xs, ys = [], []
    for label, t in enumerate(templates):
        for _ in range(per_class):
            xs.append(_sample(t, rs, a))
            ys.append(label)
    order = rs.permutation(len(ys))
    x = np.stack(xs)[order]
    y = np.asarray(ys, dtype=np.int64)[order]
    if a["shuffle_seq"]:
        x = x[:, rs.permutation(a["final_seq_length"])]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * a["train_split"])
    return {"x": x[:split], "y": y[:split], "x_test": x[split:], "y_test": y[split:]}


_DEFAULTS = {"num_samples": 5000, "generator_seed": 42, "shuffle_seq": False}


def _opts(cfg: Any) -> dict[str, Any]:
    return get_options(cfg, "mnist1d", _DEFAULTS)


def _info(cfg: Any) -> TaskInfo:
    _opts(cfg)
    if cfg.seq_len not in (None, 40):
        raise ValueError(f"data.seq_len for mnist1d must be 40, got {cfg.seq_len}")
    return TaskInfo("mnist1d", n_classes=10, seq_len=40, d_input=1,
                    description="MNIST-1D (generated offline, 4,000 train / 1,000 test), length 40")


def _build(cfg: Any) -> TaskData:
    info, opts = _info(cfg), _opts(cfg)
    d = make_mnist1d(num_samples=int(opts["num_samples"]), seed=int(opts["generator_seed"]),
                     shuffle_seq=bool(opts["shuffle_seq"]))
    x, xt = _tensor(d["x"]), _tensor(d["x_test"])
    y, yt = torch.from_numpy(d["y"]), torch.from_numpy(d["y_test"])
    tr, va = seeded_split(len(d["y"]), cfg.val_fraction, cfg.split_seed)
    tr = seeded_subset(tr, cfg.train_subset, cfg.split_seed)
    va = seeded_subset(va, cfg.val_subset, cfg.split_seed)
    te = seeded_subset(np.arange(len(d["y_test"])), cfg.test_subset, cfg.split_seed)
    return TaskData(info, ArrayDataset(x[tr], y[tr]), ArrayDataset(x[va], y[va]), ArrayDataset(xt[te], yt[te]))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """``(N, L)`` float64 -> float32 tensor ``(N, L, 1)``."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).unsqueeze(-1)


register_task("mnist1d", info=_info, build=_build, replace=True,
              description="MNIST-1D generated offline (Greydanus 2020), 10 classes, length 40")
