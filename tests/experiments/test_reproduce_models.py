"""``ptdssm reproduce robustness --models FAMILY@INIT``: a family compared at a named init (e.g. the paper's PTD
objective next to the response-preserving one), checked before any training."""

from __future__ import annotations

import pytest

from ptdssm.errors import ConfigError
from ptdssm.experiments.reproduce import check_robustness_models, reproduce_robustness, split_model


def test_split_and_check_family_at_init():
    assert split_model("s4-ptd@ptd-paper") == ("s4-ptd", "ptd-paper") and split_model("s4d") == ("s4d", None)
    specs = ["s4d", "s4-ptd@ptd-paper", "s4-ptd@ptd-response", "s5-ptd@ptd-paper-pairs"]
    assert check_robustness_models(specs) == specs
    for bad in (["s4-ptd@"], ["nope@ptd-paper"]):
        with pytest.raises(ConfigError, match="--models"):
            check_robustness_models(bad)


def test_unknown_init_is_refused_before_any_training(tmp_path, monkeypatch):
    import ptdssm.experiments.train as train_mod

    monkeypatch.setattr(train_mod, "train", lambda *a, **k: pytest.fail("trained before checking every model"))
    with pytest.raises(ConfigError, match="ptd-bogus"):
        reproduce_robustness(tmp_path, models=["s4d", "s4-ptd@ptd-bogus"], progress=False)
