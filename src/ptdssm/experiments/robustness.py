"""Robustness sweeps: accuracy of a trained checkpoint under noise, over a grid of frequencies and amplitudes.

The default grid contains the frequencies where S4D-type layers spike (the largest ``|Im lambda|`` of the model's
own eigenvalues, and the paper's ``w = 325.4``) and a log-spaced set around them. Each setting is evaluated with the
same seed, so the random amplitudes ``U`` are the same across settings and only the frequency or amplitude changes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_write_text
from .evaluate import checkpoint_objective, checkpoint_task_info, evaluate_with_noise, prepare_checkpoint
from .noise import NOISE_KINDS, PAPER_FREQUENCY, NoiseSpec, lti_layers

__all__ = ["DEFAULT_AMPLITUDES", "SPIKE_TOLERANCE", "layer_frequency_response", "same_frequency", "spike_frequencies",
           "default_frequencies", "robustness_sweep", "write_sweep_report"]

DEFAULT_AMPLITUDES = (0.1, 0.5, 1.0)  # the paper's 0.1, and where a 3-epoch model starts to break
#: Spike frequencies are rounded to 0.1 (:func:`spike_frequencies`): closer than this, two frequencies are one.
SPIKE_TOLERANCE = 0.06


def same_frequency(f: float, g: float) -> bool:
    """``f`` and ``g`` name the same noise frequency (up to a spike's 0.1 rounding)."""
    return abs(f - g) < SPIKE_TOLERANCE
_BASE_FREQUENCIES = (10.0, 30.0, 100.0, 1000.0, 3000.0)


def spike_frequencies(model: nn.Module, top: int = 2) -> list[float]:
    """The ``top`` largest distinct ``|Im lambda|`` over the model's LTI layers (rounded to 0.1): where a diagonal
    layer initialised from the LegS normal part has its transfer-function spikes."""
    imag = [layer.eigenvalues().imag.abs().reshape(-1) for layer in lti_layers(model)]
    if not imag:
        return []
    values = np.unique(np.round(torch.cat(imag).double().cpu().numpy(), 1))[::-1]
    return [float(v) for v in values[:top] if v > 0]


def default_frequencies(model: nn.Module) -> list[float]:
    """The default frequency grid for ``model``: the base grid, the paper's 325.4 and the model's own spikes."""
    return sorted({*_BASE_FREQUENCIES, PAPER_FREQUENCY, *spike_frequencies(model)})


@torch.no_grad()
def layer_frequency_response(layer: nn.Module, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude of each channel's discrete transfer function, on the continuous-frequency axis.

    Batch element ``c`` carries a unit impulse on channel ``c``; its response on the same channel is the kernel
    ``K_c`` (including the ``D`` skip at lag 0), and ``|FFT(K_c)|`` at discrete frequency ``theta`` is placed at
    continuous frequency ``theta / dt_c`` so that the spikes of different channels line up.

    Returns:
        ``(omega, magnitude)``, both ``(H, length // 2 + 1)``.
    """
    H = layer.d_model
    dev = next(layer.parameters()).device
    was_training = layer.training
    layer.eval()
    x = torch.zeros(H, length, H, device=dev)
    x[torch.arange(H), 0, torch.arange(H)] = 1.0  # batch element c carries the impulse on channel c
    y = layer(x)[torch.arange(H), :, torch.arange(H)].double()  # (H, L): response of c to c
    layer.train(was_training)
    mag = torch.fft.rfft(y, dim=-1).abs().cpu().numpy()
    dt = layer.step_sizes().detach().double().cpu().numpy()
    if dt.shape != (H,):
        dt = np.full(H, float(np.exp(np.log(dt).mean())))
    theta = 2 * np.pi * np.fft.rfftfreq(length)
    return theta[None, :] / dt[:, None], mag


def robustness_sweep(checkpoint: str | os.PathLike[str], *, kind: str = "layer",
                     frequencies: Sequence[float] | None = None, amplitudes: Sequence[float] | None = None,
                     split: str = "test", data_dir: str | None = None, batch_size: int | None = None,
                     subset: int | None = None, seed: int = 0, device: str = "auto", own_spikes: int = 0,
                     progress: bool = True) -> dict[str, Any]:
    """Evaluate ``checkpoint`` clean and under ``kind`` noise at every (frequency, amplitude) of the grid.

    ``kind`` is ``layer`` (frequency: continuous), ``sinusoid`` (frequency: radians per sample) or ``fourier``
    (frequency: the FFT bin ``m`` in ``1 .. L/2`` of one Fourier mode, :class:`~ptdssm.experiments.noise.InputNoise`);
    for ``gaussian`` only the amplitudes are swept. ``subset`` evaluates a seeded subset of the split.
    ``own_spikes`` (``layer`` only) adds the model's ``own_spikes`` largest ``|Im lambda|`` (:func:`spike_frequencies`)
    to ``frequencies``.

    Returns:
        ``{"checkpoint", "task", "model", "split", "n", "kind", "clean": {...}, "spikes": [...], "rows": [...]}``
        where each row is ``{"frequency", "amplitude", "acc", "loss"}``.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r} for a sweep; expected one of {', '.join(NOISE_KINDS)}")
    if kind == "fourier" and frequencies is not None and any(f != int(f) or f < 1 for f in frequencies):
        raise ValueError(f"fourier sweeps take FFT bins (integers >= 1) as frequencies, got {list(frequencies)}")
    model, cfg, ckpt, loader, dev = prepare_checkpoint(checkpoint, split=split, data_dir=data_dir,
                                                       batch_size=batch_size, device=device, subset=subset)
    objective = checkpoint_objective(ckpt, cfg)
    if objective.regression:
        raise ValueError(f"robustness sweeps report accuracy; checkpoint {checkpoint} is of a regression task")
    amps = list(amplitudes) if amplitudes is not None else list(DEFAULT_AMPLITUDES)
    length = checkpoint_task_info(ckpt, cfg).seq_len
    half = length // 2
    if kind == "fourier" and frequencies is not None and max(frequencies) > half:
        raise ValueError(f"fourier sweep: FFT bin {max(frequencies):g} exceeds the Nyquist bin {half} of this task's "
                         f"length {length}")
    if kind == "gaussian":
        freqs: list[float | None] = [None]
    elif frequencies is not None:
        freqs = [float(f) for f in frequencies]
        if kind == "layer" and own_spikes:  # a spike already on the grid (to its 0.1 rounding) is not added again
            freqs = sorted({*freqs, *(s for s in spike_frequencies(model, top=own_spikes)
                                      if not any(same_frequency(s, f) for f in freqs))})
    elif kind == "layer":
        freqs = list(default_frequencies(model))
    elif kind == "fourier":  # FFT bins spread over 1 .. L/2 (the Nyquist bin)
        freqs = [float(m) for m in sorted({max(1, round(half * f)) for f in (1 / 64, 1 / 16, 1 / 4, 1 / 2, 1.0)})]
    else:  # discrete frequencies (radians per sample) spread over (0, pi]
        freqs = [math.pi * f for f in (1 / 64, 1 / 16, 1 / 4, 1 / 2, 1.0)]
    settings = [(f, a) for f in freqs for a in amps]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(settings) + 1, desc="robustness", leave=False)
    clean = evaluate_with_noise(model, loader, dev, None, precision=cfg.train.precision, objective=objective)
    rows = []
    for f, a in settings:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(w=f, a=a)
        spec = (NoiseSpec(kind, amplitude=a, modes=(int(f),), seed=seed) if kind == "fourier"  # type: ignore[arg-type]
                else NoiseSpec(kind, amplitude=a, frequency=f, seed=seed))
        m = evaluate_with_noise(model, loader, dev, spec, precision=cfg.train.precision, objective=objective)
        rows.append({"frequency": f, "amplitude": a, "acc": m["acc"], "loss": m["loss"]})
    if bar is not None:
        bar.update(1)
        bar.close()
    return {
        "checkpoint": str(checkpoint), "task": cfg.data.task, "model": cfg.model.name, "split": split,
        "epoch": int(ckpt.get("epoch", 0)), "n": clean["n"], "kind": kind, "seed": seed,
        "clean": {"acc": clean["acc"], "loss": clean["loss"]}, "spikes": spike_frequencies(model), "rows": rows,
        "_model": model,
    }


def sweep_markdown(result: dict[str, Any]) -> str:
    """The sweep as a Markdown table (rows: frequency, columns: amplitude)."""
    amps = sorted({r["amplitude"] for r in result["rows"]})
    freqs = list(dict.fromkeys(r["frequency"] for r in result["rows"]))
    acc = {(r["frequency"], r["amplitude"]): r["acc"] for r in result["rows"]}
    lines = [f"Model `{result['model']}` on `{result['task']}` ({result['split']}, n = {result['n']}), "
             f"{result['kind']} noise; clean accuracy {100 * result['clean']['acc']:.2f}%.", "",
             "| frequency | " + " | ".join(f"a = {a:g}" for a in amps) + " |",
             "|---|" + "---|" * len(amps)]
    for f in freqs:
        label = "-" if f is None else f"{f:g}" + (" (spike)" if f in result["spikes"] else "")
        lines.append(f"| {label} | " + " | ".join(f"{100 * acc[(f, a)]:.2f}" for a in amps) + " |")
    return "\n".join(lines) + "\n"


def write_sweep_report(result: dict[str, Any], out_dir: str | os.PathLike[str], *, plots: bool = True) -> list[str]:
    """Write ``robustness.json``, ``robustness.csv``, ``robustness.md`` and the plots to ``out_dir``."""
    from .. import plots as P

    out = Path(out_dir)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    written = []
    atomic_write_text(json.dumps(public, indent=2) + "\n", out / "robustness.json")
    written.append(str(out / "robustness.json"))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["frequency", "amplitude", "acc", "loss"])
    w.writeheader()
    w.writerow({"frequency": "clean", "amplitude": 0, **result["clean"]})
    w.writerows(result["rows"])
    atomic_write_text(buf.getvalue(), out / "robustness.csv")
    written.append(str(out / "robustness.csv"))
    atomic_write_text(sweep_markdown(result), out / "robustness.md")
    written.append(str(out / "robustness.md"))
    if plots:
        written.append(P.save_figure(P.plot_robustness_sweep(public), out / "accuracy.png"))
        model = result.get("_model")
        if model is not None:
            responses = [layer_frequency_response(layer, 2048) for layer in lti_layers(model)]
            marks = [r["frequency"] for r in result["rows"] if r["frequency"] is not None] \
                if result["kind"] == "layer" else []
            written.append(P.save_figure(P.plot_layer_responses(responses, sorted(set(marks))),
                                         out / "layer_transfer.png"))
    return written
