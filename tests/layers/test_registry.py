"""The family registry: one merge of the layer's keyword arguments (layer_kwargs) and one unknown-key check used by
the factory, the config and the benchmark; families from the user's own module (``--model module:name``) and from
the ``ptdssm.families`` entry points."""

from __future__ import annotations

import importlib.metadata
import json
import sys

import pytest
import torch

from ptdssm.bench import bench_layers
from ptdssm.cli import main
from ptdssm.config import config_from_dict
from ptdssm.errors import ConfigError
from ptdssm.layers import S4D, S5, registry
from ptdssm.layers.registry import (
    build_checked,
    build_layer,
    check_option_names,
    family_names,
    get_family,
    layer_kwargs,
    layer_kwargs_schema,
    register_family,
)

torch.set_num_threads(min(2, torch.get_num_threads()))

# A family in a user's module: a fixed exponential moving average (as tests/layers/test_toy_family.py), registered
# under the short name the module chooses.
EMA_MODULE = '''
import torch
from ptdssm.layers import SequenceMixer, register_family


class EMA(SequenceMixer):
    def __init__(self, d_model, *, decay_max: float = 0.9, dropout: float = 0.0, validate: bool = True):
        super().__init__(d_model, dropout=dropout, validate=validate)
        if not 0 < decay_max < 1:
            raise ValueError(f"decay_max must be in (0, 1), got {decay_max}")
        self.register_buffer("a", torch.linspace(0.5, decay_max, d_model))
        self.w = torch.nn.Parameter(torch.ones(d_model))

    def _forward(self, u, lengths):
        a, y, ys = self.a.to(u.dtype), torch.zeros_like(u[:, 0]), []
        for t in range(u.shape[1]):
            y = a * y + (1 - a) * u[:, t]
            ys.append(y)
        return torch.stack(ys, 1) * self.w.to(u.dtype)


register_family(NAME, EMA, block="ssm", description="user EMA", replace=True)
'''


def _module(name: str) -> str:
    return EMA_MODULE.replace("NAME", repr(name))


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Registrations, imported user modules and ``sys.path`` changes undone after the test."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for mod in set(sys.modules) - before:
        if mod.startswith("userfam_"):
            del sys.modules[mod]


# ------------------------------------------------------------------ one merge, one key check

def test_layer_kwargs_is_the_one_merge():
    fam = get_family("s5-ptd")
    assert layer_kwargs("s5-ptd") == {"init": "ptd"}
    assert layer_kwargs("s5-ptd", {"init": "s5-legs", "blocks": 2, "conj_sym": None}) == {"init": "s5-legs",
                                                                                          "blocks": 2}
    full = layer_kwargs("s5-ptd", {"blocks": 2}, with_defaults=True)
    assert full["blocks"] == 2 and full["init"] == "ptd" and full["d_state"] == 64
    assert set(full) == set(layer_kwargs_schema("s5-ptd"))
    # the benchmark, the config and the factory all read it
    assert bench_layers()["s5-ptd"] == (S5, layer_kwargs(fam, fam.bench)) == (S5, {"init": "ptd", "d_state": 256,
                                                                                    "blocks": 4})
    cfg = config_from_dict({"model": {"name": "s5-ptd", "layer": {"blocks": 2}}}).model
    assert cfg.layer_options() == layer_kwargs("s5-ptd", {"blocks": 2})
    assert cfg.layer_options(defaults=True) == full


def test_family_defaults_rank_below_the_init_and_the_options(isolated):
    register_family("s4d-wide", S4D, init="s4d-lin", defaults={"d_state": 16, "dt_min": 1e-2})
    assert layer_kwargs("s4d-wide", {"dt_min": 1e-3}) == {"d_state": 16, "dt_min": 1e-3, "init": "s4d-lin"}
    layer = build_layer("s4d-wide", 4, {"dt_min": 1e-3})
    assert (layer.d_state, layer.dt_min, layer.init) == (16, 1e-3, "s4d-lin")


def test_unknown_option_message_is_the_same_everywhere():
    with pytest.raises(ConfigError) as a:
        check_option_names("s4d", {"blocks": 2})
    with pytest.raises(ConfigError) as b:
        build_layer("s4d", 4, {"blocks": 2})
    with pytest.raises(ConfigError) as c:
        config_from_dict({"model": {"name": "s4d", "layer": {"blocks": 2}}})
    assert str(a.value) == str(b.value) == str(c.value)
    assert str(a.value).startswith("config key 'model.layer.blocks' is not an option of S4D (model 's4d')")


def test_constructor_errors_become_config_errors_by_type(isolated):
    """A constructor's ValueError is re-typed to a ConfigError naming model.layer and the family, whatever its text
    (even text that looks like a config error), and a ConfigError it raises passes through unchanged."""
    class Picky(S4D):
        def __init__(self, d_model, d_state: int = 64, *, strict: bool = False, **kw):
            if strict:
                raise ValueError("config key 'strict' is not allowed")
            if d_state == 3:
                raise ConfigError("config key 'model.layer.d_state' must not be 3")
            super().__init__(d_model, d_state, **kw)
    register_family("picky", Picky)
    with pytest.raises(ConfigError) as err:
        build_checked("picky", 4, {"strict": True})
    assert str(err.value) == ("config key 'model.layer' of model 'picky' (Picky, d_model=4): config key 'strict' is "
                              "not allowed")
    with pytest.raises(ConfigError, match=r"^config key 'model\.layer\.d_state' must not be 3$"):
        build_checked("picky", 4, {"d_state": 3})
    from ptdssm.models.factory import make_layer

    cfg = config_from_dict({"model": {"name": "picky", "d_model": 4}}).model
    cfg.layer = {"strict": True}  # past validation (as a hand-built config)
    with pytest.raises(ConfigError, match=r"^config key 'model\.layer' of model 'picky'"):
        make_layer(cfg)
    cfg.name = "no-such-family"
    with pytest.raises(ConfigError, match=r"^config key 'model\.name': unknown model 'no-such-family'"):
        make_layer(cfg)


