r"""The continuous memory tasks of *How to Train Your HiPPO* (Gu, Johnson, Timalsina, Rudra, Ré; ICLR 2023):
``delay`` and ``reconstruct``, on band-limited white-noise signals.

**Signal** (:func:`white_signal`): ``L`` samples at spacing ``dt`` (a period ``T = L dt``), band-limited to ``freq``
Hz: the real FFT coefficients at the frequencies ``0 < f <= freq`` (``f = j / T``) are i.i.d. complex Gaussians,
the DC term and every frequency above ``freq`` are 0; the inverse FFT is scaled to RMS ``rms`` (0.5) and shifted to
start at 0 (the system starts at rest). Needs ``1/T <= freq <= 1/(2 dt)`` (one period, Nyquist).

* **delay** ("continuous delay"): ``x`` float ``(L, 1)``, ``y`` float ``(L, 1)`` with ``y[t] = x[t - lag]`` and
  ``y[t] = 0`` for ``t < lag`` (the input before time 0 is 0). Per-position regression: ``head="token"``,
  ``loss="mse"`` (predicting 0 everywhere scores about ``0.4`` at the defaults: the shift to start at 0 adds
  ``x[0]^2`` to the signal's ``rms^2``, and the first ``lag`` targets are 0).
* **reconstruct**: ``x`` float ``(L, 1)``, ``y`` float ``(window,)`` = the last ``window`` inputs, read from the model's
  final position: ``head="pooled"`` with ``model.pool: last`` and ``loss="mse"`` (a regression of ``window``
  outputs; the house's ``last-k`` head is for classification, so the final state's features map linearly to the
  ``window`` values, as s4's reconstruct decoder does).

Options (``data.options``) and their defaults, sized for a CPU; the paper's values (s4's ``delay.py``/
``reconstruct.py`` with ``L = 4000``) in brackets:

========== ========================== ================================
option     delay                      reconstruct
========== ========================== ================================
seq_len    1000 [4000] (``data.seq_len``)  1000 [4000]
lag        250 [1000]                 -
window     -                          250 [1000]
dt         1e-3 [2.5e-4]              1e-3 [2.5e-4]
freq       250 [1000]                 250 [1000]
========== ========================== ================================

plus ``rms`` (0.5), ``n_train`` (10000), ``n_val`` (1000), ``n_test`` (1000), ``generator_seed`` (0). Every example
comes from ``numpy.random.default_rng([generator_seed, split, index])`` (the house style of
:mod:`ptdssm.data.generators.synthetic`). The defaults divide every length by 4 and keep the paper's
``freq * dt = 0.25`` cycles per sample, so the window to remember holds ``lag * dt * freq`` = 62.5 cycles (the paper:
250), the same 0.24 cycles per state at ``d_state`` 256 as the paper's at 1024. That ratio is what makes the task
hard for LegS: with ``freq`` 100 (25 cycles) a least-squares readout of frozen S4-LegS is as good as LegT's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..base import TaskData, TaskInfo, get_options
from ..registry import register_task
from .synthetic import SyntheticDataset

__all__ = ["delay_example", "reconstruct_example", "white_signal"]

_COMMON = {"dt": 1e-3, "freq": 250.0, "rms": 0.5, "n_train": 10000, "n_val": 1000, "n_test": 1000,
           "generator_seed": 0}
_DEFAULT_LEN = 1000
_DEFAULTS = {"delay": {**_COMMON, "lag": 250}, "reconstruct": {**_COMMON, "window": 250}}
_DESCRIPTIONS = {"delay": "continuous delay (output the white-noise input lag steps ago, at every position)",
                 "reconstruct": "reconstruct the last window steps of a white-noise input from the final position"}


def white_signal(rng: np.random.Generator, length: int, dt: float, freq: float, rms: float = 0.5) -> np.ndarray:
    """Band-limited white noise ``(length,)`` float64 (module docstring): frequencies ``0 < f <= freq`` Hz at sample
    spacing ``dt``, RMS ``rms`` before the shift that makes it start at 0.

    Raises:
        ValueError: ``length < 2``, ``dt``/``freq``/``rms`` not finite and > 0, ``freq < 1/(length dt)`` (no frequency
            in the band) or ``freq > 1/(2 dt)`` (above Nyquist).
    """
    if int(length) != length or length < 2:
        raise ValueError(f"length must be an integer >= 2, got {length!r}")
    for name, v in (("dt", dt), ("freq", freq), ("rms", rms)):
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    period, nyquist = length * dt, 0.5 / dt
    if freq < 1.0 / period:
        raise ValueError(f"freq={freq} is below 1/(length*dt)={1.0 / period:.4g}: no frequency in the band")
    if freq > nyquist * (1 + 1e-12):
        raise ValueError(f"freq={freq} is above the Nyquist frequency 1/(2*dt)={nyquist:.4g}")
    f = np.fft.rfftfreq(int(length), d=dt)
    keep = (f > 0) & (f <= freq * (1 + 1e-12))
    coef = np.zeros(f.size, dtype=np.complex128)
    k = int(keep.sum())
    coef[keep] = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    x = np.fft.irfft(coef, n=int(length))
    x *= rms / max(float(np.sqrt(np.mean(x**2))), 1e-300)
    return x - x[0]


def delay_example(rng: np.random.Generator, length: int, lag: int, dt: float, freq: float,
                  rms: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(x float32 (L, 1), y float32 (L, 1))`` with ``y[t] = x[t - lag]`` (0 for ``t < lag``)."""
    if int(lag) != lag or not 1 <= lag < length:
        raise ValueError(f"lag must be an integer in 1 .. seq_len - 1 = {length - 1}, got {lag!r}")
    x = white_signal(rng, length, dt, freq, rms).astype(np.float32)
    y = np.zeros_like(x)
    y[int(lag):] = x[: length - int(lag)]
    return x[:, None], y[:, None]


