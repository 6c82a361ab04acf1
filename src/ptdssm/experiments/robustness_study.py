"""``ptdssm reproduce robustness``: the equal-state robustness study (ptd-spec section 5, issue 12 item 3).

Each compared model is a registered LTI family, optionally at a named init and with several training seeds,
``FAMILY[@INIT][:K]`` (e.g. ``s4-ptd@ptd-paper-pairs``, ``s4d:3``). Every model is trained with the same config,
data and budget (the paper's frozen model: A, B and dt fixed, only C trains among the SSM parameters), then swept
under the paper's layer noise ``a U cos(w dt_c k)`` at

* the model's **own spike**: its largest ``|Im lambda|`` (where a diagonal layer's transfer function peaks),
* the **baseline spike**: the largest ``Im lambda`` of the S4D-LegS matrix of the same state size (1303.3 for
  ``N = 64``), where S4D and S5 break,
* the **paper's** ``w = 325.4`` and the **off-spike controls** ``w = 30`` and ``w = 100``.

Accuracies of a model with several seeds are reported as mean and spread (min-max) over seeds. Each PTD model is
compared with its diagonal baseline (S4-PTD with S4D, S5-PTD with S5) on the acceptance criteria of issue 12: clean
within 2 points, at least 20 points above at the baseline spike with ``a = 0.5``, never more than 3 below at a
control. The validation curve of every run is in the report, so that "trained until clean accuracy stopped rising"
can be checked.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import ensure_writable_dir
from ..config import load_config
from ..errors import ConfigError
from .checkpoint import atomic_write_text
from .noise import PAPER_FREQUENCY, s4d_spike_frequency
from .robustness import DEFAULT_AMPLITUDES, robustness_sweep, same_frequency, write_sweep_report
from .robustness_report import robustness_markdown

__all__ = ["BASELINES", "CONTROL_FREQUENCIES", "DEFAULT_AMPLITUDES", "ROBUSTNESS_MODELS", "StudyModel",
           "check_robustness_models", "layer_option", "lti_family_names", "parse_model", "reproduce_robustness",
           "robustness_config", "split_model"]

#: Far below every spike: frequencies every model should pass the same way.
CONTROL_FREQUENCIES = (30.0, 100.0)

#: The compared models, in the order of the report: each baseline next to its PTD variant. Any registered LTI family
#: (see :func:`lti_family_names`) may be compared; these are the paper's.
ROBUSTNESS_MODELS = ("s4d", "s4-ptd", "s5", "s5-ptd")
#: PTD family -> its diagonal baseline (the criteria compare the two).
BASELINES = {"s4-ptd": "s4d", "s5-ptd": "s5"}


@dataclass(frozen=True)
class StudyModel:
    """One compared model: ``spec`` ``FAMILY[@INIT][:K]`` trained with ``seeds``."""

    spec: str
    family: str
    init: str | None
    seeds: tuple[int, ...]

    @property
    def name(self) -> str:
        """``FAMILY[@INIT]``: the model's row in the report."""
        return self.family + (f"@{self.init}" if self.init else "")

    def run_name(self, seed: int) -> str:
        """Folder of one training run: ``name`` for the first seed, ``name-seed<k>`` for the others."""
        return self.name if seed == self.seeds[0] else f"{self.name}-seed{seed}"


def lti_family_names() -> list[str]:
    """Registered families whose layer is an :class:`~ptdssm.layers.lti.LTISSM` (the ones layer noise acts on)."""
    from ..layers.lti import LTISSM
    from ..layers.registry import family_names, get_family

    return [n for n in family_names() if issubclass(get_family(n).layer, LTISSM)]


def split_model(spec: str) -> tuple[str, str | None]:
    """``"FAMILY@INIT"`` -> ``(FAMILY, INIT)``, ``"FAMILY"`` -> ``(FAMILY, None)`` (a ``:K`` seed count is dropped):
    a compared model is a registered family, optionally at another of its inits, e.g. ``s4-ptd@ptd-paper`` (the
    paper's PTD objective) next to ``s4-ptd@ptd-response`` (:mod:`ptdssm.theory.init`)."""
    family, _, init = str(spec).partition(":")[0].partition("@")
    return family, (init or None)


def parse_model(spec: str, seed: int = 0) -> StudyModel:
    """``FAMILY[@INIT][:K]`` -> :class:`StudyModel` with seeds ``seed .. seed + K - 1`` (``K`` = 1 if absent)."""
    head, colon, count = str(spec).partition(":")
    family, init = split_model(head)
    if colon:
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--models: {spec!r}: the seed count after ':' must be an integer >= 1")
        k = int(count)
    else:
        k = 1
    return StudyModel(str(spec), family, init, tuple(range(seed, seed + k)))


