"""The equal-state robustness study: model specs with seed counts, own-spike sweeps, means over seeds, the PTD vs
baseline criteria (against hand-computed differences), reuse of finished sweeps."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ptdssm.errors import ConfigError
from ptdssm.experiments.noise import s4d_spike_frequency
from ptdssm.experiments.robustness_report import CRITERIA, criteria_rows
from ptdssm.experiments.robustness_study import check_robustness_models, parse_model, reproduce_robustness

TINY = ["data.task=digits", "data.seq_len=null", "data.train_subset=192", "data.test_subset=64",
        "data.batch_size=32", "model.d_model=8", "model.layer.d_state=8", "model.n_layers=1", "train.epochs=2"]


def test_model_specs_with_inits_and_seed_counts():
    m = parse_model("s4-ptd@ptd-paper-pairs:2", seed=5)
    assert (m.family, m.init, m.seeds, m.name) == ("s4-ptd", "ptd-paper-pairs", (5, 6), "s4-ptd@ptd-paper-pairs")
    assert m.run_name(5) == "s4-ptd@ptd-paper-pairs" and m.run_name(6) == "s4-ptd@ptd-paper-pairs-seed6"
    assert parse_model("s4d").seeds == (0,)
    for bad in ("s4d:0", "s4d:x", "s4d:"):
        with pytest.raises(ConfigError, match="seed count"):
            check_robustness_models([bad])
    with pytest.raises(ConfigError, match="twice"):
        check_robustness_models(["s4d", "s4d:3"])


def _model(family, clean, rows, spike=1303.3):
    return {"family": family, "clean_acc": clean, "baseline_spike": spike,
            "rows": [{"frequency": f, "amplitude": a, "acc": v} for (f, a), v in rows.items()]}


def test_criteria_are_the_differences_to_the_baseline():
    base = _model("s4d", 0.70, {(1303.3, 0.5): 0.20, (30.0, 0.5): 0.70, (100.0, 0.5): 0.69, (100.0, 1.0): 0.66})
    good = _model("s4-ptd", 0.69, {(1303.3, 0.5): 0.45, (30.0, 0.5): 0.69, (100.0, 0.5): 0.68, (100.0, 1.0): 0.64})
    bad = _model("s4-ptd", 0.60, {(1303.3, 0.5): 0.30, (30.0, 0.5): 0.70, (100.0, 0.5): 0.69, (100.0, 1.0): 0.55})
    summary = {"amplitudes": [0.5, 1.0], "models": {"s4d": base, "s4-ptd": good, "s4-ptd@ptd-paper-pairs": bad}}
    rows = {r["model"]: r for r in criteria_rows(summary, (30.0, 100.0))}
    assert set(rows) == {"s4-ptd", "s4-ptd@ptd-paper-pairs"}  # the baseline itself has no row
    g, b = rows["s4-ptd"], rows["s4-ptd@ptd-paper-pairs"]
    assert g["baseline"] == b["baseline"] == "s4d"
    np.testing.assert_allclose([g["clean_delta"], g["spike_delta"], g["control_delta"]], [-1.0, 25.0, -2.0])
    assert g["clean_ok"] and g["spike_ok"] and g["control_ok"]
    np.testing.assert_allclose([b["clean_delta"], b["spike_delta"], b["control_delta"]], [-10.0, 10.0, -11.0])
    assert not (b["clean_ok"] or b["spike_ok"] or b["control_ok"])
    assert CRITERIA["spike_amplitude"] == 0.5


def test_study_trains_seeds_sweeps_own_spike_and_reuses_sweeps(tmp_path):
    spike = s4d_spike_frequency(8)  # 19.86: S4D's own spike (rounded 19.9) is this one, not swept twice
    s = reproduce_robustness(tmp_path, models=["s4d:2", "s4-ptd"], overrides=TINY, frequencies=[30.0, spike],
                             amplitudes=[0.5], progress=False)
    s4d, ptd = s["models"]["s4d"], s["models"]["s4-ptd"]
    assert s4d["seeds"] == [0, 1] and ptd["seeds"] == [0]
    assert (tmp_path / "runs" / "s4d" / "results.json").is_file()
    assert (tmp_path / "runs" / "s4d-seed1" / "results.json").is_file()
    assert yaml.safe_load((tmp_path / "runs" / "s4d-seed1" / "config.yaml").read_text())["train"]["seed"] == 1
    cleans = [r["clean_acc"] for r in s4d["runs"]]
    assert s4d["clean_acc"] == pytest.approx(np.mean(cleans))
    for m in (s4d, ptd):
        assert m["own_spike"] == m["spikes"][0] > 0
        freqs = {r["frequency"] for r in m["rows"]}
        assert 30.0 in freqs and min(abs(f - m["own_spike"]) for f in freqs) < 0.06
        for r in m["runs"]:
            assert len(r["val_curve"]) == 2 and all(0.0 <= v <= 1.0 for v in r["val_curve"])
    assert sorted({r["frequency"] for r in s4d["rows"]}) == [spike, 30.0]
    assert len({r["frequency"] for r in ptd["rows"]}) == 3  # its own spike is another frequency
    # Mean rows are the means of the seeds' rows.
    at30 = [next(x["acc"] for x in r["rows"] if x["frequency"] == 30.0) for r in s4d["runs"]]
    row30 = next(x for x in s4d["rows"] if x["frequency"] == 30.0)
    assert row30["acc"] == pytest.approx(np.mean(at30)) and row30["acc_min"] == min(at30)
    text = (tmp_path / "report.md").read_text()
    assert "| s4-ptd | s4d |" in text and "Validation accuracy per epoch" in text
    assert (tmp_path / "curves.png").stat().st_size > 0
    # A second call reuses the finished runs and their sweeps (nothing re-evaluated).
    sweep = tmp_path / "s4d-seed1" / "robustness.json"
    before = sweep.stat().st_mtime_ns
    again = reproduce_robustness(tmp_path, models=["s4d:2", "s4-ptd"], overrides=TINY, frequencies=[30.0, spike],
                                 amplitudes=[0.5], progress=False)
    assert sweep.stat().st_mtime_ns == before
    assert again["models"]["s4d"]["rows"] == s4d["rows"]
    # --fresh (resume=False) retrains a finished run instead of refusing its folder.
    results = tmp_path / "runs" / "s4-ptd" / "results.json"
    stamp = results.stat().st_mtime_ns
    fresh = reproduce_robustness(tmp_path, models=["s4-ptd"], overrides=TINY, frequencies=[30.0], amplitudes=[0.5],
                                 resume=False, progress=False)
    assert results.stat().st_mtime_ns > stamp and fresh["models"]["s4-ptd"]["seeds"] == [0]