def reconstruct_example(rng: np.random.Generator, length: int, window: int, dt: float, freq: float,
                        rms: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(x float32 (L, 1), y float32 (window,))`` with ``y = x[L - window:]``."""
    if int(window) != window or not 1 <= window <= length:
        raise ValueError(f"window must be an integer in 1 .. seq_len = {length}, got {window!r}")
    x = white_signal(rng, length, dt, freq, rms).astype(np.float32)
    return x[:, None], x[length - int(window):].copy()


def _opts(cfg: Any, task: str) -> dict[str, Any]:
    o = get_options(cfg, task, _DEFAULTS[task])
    for key in ("dt", "freq", "rms"):
        v = o[key]
        if isinstance(v, str):  # YAML 1.1 reads 2.5e-4 as a string
            try:
                o[key] = float(v)
            except ValueError:
                pass
        if not (isinstance(o[key], (int, float)) and not isinstance(o[key], bool) and math.isfinite(o[key])
                and o[key] > 0):
            raise ValueError(f"data.options.{key} for {task} must be a finite number > 0, got {v!r}")
    size = "lag" if task == "delay" else "window"
    if isinstance(o[size], bool) or not isinstance(o[size], int) or o[size] < 1:
        raise ValueError(f"data.options.{size} for {task} must be an integer >= 1, got {o[size]!r}")
    return o


def _info_for(task: str) -> Callable[[Any], TaskInfo]:
    def info(cfg: Any) -> TaskInfo:
        o = _opts(cfg, task)
        L = int(cfg.seq_len or _DEFAULT_LEN)
        if task == "delay":
            desc = f"{_DESCRIPTIONS[task]}, length {L}, lag {o['lag']}"
            return TaskInfo(task, n_classes=1, seq_len=L, d_input=1, head="token", loss="mse", description=desc)
        desc = f"{_DESCRIPTIONS[task]}, length {L}, window {o['window']}"
        return TaskInfo(task, n_classes=int(o["window"]), seq_len=L, d_input=1, loss="mse", description=desc)

    return info


def _build_for(task: str) -> Callable[[Any], TaskData]:
    info_fn = _info_for(task)

    def build(cfg: Any) -> TaskData:
        info, o = info_fn(cfg), _opts(cfg, task)
        L, dt, freq, rms = info.seq_len, float(o["dt"]), float(o["freq"]), float(o["rms"])
        try:
            if task == "delay":
                lag = int(o["lag"])
                make = lambda rng: delay_example(rng, L, lag, dt, freq, rms)  # noqa: E731
            else:
                window = int(o["window"])
                make = lambda rng: reconstruct_example(rng, L, window, dt, freq, rms)  # noqa: E731
            make(np.random.default_rng(0))  # validate the sizes now, with a clear message
        except ValueError as exc:
            raise ValueError(f"task {task} (data.seq_len={L}, data.options): {exc}") from None
        seed = int(o["generator_seed"])
        sizes = {k: min(int(getattr(cfg, f"{k}_subset", None) or o[f"n_{k}"]), int(o[f"n_{k}"]))
                 for k in ("train", "val", "test")}
        sets = {k: SyntheticDataset(make, n, seed, k) for k, n in sizes.items()}
        return TaskData(info, sets["train"], sets["val"], sets["test"], extras={"options": o})

    return build


for _task in _DEFAULTS:
    register_task(_task, info=_info_for(_task), build=_build_for(_task), replace=True,
                  description=_DESCRIPTIONS[_task])
