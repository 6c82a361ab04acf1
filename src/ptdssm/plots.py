"""Figures of the analyses (matplotlib, no pyplot: safe in scripts, tests and servers without a display).

Every function takes plain arrays or result dicts, returns a :class:`matplotlib.figure.Figure`, and writes it
when ``path`` is given (the format follows the suffix, e.g. ``.png``, ``.pdf``, ``.svg``). Figures are built
on ``matplotlib.figure.Figure`` directly, which renders with the Agg canvas whatever backend pyplot is set to.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_curves", "plot_transfer", "plot_conditioning", "plot_forecasts", "plot_kappa_vs_perturbation",
           "plot_layer_responses", "plot_robustness_sweep", "plot_sup_errors", "plot_basis", "save_figure",
           "SYSTEM_LABELS"]

SYSTEM_LABELS = {"dplr": "S4 (DPLR, $A_H$)", "diag": "S4D / S5 (Diag, $A_N$)", "ptd": "S4-PTD ($A_H + E$)"}
_STYLES = {"dplr": {"color": "black", "lw": 2.0}, "diag": {"color": "tab:red", "lw": 1.2},
           "ptd": {"color": "tab:blue", "lw": 1.2, "ls": "--"}}


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` (creating parent folders) and return the path as a string."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def plot_transfer(panels: Sequence[Mapping], path: str | os.PathLike[str] | None = None) -> Figure:
    """``|G(iw)|`` over ``w`` (log-log), one panel per state size, with S4D's spike marked.

    Args:
        panels: one mapping per panel with ``n`` (int), ``w`` (``(m,)`` frequencies > 0), ``curves``
            (a mapping of system name to ``(m,)`` magnitudes; names ``dplr``, ``diag``, ``ptd`` get the
            paper's labels, others are used as given) and optionally ``spike_frequency`` (a vertical
            marker at ``w_max``).
        path: where to save the figure, if given.
    """
    if not panels:
        raise ValueError("panels must not be empty")
    k = len(panels)
    ncols = min(3, k)
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        w = np.asarray(panel["w"], dtype=float)
        keep = w > 0
        for name, mag in panel["curves"].items():
            mag = np.asarray(mag, dtype=float)
            ax.loglog(w[keep], mag[keep], label=SYSTEM_LABELS.get(name, name), **_STYLES.get(name, {}))
        wmax = panel.get("spike_frequency")
        if wmax is not None and wmax > 0:
            ax.axvline(wmax, color="gray", ls=":", lw=1.0, label=rf"$\omega_{{max}} = {wmax:.1f}$")
        ax.set_title(f"n = {panel['n']}")
        ax.set_xlabel(r"$\omega$")
        ax.set_ylabel(r"$|G(i\omega)|$")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes[k:]:
        ax.set_visible(False)
    fig.suptitle("Transfer functions of HiPPO-LegS: S4 vs S4D vs S4-PTD")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_conditioning(ns: Sequence[int], series: Mapping[str, Sequence[float]],
                      path: str | os.PathLike[str] | None = None, *, saturation: float | None = 1e19,
                      reference: Mapping[int, float] | None = None) -> Figure:
    """Condition number of the eigenvector matrix against ``n`` (log scale).

    Args:
        ns: ``(k,)`` state sizes.
        series: label -> ``(k,)`` condition numbers (``NaN`` entries are skipped).
        path: where to save the figure, if given.
        saturation: draw a horizontal line where float64 ``eig`` saturates (``None``: no line).
        reference: optional ``{n: kappa}`` of exact values (e.g. high-precision ones) drawn as crosses.
    """
    ns_arr = np.asarray(ns, dtype=float)
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    markers = iter("osD^v<>")
    for label, values in series.items():
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        ax.semilogy(ns_arr[ok], v[ok], marker=next(markers, "o"), label=label)
    if reference:
        rn = sorted(reference)
        ax.semilogy(rn, [reference[m] for m in rn], "kx", ls="none", label="exact (high precision)")
    if saturation is not None:
        ax.axhline(saturation, color="gray", ls=":", lw=1.0, label="float64 eig saturation")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n")
    ax.set_ylabel(r"$\kappa(V)$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Eigenvector conditioning of HiPPO-LegS")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_curves(curves: Mapping[str, Sequence[float]], path: str | os.PathLike[str] | None = None, *,
                ylabel: str = "accuracy") -> Figure:
    """One line per run of a per-epoch metric (``curves``: label -> values of epochs 1, 2, ...), in percent."""
    if not curves:
        raise ValueError("no curves to plot")
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), [100 * v for v in values], marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{ylabel} (%)")
    ax.legend(fontsize=7, ncol=2)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_robustness_sweep(result: Mapping, path: str | os.PathLike[str] | None = None) -> Figure:
    """Accuracy against noise frequency (one line per amplitude) and against amplitude (one line per frequency).

    Args:
        result: a sweep (:func:`ptdssm.experiments.robustness.robustness_sweep`) with ``rows`` of
            ``{"frequency", "amplitude", "acc"}``, ``clean["acc"]``, ``spikes`` and ``kind``.
        path: where to save the figure, if given.
    """
    rows = list(result["rows"])
    if not rows:
        raise ValueError("the sweep has no rows to plot")
    amps = sorted({r["amplitude"] for r in rows})
    freqs = sorted({r["frequency"] for r in rows if r["frequency"] is not None})
    acc = {(r["frequency"], r["amplitude"]): 100 * r["acc"] for r in rows}
    clean = 100 * result["clean"]["acc"]
    fig = Figure(figsize=(11.0, 4.0), layout="constrained")
    ax_f, ax_a = fig.subplots(1, 2)
    if freqs:
        for a in amps:
            ax_f.plot(freqs, [acc[(f, a)] for f in freqs], marker="o", label=f"a = {a:g}")
        for s in result.get("spikes", []):
            ax_f.axvline(s, color="tab:red", ls=":", lw=1)
        ax_f.set_xscale("log")
        unit = "continuous w" if result.get("kind") == "layer" else "w (rad / sample)"
        ax_f.set_xlabel(f"noise frequency ({unit}); dotted: the model's S4D spikes")
    ax_f.axhline(clean, color="black", lw=1, label="clean")
    ax_f.set_ylabel("accuracy (%)")
    ax_f.legend(fontsize=8)
    ax_f.set_title(f"{result.get('model', '')}: accuracy vs frequency")
    for f in freqs or [None]:
        ax_a.plot([0, *amps], [clean, *[acc[(f, a)] for a in amps]], marker="o",
                  label="-" if f is None else f"w = {f:g}")
    ax_a.set_xlabel("noise amplitude")
    ax_a.set_ylabel("accuracy (%)")
    ax_a.legend(fontsize=7, ncol=2)
    ax_a.set_title("accuracy vs amplitude")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_layer_responses(responses: Sequence[tuple[np.ndarray, np.ndarray]], marks: Sequence[float] = (),
                         path: str | os.PathLike[str] | None = None) -> Figure:
    """Each SSM layer's ``|K^(w)|`` per channel on the continuous-frequency axis, with noise frequencies marked.

    Args:
        responses: per layer ``(omega, magnitude)``, both ``(H, m)`` (see
            :func:`ptdssm.experiments.robustness.layer_frequency_response`).
        marks: frequencies to mark with vertical lines.
        path: where to save the figure, if given.
    """
    if not responses:
        raise ValueError("responses must not be empty")
    k = len(responses)
    ncols = min(2, k)
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(6.0 * ncols, 3.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, (omega, mag) in enumerate(responses):
        ax = axes[i]
        for c in range(min(16, omega.shape[0])):  # a readable number of channels
            ax.loglog(omega[c, 1:], mag[c, 1:], lw=0.6, alpha=0.6)
        for w in marks:
            ax.axvline(w, color="black", ls=":", lw=0.8)
        ax.set_title(f"layer {i}: |K(w)| per channel")
        ax.set_xlabel("continuous frequency w = theta / dt_c")
    for ax in axes[k:]:
        ax.set_visible(False)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_sup_errors(rows: Sequence[Mapping], path: str | os.PathLike[str] | None = None) -> Figure:
    """Sup errors of S4D and S4-PTD against S4 as functions of ``n``, beside ``sup |G_DPLR|`` (weak vs strong
    convergence: the S4D error does not shrink).

    Args:
        rows: per ``n`` mappings with ``n``, ``sup_dplr``, ``sup_diag_error``, ``sup_ptd_error``.
        path: where to save the figure, if given.
    """
    if not rows:
        raise ValueError("rows must not be empty")
    ns = [r["n"] for r in rows]
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.loglog(ns, [r["sup_diag_error"] for r in rows], "o-", color="tab:red", label=r"$\sup|G_{Diag} - G_{DPLR}|$")
    ax.loglog(ns, [r["sup_ptd_error"] for r in rows], "s--", color="tab:blue", label=r"$\sup|G_{PTD} - G_{DPLR}|$")
    ax.loglog(ns, [r["sup_dplr"] for r in rows], "k^:", label=r"$\sup|G_{DPLR}|$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Sup-norm errors against S4 (HiPPO-LegS)")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_kappa_vs_perturbation(result: Mapping, path: str | os.PathLike[str] | None = None) -> Figure:
    """kappa(V) against ``||E||_2 / ||A||_2`` for optimized (PTD) and random perturbations.

    Args:
        result: :func:`ptdssm.experiments.numerics.kappa_vs_perturbation` output.
        path: where to save the figure, if given.
    """
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    opt = sorted(result["optimized"], key=lambda r: r["relative_perturbation"])
    ax.loglog([r["relative_perturbation"] for r in opt], [r["kappa"] for r in opt], "o-", color="tab:blue",
              label="optimized E (PTD)")
    rnd = result["random"]
    eps = [r["epsilon"] for r in rnd]
    med = np.array([r["kappa_median"] for r in rnd])
    lo, hi = med - np.array([r["kappa_min"] for r in rnd]), np.array([r["kappa_max"] for r in rnd]) - med
    ax.errorbar(eps, med, yerr=[lo, hi], fmt="s--", color="tab:red", label="random Gaussian E (median, range)")
    ax.set_xlabel(r"$\|E\|_2 / \|A_H\|_2$")
    ax.set_ylabel(r"$\kappa(V)$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Perturb-then-diagonalize, HiPPO-LegS n = {result['n']}")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_forecasts(panels: Sequence[Mapping], path: str | os.PathLike[str] | None = None, *,
                   title: str = "") -> Figure:
    """Forecasts of a few test windows: the lookback history, the true horizon and the prediction, one panel each.

    Args:
        panels: one mapping per window with ``history`` ``(L,)``, ``truth`` ``(K,)`` and ``prediction`` ``(K,)``
            (the same channel; steps ``-L .. -1`` and ``0 .. K-1``), and optionally ``title`` and ``ylabel``.
        path: where to save the figure, if given.
        title: the figure's title.
    """
    if not panels:
        raise ValueError("panels must not be empty")
    fig = Figure(figsize=(10.0, 2.6 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=True):
        hist = np.asarray(panel["history"], dtype=float)
        truth = np.asarray(panel["truth"], dtype=float)
        pred = np.asarray(panel["prediction"], dtype=float)
        ax.plot(np.arange(-len(hist), 0), hist, color="gray", lw=0.9, label="history (lookback)")
        ax.plot(np.arange(len(truth)), truth, color="black", lw=1.2, label="truth")
        ax.plot(np.arange(len(pred)), pred, color="tab:red", lw=1.2, ls="--", label="prediction")
        ax.axvline(0, color="gray", ls=":", lw=0.8)
        ax.set_title(str(panel.get("title", "")), fontsize=9)
        ax.set_ylabel(str(panel.get("ylabel", "")))
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("steps from the forecast origin")
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


_MEASURE_TITLES = {"legs": "LegS: warped Legendre $\\sqrt{2n+1}P_n(2e^{-t}-1)e^{-t}$",
                   "legt": "LegT: Legendre on a window of $W$", "fout": "FouT: Fourier on a window of $W$"}


def plot_basis(panels: Sequence[Mapping], path: str | os.PathLike[str] | None = None) -> Figure:
    """Basis functions ``K_n(t) = (e^{tA} B)_n`` of HiPPO systems, one panel per measure (*How to Train Your HiPPO*).

    Args:
        panels: one mapping per measure with ``measure`` (``legs``, ``legt``, ``fout``, or any label), ``n`` (state
            size), ``t`` ``(T,)``, ``orders`` (the plotted indices), ``K`` ``(T, len(orders))`` computed and
            optionally ``closed_form`` (same shape, drawn dashed) and ``window`` (a vertical marker at ``t = W``).
        path: where to save the figure, if given.
    """
    if not panels:
        raise ValueError("panels must not be empty")
    fig = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=True):
        t = np.asarray(panel["t"], dtype=float)
        K = np.asarray(panel["K"], dtype=float)
        ref = panel.get("closed_form")
        for j, order in enumerate(panel["orders"]):
            (line,) = ax.plot(t, K[:, j], lw=1.4, label=f"$K_{{{order}}}$")
            if ref is not None:
                ax.plot(t, np.asarray(ref, dtype=float)[:, j], color=line.get_color(), lw=0.9, ls="--")
        window = panel.get("window")
        if window is not None and panel.get("measure") != "legs":
            ax.axvline(window, color="gray", ls=":", lw=1.0, label=f"$t = W = {window:g}$")
        ax.set_title(f"{_MEASURE_TITLES.get(panel.get('measure'), panel.get('measure'))}, n = {panel['n']}",
                     fontsize=9)
        ax.set_xlabel("t (time units; t/dt steps)")
        ax.set_ylabel(r"$(e^{tA}B)_n$")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("HiPPO basis functions: computed (solid), closed form (dashed)")
    if path is not None:
        save_figure(fig, path)
    return fig
