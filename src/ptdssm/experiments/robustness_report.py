"""The Markdown report of ``ptdssm reproduce robustness`` (:mod:`ptdssm.experiments.robustness_study`).

Tables of test accuracy (%) per model, mean over its seeds with the min-max spread, clean and under layer noise at
each frequency class (own spike, baseline spike, paper's, controls); the acceptance criteria of each PTD model
against its diagonal baseline, computed from those means; the validation curve of every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .noise import PAPER_FREQUENCY
from .robustness import same_frequency

__all__ = ["CRITERIA", "criteria_rows", "robustness_markdown"]

#: Issue 12's acceptance, in accuracy points: clean within ``clean``, at least ``spike`` above the baseline at the
#: baseline's spike with ``a = spike_amplitude``, never more than ``control`` below at an off-spike control.
CRITERIA = {"clean": 2.0, "spike": 20.0, "spike_amplitude": 0.5, "control": 3.0}


def _cell(m: dict[str, Any], f: float | None, a: float) -> dict[str, Any] | None:
    """The row of frequency ``f`` (up to a spike's rounding, :func:`same_frequency`) and amplitude ``a``."""
    for r in m["rows"]:
        if f is not None and same_frequency(r["frequency"], f) and abs(r["amplitude"] - a) < 1e-12:
            return r
    return None


def _fmt(mean: float | None, lo: float | None = None, hi: float | None = None) -> str:
    if mean is None:
        return "-"
    text = f"{100 * mean:.1f}"
    return text if lo is None or hi is None or hi - lo < 1e-12 else f"{text} [{100 * lo:.1f}-{100 * hi:.1f}]"


def _row_cells(m: dict[str, Any], f: float | None, amplitudes: Sequence[float]) -> list[str]:
    cells = []
    for a in amplitudes:
        r = _cell(m, f, a)
        cells.append("-" if r is None else _fmt(r["acc"], r.get("acc_min"), r.get("acc_max")))
    return cells


def _baseline(summary: dict[str, Any], family: str) -> str | None:
    """The first compared model of the diagonal baseline of ``family`` (``None`` if not compared)."""
    from .robustness_study import BASELINES

    base = BASELINES.get(family)
    return next((n for n, m in summary["models"].items() if m["family"] == base), None)


def criteria_rows(summary: dict[str, Any], controls: Sequence[float]) -> list[dict[str, Any]]:
    """Each PTD model against its baseline: ``{"model", "baseline", "clean_delta", "spike_delta", "control_delta",
    "clean_ok", "spike_ok", "control_ok"}`` in accuracy points (means over seeds; ``control_delta`` the most
    negative difference over the ``controls`` and amplitudes; ``None`` where a setting was not measured)."""
    rows = []
    for name, m in summary["models"].items():
        base = _baseline(summary, m["family"])
        if base is None:
            continue
        b = summary["models"][base]
        spike_m = _cell(m, b["baseline_spike"], CRITERIA["spike_amplitude"])
        spike_b = _cell(b, b["baseline_spike"], CRITERIA["spike_amplitude"])
        spike = None if spike_m is None or spike_b is None else 100 * (spike_m["acc"] - spike_b["acc"])
        deltas = [100 * (cm["acc"] - cb["acc"]) for f in controls for a in summary["amplitudes"]
                  if (cm := _cell(m, f, a)) is not None and (cb := _cell(b, f, a)) is not None]
        control = min(deltas) if deltas else None
        clean = 100 * (m["clean_acc"] - b["clean_acc"])
        rows.append({"model": name, "baseline": base, "clean_delta": clean, "spike_delta": spike,
                     "control_delta": control, "clean_ok": abs(clean) <= CRITERIA["clean"] or clean > 0,
                     "spike_ok": None if spike is None else spike >= CRITERIA["spike"],
                     "control_ok": None if control is None else control >= -CRITERIA["control"]})
    return rows


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def _criteria_lines(summary: dict[str, Any], controls: Sequence[float]) -> list[str]:
    rows = criteria_rows(summary, controls)
    if not rows:
        return []
    c = CRITERIA
    lines = ["## Each PTD model against its diagonal baseline", "",
             f"Differences of mean test accuracy in points (PTD minus baseline). Criteria: clean within "
             f"{c['clean']:g} points (or above); at least {c['spike']:g} above at the baseline's spike with a = "
             f"{c['spike_amplitude']:g}; never more than {c['control']:g} below at a control "
             f"(w = {', '.join(f'{f:g}' for f in controls)}, every amplitude).", "",
             "| model | baseline | clean | at the baseline spike | worst control | clean | spike | controls |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = lambda v: "-" if v is None else f"{v:+.1f}"  # noqa: E731
        lines.append(f"| {r['model']} | {r['baseline']} | {d(r['clean_delta'])} | {d(r['spike_delta'])} | "
                     f"{d(r['control_delta'])} | {_verdict(r['clean_ok'])} | {_verdict(r['spike_ok'])} | "
                     f"{_verdict(r['control_ok'])} |")
    return [*lines, ""]


def _curve_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["## Validation accuracy per epoch", "",
             "| run | seed | epochs | best epoch | validation accuracy (%) per epoch |", "|---|---|---|---|---|"]
    for name, m in summary["models"].items():
        for r in m["runs"]:
            curve = " ".join(f"{100 * v:.1f}" for v in r["val_curve"]) or "-"
            lines.append(f"| {name} | {r['seed']} | {len(r['val_curve'])} | "
                         f"{r['train_results'].get('best_epoch', '-')} | {curve} |")
    return [*lines, ""]


def _run_folder(name: str, m: dict[str, Any], seed: int) -> str:
    return name if seed == m["seeds"][0] else f"{name}-seed{seed}"


def robustness_markdown(summary: dict[str, Any], amplitudes: Sequence[float], *, figure: str | None = None) -> str:
    """The study's report (see the module docstring)."""
    from .robustness_study import CONTROL_FREQUENCIES

    amps = list(amplitudes)
    head = "| model | seeds | clean | " + " | ".join(f"a = {a:g}" for a in amps) + " |"
    rule = "|---|---|---|" + "---|" * len(amps)
    lines = ["# Robustness to Fourier-mode noise", "",
             f"Config `{summary['config']}`, overrides `{' '.join(summary['overrides']) or '-'}`. Test accuracy (%) "
             "clean and under the paper's layer-level noise `a U cos(w dt_c k)` added at every SSM layer's input "
             "(same noise seed for every model); mean over a model's training seeds, [min-max] when it has several.",
             ""]
    models = summary["models"]
    any_m = next(iter(models.values()))
    classes = [("At each model's own spike (its largest |Im lambda|)", None),
               (f"At the S4D-LegS spike w = {any_m['baseline_spike']:g} of this state size (the baselines' spike)",
                any_m["baseline_spike"]),
               (f"At the paper's w = {PAPER_FREQUENCY:g}", PAPER_FREQUENCY),
               *[(f"Off-spike control w = {f:g}", f) for f in CONTROL_FREQUENCIES]]
    for title, w in classes:
        if w is not None and all(_cell(m, w, amps[0]) is None for m in models.values()):
            continue
        lines += [f"**{title}**", "", head.replace("| seeds |", "| seeds | w |") if w is None else head,
                  rule + ("---|" if w is None else "")]
        for name, m in models.items():
            f = m["own_spike"] if w is None else w
            clean = _fmt(m["clean_acc"], m.get("clean_min"), m.get("clean_max"))
            own = [f"{f:g}" if f is not None else "-"] if w is None else []
            lines.append(" | ".join([f"| {name}", str(len(m["seeds"])), *own, clean, *_row_cells(m, f, amps)]) + " |")
        lines.append("")
    lines += _criteria_lines(summary, CONTROL_FREQUENCIES)
    lines += _curve_lines(summary)
    if figure:
        lines += [f"![validation curves]({Path(figure).name})", ""]
    lines += ["Per-run sweeps (every frequency and amplitude) with plots in each run's folder (`robustness.md`, "
              "`accuracy.png`, `layer_transfer.png`): " + ", ".join(
                  f"`{_run_folder(name, m, r['seed'])}/`" for name, m in models.items() for r in m["runs"]), ""]
    return "\n".join(lines)