def test_validation_builds_on_the_meta_device_without_random_draws():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    config_from_dict({"model": {"name": "s4", "d_model": 12, "layer": {"d_state": 10}}})
    assert torch.equal(torch.random.get_rng_state(), before)
    layer = build_checked("s4", 4, {"d_state": 8}, meta=True)
    assert layer.A_re.device.type == "meta"


# ------------------------------------------------------------------ module:name

def test_module_name_resolves_a_family_the_module_registers(isolated):
    (isolated / "userfam_a.py").write_text(_module("ema"))
    (isolated / "userfam_b.py").write_text(_module("userfam_b:ema"))
    fam = get_family("userfam_a:ema")  # registered as "ema" by the import
    assert fam.name == "userfam_a:ema" and fam.layer is get_family("ema").layer
    assert get_family("userfam_b:ema").layer.__module__ == "userfam_b"  # registered as "module:name"
    assert {"ema", "userfam_a:ema", "userfam_b:ema"} <= set(family_names())
    layer = build_layer("userfam_a:ema", 3, {"decay_max": 0.8})
    assert layer(torch.randn(2, 5, 3)).shape == (2, 5, 3)
    cfg = config_from_dict({"model": {"name": "userfam_a:ema", "layer": {"decay_max": "0.8"}}})
    assert cfg.model.layer == {"decay_max": 0.8}


@pytest.mark.parametrize(("name", "needle"), [
    ("userfam_missing:ema", "cannot import module 'userfam_missing'"),
    ("userfam_c:other", "registers no family 'other' or 'userfam_c:other'"),
    (":ema", "both parts non-empty"),
])
def test_module_name_errors_are_one_line(isolated, name, needle):
    (isolated / "userfam_c.py").write_text(_module("ema"))
    with pytest.raises(ConfigError, match=needle) as err:
        get_family(name)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^config key 'model\.name': .*" + needle):
        config_from_dict({"model": {"name": name}})


def test_train_with_a_family_from_the_users_module(isolated, capsys):
    """``ptdssm train --model module:name`` (a tiny associative-recall run, as test_toy_family's)."""
    (isolated / "userfam_train.py").write_text(_module("ema"))
    out = isolated / "run"
    rc = main(["train", "--task", "associative-recall", "--model", "userfam_train:ema", "--out", str(out),
               "--epochs", "1", "--no-progress", "--json", "--set", "model.n_layers=1", "--set", "model.d_model=8",
               "--set", "data.seq_len=24", "--set", "data.options.n_train=64", "--set", "data.options.n_val=16",
               "--set", "data.options.n_test=16", "--set", "data.batch_size=16",
               "--set", "model.layer.decay_max=0.8"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["model"] == "userfam_train:ema" and res["steps"] == 4
    saved = (out / "config.yaml").read_text()
    assert "userfam_train:ema" in saved and "decay_max: 0.8" in saved
    # a bad value of the user's layer, and a module that is not there: exit 2, one line, before any data is read
    assert main(["train", "--task", "associative-recall", "--model", "userfam_train:ema",
                 "--set", "model.layer.decay_max=2"]) == 2
    err = capsys.readouterr().err
    assert "model.layer" in err and "decay_max" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--task", "associative-recall", "--model", "userfam_nowhere:ema"]) == 2
    err = capsys.readouterr().err
    assert "userfam_nowhere" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ entry points

def _entry_points(monkeypatch, *eps):
    def fake(**kw):
        assert kw == {"group": "ptdssm.families"}
        return [importlib.metadata.EntryPoint(name=n, value=v, group="ptdssm.families") for n, v in eps]
    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.setattr(registry, "_loaded", False)


def test_entry_points_register_families_on_first_lookup(isolated, monkeypatch):
    (isolated / "userfam_ep.py").write_text(_module("ema-ep")
                                            + "\n\ndef more():\n    register_family('ema-ep2', EMA)\n")
    _entry_points(monkeypatch, ("mod", "userfam_ep"), ("fn", "userfam_ep:more"))
    assert {"ema-ep", "ema-ep2"} <= set(family_names())
    assert get_family("ema-ep2").layer is get_family("ema-ep").layer


def test_a_failing_entry_point_is_named_in_one_line(isolated, monkeypatch):
    _entry_points(monkeypatch, ("broken", "userfam_absent"))
    with pytest.raises(ConfigError) as err:
        get_family("s4d")
    msg = str(err.value)
    assert "family plug-in entry point 'broken' = 'userfam_absent' (group 'ptdssm.families')" in msg
    assert "ModuleNotFoundError" in msg and "\n" not in msg
    monkeypatch.setattr(registry, "_loaded", True)  # loaded once: later lookups do not retry
