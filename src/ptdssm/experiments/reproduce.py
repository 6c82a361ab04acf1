"""The paper's evidence as commands: ``reproduce robustness``, ``reproduce transfer``, ``reproduce conditioning``.

Everything is written to one report folder (default ``reports/``): Markdown with tables, JSON with the numbers, and
PNG figures.

``reproduce robustness`` is the equal-state robustness study (:mod:`ptdssm.experiments.robustness_study`, whose
names are re-exported here); ``reproduce transfer`` and ``reproduce conditioning`` are :func:`reproduce_numerics`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checks import ensure_writable_dir
from .checkpoint import atomic_write_text
from .robustness_study import (
    ROBUSTNESS_MODELS,
    check_robustness_models,
    layer_option,
    lti_family_names,
    parse_model,
    reproduce_robustness,
    robustness_config,
    split_model,
)

__all__ = ["ROBUSTNESS_MODELS", "apply_budget", "check_robustness_models", "layer_option", "lti_family_names",
           "parse_model", "reproduce_numerics", "reproduce_robustness", "robustness_config", "split_model"]


def apply_budget(overrides: list[str], *, epochs: int | None, train_subset: int | None, test_subset: int | None,
                 d_model: int | None) -> list[str]:
    """Turn the CLI's budget flags into config overrides (appended after the user's own)."""
    extra = []
    if epochs is not None:
        extra.append(f"train.epochs={epochs}")
    if train_subset is not None:
        extra.append(f"data.train_subset={train_subset}")
    if test_subset is not None:
        extra.append(f"data.test_subset={test_subset}")
    if d_model is not None:
        extra.append(f"model.d_model={d_model}")
    return [*overrides, *extra]



def reproduce_numerics(what: str, ns: Sequence[int], out_dir: str | os.PathLike[str], *,
                       seeds: Sequence[int] = range(5), progress: bool = True) -> dict[str, Any]:
    """``transfer``: sup and L2 errors of S4D and S4-PTD against S4 for each ``n`` (mean over ``seeds`` of C), the
    transfer functions and the sup errors against ``n``. ``conditioning``: kappa of exact eig vs PTD vs random
    against ``n``, and kappa against ``||E||`` for optimized versus random perturbations (at n = 32).

    Writes ``report.md``, ``results.json`` and PNG figures to ``out_dir``.
    """
    from .. import plots as P
    from .numerics import check_sizes, conditioning_row, conditioning_series, kappa_vs_perturbation, transfer_rows

    if what not in ("transfer", "conditioning"):
        raise ValueError(f"unknown reproduction {what!r}; expected transfer or conditioning")
    ns = check_sizes(ns)
    out = ensure_writable_dir(out_dir, "report folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    it: Any = ns
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(ns, desc=what, leave=False)
    if what == "transfer":
        rows, panels = transfer_rows(it, list(seeds), {}, curves=True)
        figs = [P.save_figure(P.plot_transfer(panels), out / "transfer_functions.png"),
                P.save_figure(P.plot_sup_errors(rows), out / "sup_errors.png")]
        lines = ["# Transfer functions: weak (S4D) vs strong (S4-PTD) convergence to S4", "",
                 f"Random unit-norm C, mean over seeds {list(seeds)}; B = B_H; PTD with default settings.", "",
                 "| n | w_max | sup G_DPLR | sup Diag err | sup PTD err | L2 e^-t Diag | L2 e^-t PTD | L2 impulse Diag "
                 "| L2 impulse PTD | kappa PTD | E/A |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['n']} | {r['spike_frequency']:.2f} | {r['sup_dplr']:.3g} | {r['sup_diag_error']:.3g} | "
                         f"{r['sup_ptd_error']:.3g} | {r['l2_exp_diag']:.3g} | {r['l2_exp_ptd']:.3g} | "
                         f"{r['l2_impulse_diag']:.3g} | {r['l2_impulse_ptd']:.3g} | {r['ptd']['kappa']:.3g} | "
                         f"{r['ptd']['relative_perturbation']:.3f} |")
        summary: dict[str, Any] = {"what": what, "rows": rows}
    else:
        rows = [conditioning_row(n, gamma=100.0, ptd_seed=0, trials=5) for n in it]
        sweep = kappa_vs_perturbation(32)
        figs = [P.save_figure(P.plot_conditioning(ns, conditioning_series(rows)), out / "kappa_vs_n.png"),
                P.save_figure(P.plot_kappa_vs_perturbation(sweep), out / "kappa_vs_perturbation.png")]
        lines = ["# Eigenvector conditioning: exact vs PTD vs random perturbation", "",
                 "| n | kappa exact eig (float64) | kappa PTD | E/A PTD | kappa random (median, same E) |",
                 "|---|---|---|---|---|"]
        for r in rows:
            ex = "-" if r["kappa_exact"] is None else f"{r['kappa_exact']:.3g}"
            lines.append(f"| {r['n']} | {'> ' if r['exact_saturated'] else ''}{ex} | {r['kappa_ptd']:.3g} | "
                         f"{r['relative_perturbation_ptd']:.4f} | {r['kappa_random_median']:.3g} |")
        lines += ["", f"kappa against ||E|| at n = {sweep['n']}:", "", "| method | setting | E/A | kappa |",
                  "|---|---|---|---|"]
        lines += [f"| optimized | gamma = {r['gamma']:g} | {r['relative_perturbation']:.4f} | {r['kappa']:.3g} |"
                  for r in sweep["optimized"]]
        lines += [f"| random | | {r['epsilon']:.4f} | {r['kappa_median']:.3g} (median of 5) |" for r in sweep["random"]]
        summary = {"what": what, "rows": rows, "kappa_vs_perturbation": sweep}
    lines += ["", *[f"![{Path(f).stem}]({Path(f).name})" for f in figs], ""]
    summary["markdown"] = "\n".join(lines)
    summary["figures"] = figs
    atomic_write_text(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=2,
                                 default=float) + "\n", out / "results.json")
    atomic_write_text(summary["markdown"], out / "report.md")
    return summary
