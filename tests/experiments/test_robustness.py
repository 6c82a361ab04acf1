"""End-to-end robustness: train tiny models, evaluate under noise, write the report; the checkpoint is untouched."""

import hashlib
import inspect
import json

import pytest

from ptdssm.cli import main
from ptdssm.experiments.evaluate import evaluate_checkpoint
from ptdssm.experiments.noise import NoiseSpec
from ptdssm.experiments.reproduce import reproduce_robustness

TINY = ["data.task=digits", "data.seq_len=null", "data.train_subset=256", "data.test_subset=96",
        "data.batch_size=32", "model.d_model=8", "model.layer.d_state=8", "model.n_layers=2", "train.epochs=1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness")
    summary = reproduce_robustness(out, models=("s4d", "s4-ptd", "s5", "s5-ptd"), overrides=TINY,
                                   frequencies=[30.0, 325.4], amplitudes=[0.1, 0.5], progress=False)
    return out, summary


def test_reproduce_robustness_writes_the_report(report):
    out, summary = report
    text = (out / "report.md").read_text()
    for name in ("s4d", "s4-ptd", "s5", "s5-ptd"):
        m = summary["models"][name]
        assert 0.0 <= m["clean_acc"] <= 1.0
        assert {(r["frequency"], r["amplitude"]) for r in m["rows"]} >= {(30.0, 0.1), (325.4, 0.5)}
        assert f"| {name} |" in text
        for f in ("robustness.json", "robustness.csv", "robustness.md", "accuracy.png", "layer_transfer.png"):
            assert (out / name / f).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["models"].keys() == summary["models"].keys()
    # A finished run is reused, not retrained.
    again = reproduce_robustness(out, models=("s4d",), overrides=TINY, frequencies=[30.0], amplitudes=[0.1],
                                 progress=False)
    assert again["models"]["s4d"]["train_results"] == summary["models"]["s4d"]["train_results"]


def test_noisy_evaluation_leaves_the_checkpoint_untouched(report):
    out, _ = report
    ckpt = out / "runs" / "s4d" / "checkpoints" / "best.pt"
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    clean = evaluate_checkpoint(ckpt)
    noisy = evaluate_checkpoint(ckpt, noise=NoiseSpec("layer", amplitude=5.0, frequency=30.0))
    assert noisy["noise"]["kind"] == "layer" and "noise" not in clean
    assert noisy["loss"] != clean["loss"]
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest
    assert evaluate_checkpoint(ckpt) == clean  # no hook left behind


def test_cli_evaluate_noise_and_robustness_json(report, tmp_path, capsys):
    out, _ = report
    ckpt = str(out / "runs" / "s5-ptd" / "checkpoints" / "best.pt")
    assert main(["evaluate", "--checkpoint", ckpt, "--noise", "gaussian", "--amplitude", "0.2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["noise"]["kind"] == "gaussian" and 0 <= doc["acc"] <= 1
    assert main(["robustness", "--checkpoint", ckpt, "--frequencies", "100", "--amplitudes", "0.1",
                 "--out", str(tmp_path), "--no-plots", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["frequency"], r["amplitude"]) for r in doc["rows"]] == [(100.0, 0.1)]
    assert (tmp_path / "robustness.csv").read_text().startswith("frequency,amplitude,acc,loss")
    # Bad input: a clear one-line error, exit 2.
    assert main(["robustness", "--checkpoint", ckpt, "--amplitudes", "-1", "--out", str(tmp_path)]) == 2
    assert "--amplitudes" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", ckpt, "--noise", "layer"]) == 2
    assert "frequency" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")]) == 2


def test_reproduce_models_are_checked_against_the_registry(monkeypatch):
    from ptdssm.errors import ConfigError
    from ptdssm.experiments.reproduce import check_robustness_models, lti_family_names
    from ptdssm.layers import SequenceMixer, registry

    class Gate(SequenceMixer):  # a registered family that is not LTI: no layer noise, no spikes
        def _forward(self, u, lengths):
            return u

    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    registry.register_family("toy-gate", Gate, block="mixer")
    assert "toy-gate" in registry.family_names() and "toy-gate" not in lti_family_names()
    assert {"s4", "s4d", "s4-ptd", "s5", "s5-ptd"} <= set(lti_family_names())
    assert check_robustness_models(["s4", "s5-ptd"]) == ["s4", "s5-ptd"]
    for bad in (["toy-gate"], ["nope", "s4d"], []):
        with pytest.raises(ConfigError, match="--models"):
            check_robustness_models(bad)


def test_layer_options_come_from_model_layer_then_the_constructor():
    from ptdssm.config import find_config, load_config
    from ptdssm.experiments.reproduce import layer_option

    cfg = load_config(find_config("digits", "s5"), ["model.layer.d_state=24"])
    assert layer_option(cfg.model, "d_state") == 24
    cfg.model.layer.pop("blocks", None)
    from ptdssm.layers import S5

    assert layer_option(cfg.model, "blocks") == inspect.signature(S5).parameters["blocks"].default
    assert layer_option(cfg.model, "no_such_option") is None
