"""The paper's evidence as commands: ``reproduce robustness``, ``reproduce transfer``, ``reproduce conditioning``.

Everything is written to one report folder (default ``reports/``): Markdown with tables, JSON with the numbers, and
PNG figures.

``reproduce robustness`` trains the paper's robustness model (4 layers, H = 128, N = 64, A, B and dt frozen, only C
trained among the SSM parameters) for S4D-LegS, S4-PTD, S5 and S5-PTD with the same seeds, data and budget, then
evaluates each on clean and on noisy test data: the paper's layer-level noise ``0.1 U cos(w dt_c k)`` at
``w = 325.4`` and at the model's own S4D spike frequency, plus a frequency sweep.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import ensure_writable_dir
from ..config import load_config
from ..errors import ConfigError
from .checkpoint import atomic_write_text
from .noise import PAPER_FREQUENCY, s4d_spike_frequency
from .robustness import robustness_sweep, sweep_markdown, write_sweep_report

__all__ = ["ROBUSTNESS_MODELS", "apply_budget", "check_robustness_models", "layer_option", "lti_family_names",
           "reproduce_numerics", "reproduce_robustness", "robustness_config", "split_model"]

DEFAULT_AMPLITUDES = (0.1, 0.5, 1.0)
CONTROL_FREQUENCY = 100.0  # far below the spikes: a frequency every model should pass the same way

#: The compared models, in the order of the report: each baseline next to its PTD variant. Any registered LTI family
#: (see :func:`lti_family_names`) may be compared; these are the paper's.
ROBUSTNESS_MODELS = ("s4d", "s4-ptd", "s5", "s5-ptd")


def lti_family_names() -> list[str]:
    """Registered families whose layer is an :class:`~ptdssm.layers.lti.LTISSM` (the ones layer noise acts on)."""
    from ..layers.lti import LTISSM
    from ..layers.registry import family_names, get_family

    return [n for n in family_names() if issubclass(get_family(n).layer, LTISSM)]


def split_model(spec: str) -> tuple[str, str | None]:
    """``"FAMILY@INIT"`` -> ``(FAMILY, INIT)``, ``"FAMILY"`` -> ``(FAMILY, None)``: a compared model is a registered
    family, optionally at another of its inits, e.g. ``s4-ptd@ptd-paper`` (the paper's PTD objective) next to
    ``s4-ptd@ptd-response`` (:mod:`ptdssm.theory.init`)."""
    family, _, init = str(spec).partition("@")
    return family, (init or None)


def check_robustness_models(models: Sequence[str]) -> list[str]:
    """``models`` as a list, each checked to be a registered LTI family, optionally ``@INIT`` (ConfigError naming
    the bad ones; the init itself is checked by the layer when the config is built)."""
    lti = lti_family_names()
    unknown = [m for m in models if split_model(m)[0] not in lti or str(m).endswith("@")]
    if unknown or not models:
        raise ConfigError(f"--models: {', '.join(unknown) or 'none given'} not registered LTI famil"
                          f"{'y' if len(unknown) == 1 else 'ies'} for reproduce robustness; expected some of "
                          f"{', '.join(lti)}")
    return list(models)


def layer_option(model_cfg: Any, key: str) -> Any:
    """A layer option of a model config: ``model.layer[key]`` (configs before ``model.layer``: the flat
    ``model.<key>``), else the default of the family's layer constructor (``None`` if it has no such option)."""
    layer = getattr(model_cfg, "layer", None)
    if isinstance(layer, dict):
        if layer.get(key) is not None:
            return layer[key]
    elif getattr(model_cfg, key, None) is not None:
        return getattr(model_cfg, key)
    from ..layers.registry import get_family, layer_kwargs_schema

    param = layer_kwargs_schema(get_family(model_cfg.name)).get(key)
    return None if param is None or param.default is param.empty else param.default


def robustness_config(name: str = "fashion-mnist-cpu") -> Path:
    """Path of a packaged robustness config (``fashion-mnist-cpu`` or ``scifar-paper``) or of a user's file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        return p
    path = Path(str(resources.files("ptdssm") / "configs" / "robustness" / f"{name}.yaml"))
    if not path.is_file():
        raise ValueError(f"unknown robustness config {name!r}; expected fashion-mnist-cpu, scifar-paper or a .yaml")
    return path


def reproduce_robustness(out_dir: str | os.PathLike[str] = "reports/robustness", *, config: str = "fashion-mnist-cpu",
                         models: Sequence[str] = ROBUSTNESS_MODELS, overrides: Sequence[str] = (),
                         frequencies: Sequence[float] | None = None, amplitudes: Sequence[float] = DEFAULT_AMPLITUDES,
                         seed: int = 0, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate the compared models; write ``report.md`` and ``results.json`` to ``out_dir``.

    Args:
        out_dir: report folder; each model's run directory is ``out_dir/runs/<model>``.
        config: packaged robustness config name or a YAML file.
        models: the LTI families to compare (default :data:`ROBUSTNESS_MODELS`), each optionally ``FAMILY@INIT``
            to compare a family at another init, e.g. ``s4-ptd@ptd-paper s4-ptd@ptd-response`` (:func:`split_model`).
        overrides: ``key=value`` config overrides applied to every model (budget flags land here).
        frequencies: layer-noise frequencies of the sweep (default: the control ``w = 100``, the paper's 325.4 and
            the S4D-LegS spike of the configured state size, e.g. 1303.3 for ``d_state = 64``).
        amplitudes: layer-noise amplitudes of the sweep (default 0.1, the paper's, and 0.5, 1.0).
        seed: training seed (the same for every model) and noise seed.
        resume: reuse a finished run of a model (its ``results.json``) or continue an interrupted one.
        progress: progress bars on stderr.
    """
    from .train import train

    models = check_robustness_models(models)
    out = ensure_writable_dir(out_dir, "report folder (--out)")
    base = robustness_config(config)
    summary: dict[str, Any] = {"config": str(base), "overrides": list(overrides), "seed": seed, "models": {}}
    spike = None
    cfgs = {}  # every model's config is built (and checked) before any training
    for name in models:
        family, init = split_model(name)
        pick = [f"model.layer.init={init}"] if init else []
        cfgs[name] = load_config(base, [*overrides, f"model.name={family}", *pick, f"train.seed={seed}",
                                        f"train.out={out / 'runs' / name}", f"train.progress={str(progress).lower()}"])
    for name, cfg in cfgs.items():
        run_dir = out / "runs" / name
        # Every model is probed at the spike of S4D-LegS with the same state size per block: that is where the
        # diagonal (S4D/S5) initialisation has its resonance and where PTD should not.
        spike = s4d_spike_frequency(int(layer_option(cfg.model, "d_state")) // (layer_option(cfg.model, "blocks") or 1))
        freqs = list(frequencies) if frequencies is not None else [CONTROL_FREQUENCY, PAPER_FREQUENCY, spike]
        done = run_dir / "results.json"
        if not (resume and done.is_file()):
            train(cfg, resume=resume and (run_dir / "checkpoints" / "last.pt").is_file())
        trained = json.loads(done.read_text())
        sweep = robustness_sweep(run_dir / "checkpoints" / "best.pt", kind="layer", frequencies=freqs,
                                 amplitudes=amplitudes, seed=seed, progress=progress)
        write_sweep_report(sweep, out / name)
        summary["models"][name] = {
            "task": sweep["task"], "clean_acc": sweep["clean"]["acc"], "train_results": trained,
            "spikes": sweep["spikes"], "rows": sweep["rows"], "n": sweep["n"],
        }
    summary["spike_frequency"] = spike
    summary["markdown"] = _robustness_markdown(summary, amplitudes)
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "results.json")
    atomic_write_text(summary["markdown"], out / "report.md")
    return summary


def _acc_at(rows: list[dict[str, Any]], f: float | None, a: float) -> float | None:
    for r in rows:
        if f is not None and abs(r["frequency"] - f) < 1e-6 and abs(r["amplitude"] - a) < 1e-12:
            return r["acc"]
    return None


def _robustness_markdown(summary: dict[str, Any], amplitudes: Sequence[float]) -> str:
    spike = summary["spike_frequency"]
    fmt = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    lines = ["# Robustness to Fourier-mode noise", "",
             f"Config `{summary['config']}`, overrides `{' '.join(summary['overrides']) or '-'}`, seed "
             f"{summary['seed']}. Test accuracy (%) clean and under the paper's layer-level noise "
             "`a U cos(w dt_c k)` added at every SSM layer's input (same noise seed for every model).", ""]
    for title, w in ((f"At the S4D-LegS spike w = {spike:g} of this state size", spike),
                     (f"At the paper's w = {PAPER_FREQUENCY:g}", PAPER_FREQUENCY),
                     (f"Off-spike control w = {CONTROL_FREQUENCY:g}", CONTROL_FREQUENCY)):
        lines += [f"**{title}**", "", "| model | clean | " + " | ".join(f"a = {a:g}" for a in amplitudes) + " |",
                  "|---|---|" + "---|" * len(amplitudes)]
        for name, m in summary["models"].items():
            lines.append(f"| {name} | {fmt(m['clean_acc'])} | "
                         + " | ".join(fmt(_acc_at(m["rows"], w, a)) for a in amplitudes) + " |")
        lines.append("")
    lines += ["", "Per-model sweeps (accuracy % by frequency and amplitude), with plots in each model's folder "
              "(`accuracy.png`, `layer_transfer.png`):", ""]
    for name, m in summary["models"].items():
        table = {"model": name, "task": m["task"], "split": "test", "n": m["n"], "kind": "layer",
                "clean": {"acc": m["clean_acc"]}, "spikes": m["spikes"], "rows": m["rows"]}
        lines += [f"## {name}", "", sweep_markdown(table), f"![accuracy]({name}/accuracy.png) "
                  f"![transfer]({name}/layer_transfer.png)", ""]
    return "\n".join(lines)


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