def check_robustness_models(models: Sequence[str]) -> list[str]:
    """``models`` as a list, each checked to be a registered LTI family, optionally ``@INIT`` and ``:K`` seeds
    (ConfigError naming the bad ones; the init itself is checked by the layer when the config is built)."""
    lti = lti_family_names()
    unknown = [m for m in models if split_model(m)[0] not in lti or str(m).partition(":")[0].endswith("@")]
    if unknown or not models:
        raise ConfigError(f"--models: {', '.join(map(str, unknown)) or 'none given'} not registered LTI famil"
                          f"{'y' if len(unknown) == 1 else 'ies'} for reproduce robustness; expected some of "
                          f"{', '.join(lti)}")
    for m in models:
        parse_model(m)
    names = [parse_model(m).name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"--models: a model is listed twice ({', '.join(names)}); give one entry per model and "
                          "its seed count as FAMILY[@INIT]:K")
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


def _val_curve(run_dir: Path) -> list[float]:
    """Validation accuracy per epoch of a run (from its ``metrics.jsonl``)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        if rec.get("kind") == "epoch" and rec.get("val_acc") is not None:
            curve.append(float(rec["val_acc"]))
    return curve


def _cached_sweep(folder: Path, checkpoint: Path, grid: set[tuple[float, float]]) -> dict[str, Any] | None:
    """A sweep already written to ``folder`` for this checkpoint that covers ``grid``, else ``None``."""
    path = folder / "robustness.json"
    if not path.is_file() or path.stat().st_mtime < checkpoint.stat().st_mtime:
        return None
    try:
        done = json.loads(path.read_text())
        have = {(float(r["frequency"]), float(r["amplitude"])) for r in done["rows"]}
    except (ValueError, KeyError, TypeError):
        return None
    return done if grid <= have else None


def _sweep_run(run_dir: Path, folder: Path, freqs: list[float], amplitudes: Sequence[float], seed: int,
               resume: bool, progress: bool) -> dict[str, Any]:
    """The layer-noise sweep of one trained run at ``freqs`` plus the model's own spike (reused when a sweep of
    the same checkpoint in ``folder`` already covers that grid)."""
    ckpt = run_dir / "checkpoints" / "best.pt"
    done = _cached_sweep(folder, ckpt, {(f, float(a)) for f in freqs for a in amplitudes}) if resume else None
    if done is not None and done.get("spikes"):
        own = float(done["spikes"][0])
        if all(any(same_frequency(r["frequency"], own) and r["amplitude"] == float(a) for r in done["rows"])
               for a in amplitudes):
            return done
    sweep = robustness_sweep(ckpt, kind="layer", frequencies=freqs, amplitudes=amplitudes, seed=seed, own_spikes=1,
                             progress=progress)
    write_sweep_report(sweep, folder)
    return {k: v for k, v in sweep.items() if not k.startswith("_")}


def _mean_rows(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows averaged over seeds, with ``acc_min``/``acc_max``/``acc_std`` (settings present in every seed)."""
    keys = [(r["frequency"], r["amplitude"]) for r in per_seed[0]]
    out = []
    for f, a in keys:
        accs = [r["acc"] for rows in per_seed for r in rows if r["frequency"] == f and r["amplitude"] == a]
        if len(accs) != len(per_seed):
            continue
        v = np.asarray(accs, dtype=np.float64)
        out.append({"frequency": f, "amplitude": a, "acc": float(v.mean()), "acc_min": float(v.min()),
                    "acc_max": float(v.max()), "acc_std": float(v.std(ddof=1)) if v.size > 1 else 0.0})
    return out


