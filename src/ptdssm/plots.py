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

__all__ = ["plot_transfer", "plot_conditioning", "save_figure", "SYSTEM_LABELS"]

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