def reproduce_robustness(out_dir: str | os.PathLike[str] = "reports/robustness", *, config: str = "fashion-mnist-cpu",
                         models: Sequence[str] = ROBUSTNESS_MODELS, overrides: Sequence[str] = (),
                         frequencies: Sequence[float] | None = None, amplitudes: Sequence[float] = DEFAULT_AMPLITUDES,
                         seed: int = 0, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate the compared models; write ``report.md``, ``results.json`` and ``curves.png``.

    Args:
        out_dir: report folder; a model's run directory is ``out_dir/runs/<name>`` for its first seed and
            ``out_dir/runs/<name>-seed<k>`` for the others, its sweep ``out_dir/<name>[-seed<k>]``.
        config: packaged robustness config name or a YAML file.
        models: compared models ``FAMILY[@INIT][:K]`` (default :data:`ROBUSTNESS_MODELS`), e.g.
            ``s4d:3 s4-ptd:3 s4-ptd@ptd-paper-pairs s5 s5-ptd`` (:func:`parse_model`).
        overrides: ``key=value`` config overrides applied to every model (budget flags land here).
        frequencies: layer-noise frequencies of the sweep (default: the controls 30 and 100, the paper's 325.4
            and the S4D-LegS spike of the configured state size, e.g. 1303.3 for ``d_state = 64``); every model is
            also swept at its own spike.
        amplitudes: layer-noise amplitudes of the sweep (default 0.1, the paper's, and 0.5, 1.0).
        seed: first training seed (a model with ``:K`` trains seeds ``seed .. seed + K - 1``) and the noise seed.
        resume: reuse a finished run (its ``results.json``) and its sweep, or continue an interrupted run; ``False``
            deletes each compared run's folder under ``out_dir/runs`` and retrains it (``--fresh``).
        progress: progress bars on stderr.
    """
    study = [parse_model(m, seed) for m in check_robustness_models(models)]
    out = ensure_writable_dir(out_dir, "report folder (--out)")
    base = robustness_config(config)
    cfgs = {}  # every run's config is built (and checked) before any training
    for sm in study:
        pick = [f"model.layer.init={sm.init}"] if sm.init else []
        for s in sm.seeds:
            cfgs[sm.run_name(s)] = load_config(base, [*overrides, f"model.name={sm.family}", *pick, f"train.seed={s}",
                                                      f"train.out={out / 'runs' / sm.run_name(s)}",
                                                      f"train.progress={str(progress).lower()}"])
    summary: dict[str, Any] = {"config": str(base), "overrides": list(overrides), "seed": seed,
                               "amplitudes": list(amplitudes), "models": {}}
    for sm in study:
        summary["models"][sm.name] = _run_model(sm, cfgs, out, frequencies, amplitudes, seed, resume, progress)
        summary["spike_frequency"] = summary["models"][sm.name]["baseline_spike"]
    summary["markdown"] = robustness_markdown(summary, amplitudes, figure=_curves_figure(summary, out))
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "results.json")
    atomic_write_text(summary["markdown"], out / "report.md")
    return summary


def _run_model(sm: StudyModel, cfgs: dict[str, Any], out: Path, frequencies: Sequence[float] | None,
               amplitudes: Sequence[float], seed: int, resume: bool, progress: bool) -> dict[str, Any]:
    """Train (or reuse) every seed of one model, sweep each run, and summarise the model over its seeds."""
    from .train import train

    cfg0 = cfgs[sm.run_name(sm.seeds[0])]
    # The spike of S4D-LegS with the same state size per block: where the diagonal (S4D/S5) initialisation has its
    # resonance and where PTD should not.
    spike = s4d_spike_frequency(int(layer_option(cfg0.model, "d_state")) // (layer_option(cfg0.model, "blocks") or 1))
    freqs = sorted({float(f) for f in (frequencies if frequencies is not None
                                       else [*CONTROL_FREQUENCIES, PAPER_FREQUENCY, spike])})
    runs, sweep = [], {}
    for s in sm.seeds:
        run_dir = out / "runs" / sm.run_name(s)
        done = run_dir / "results.json"
        if not resume and run_dir.exists():  # --fresh: this run folder of the report is retrained from scratch
            shutil.rmtree(run_dir)
        if not done.is_file():
            train(cfgs[sm.run_name(s)], resume=(run_dir / "checkpoints" / "last.pt").is_file())
        sweep = _sweep_run(run_dir, out / sm.run_name(s), freqs, amplitudes, seed, resume, progress)
        runs.append({"seed": s, "clean_acc": sweep["clean"]["acc"], "rows": sweep["rows"],
                     "train_results": json.loads(done.read_text()), "val_curve": _val_curve(run_dir)})
    clean = np.asarray([r["clean_acc"] for r in runs], dtype=np.float64)
    return {
        "family": sm.family, "init": sm.init, "task": sweep["task"], "n": sweep["n"], "seeds": list(sm.seeds),
        "clean_acc": float(clean.mean()), "clean_min": float(clean.min()), "clean_max": float(clean.max()),
        "spikes": sweep["spikes"], "own_spike": float(sweep["spikes"][0]) if sweep["spikes"] else None,
        "baseline_spike": spike, "rows": _mean_rows([r["rows"] for r in runs]),
        "train_results": runs[0]["train_results"], "runs": runs,
    }


def _curves_figure(summary: dict[str, Any], out: Path) -> str | None:
    """``curves.png``: validation accuracy per epoch of every run (``None`` if no run has a curve)."""
    from .. import plots as P

    curves = {(name if len(m["runs"]) == 1 else f"{name} seed {r['seed']}"): r["val_curve"]
              for name, m in summary["models"].items() for r in m["runs"] if r["val_curve"]}
    if not curves:
        return None
    return P.save_figure(P.plot_curves(curves, ylabel="validation accuracy"), out / "curves.png")
