"""Configs: validation errors name the key, model.layer against the registry, deprecated flat keys, overlays,
overrides, packaged recipes (and their equality with the pre-overlay recipes), and the CLI's one-line errors."""

import inspect
import pickle
import re
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

from ptdssm.cli import main
from ptdssm.config import (
    Config,
    apply_overrides,
    available_configs,
    config_from_dict,
    config_to_dict,
    default_config_path,
    find_config,
    load_config,
    load_recipe,
    parse_override,
)
from ptdssm.data import TaskInfo, register_task
from ptdssm.errors import ConfigError
from ptdssm.layers import S4D, family_names

LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
MODELS = ("s4-ptd", "s5-ptd", "s4", "s4d", "s5")


def test_defaults_round_trip():
    cfg = Config().validate()
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"model": {"d_modle": 3}}, "model.d_modle"),
        ({"optimizer": {}}, "'optimizer'"),
        ({"model": {"d_model": "wide"}}, "model.d_model"),
        ({"model": {"norm": "group"}}, "model.norm"),
        ({"optim": {"lr": -1}}, "optim.lr"),
        ({"optim": {"betas": [0.9]}}, "optim.betas"),
        ({"model": {"dropout": 1.5}}, "model.dropout"),
        ({"model": {"name": "hyena-xl"}}, "model.name"),
        ({"train": {"precision": "fp8"}}, "train.precision"),
        ({"model": {"layer": {"dt_min": 0.5, "dt_max": 0.1}}}, "model.layer' of model 's5-ptd' (S5, d_model=64): dt"),
        ({"model": {"layer": {"d_state": "wide"}}}, "model.layer.d_state"),
        ({"model": {"layer": {"d_state": 0}}}, "model.layer' of model 's5-ptd' (S5, d_model=64): d_state"),
        ({"model": {"name": "s4d", "d_model": 6, "layer": {"n_ssm": 4}}}, "model 's4d' (S4D, d_model=6): n_ssm"),
        ({"model": {"layer": [1, 2]}}, "model.layer"),
        ({"train": {"checkpoint_every": 0}}, "train.checkpoint_every"),
    ],
)
def test_bad_configs_name_the_key(data, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")) as err:
        config_from_dict(data)
    assert "\n" not in str(err.value)


def test_yaml_1e_notation_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  name: s4d\noptim:\n  lr: 1e-3\n")
    cfg = load_config(p, ["optim.lr=3e-3", "model.d_model=32", "data.options.foo=[1, 2]", "train.progress=false"])
    assert cfg.optim.lr == pytest.approx(3e-3) and cfg.model.d_model == 32
    assert cfg.data.options == {"foo": [1, 2]} and cfg.train.progress is False
    assert parse_override("model.init=null") == ("model.init", None)
    with pytest.raises(ValueError, match=r"model\.widht"):
        apply_overrides(cfg, ["model.widht=3"])
    with pytest.raises(ValueError, match="key=value"):
        parse_override("model.d_model")
    with pytest.raises(ValueError, match=r"c\.yaml"):
        p.write_text("model:\n  color: red\n")
        load_config(p)


def test_packaged_configs_complete_and_valid():
    configs = available_configs()
    for task in LRA_TASKS:
        for model in MODELS:
            cfg = load_config(find_config(task, model))
            assert cfg.model.name == model and cfg.data.task == task
    for task in ("fashion-mnist", "mnist", "digits"):
        for model in MODELS:
            assert load_config(find_config(task, model)).data.task == task
    assert len(configs) >= 45
    with pytest.raises(ValueError, match="no packaged config"):
        find_config("cifar100", "s4d")


def test_recipe_values_match_the_paper():
    s5 = load_config(find_config("listops", "s5-ptd"))
    assert (s5.model.n_layers, s5.model.d_model, s5.model.layer["d_state"], s5.model.layer["blocks"]) == (8, 128, 16, 8)
    assert (s5.optim.lr, s5.optim.ssm_lr, s5.optim.weight_decay, s5.train.epochs) == (3e-3, 1e-3, 0.05, 35)
    assert s5.model.activation == "half-glu2" and s5.optim.global_lr_wd == ["B"]
    s4 = load_config(find_config("image", "s4-ptd"))
    assert (s4.model.norm, s4.model.prenorm, s4.data.batch_size, s4.train.epochs) == ("layer", False, 128, 2000)
    px = load_config(find_config("pathx", "s5"))
    assert px.model.layer["dt_min"] == 1e-4 and px.model.layer["stability"] == "reflect" and px.model.name == "s5"


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  d_model: -4\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "model.d_model" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--task", "digits", "--model", "s4d", "--set", "optim.lrr=1"]) == 2
    assert "optim.lrr" in capsys.readouterr().err
    assert main(["train", "--task", "nope", "--model", "s4d"]) == 2
    assert "no packaged config" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["train", "--list"]) == 0
    assert "listops-s5-ptd" in capsys.readouterr().out


def test_layer_values_fail_at_load_time_before_any_data_is_read(capsys, monkeypatch):
    """The layer constructor's own checks (config/layer.py knows no option's range) run when the config is loaded:
    ``--set model.layer.d_state=0`` exits 2 with one line naming the key, and the task's data is never read."""
    from ptdssm.data import available_tasks
    from ptdssm.data import registry as data_registry

    available_tasks()  # the built-in tasks, loaded before the table is copied
    monkeypatch.setattr(data_registry, "_TASKS", dict(data_registry._TASKS))
    info = TaskInfo("never-read", n_classes=2, seq_len=8, d_input=1)

    def build(cfg):
        raise AssertionError("the data was read")
    register_task("never-read", info=lambda cfg: info, build=build)
    for model, key, value in (("s4d", "d_state", 0), ("s5", "blocks", 3), ("s4-ptd", "dt_min", -1)):
        rc = main(["train", "--task", "never-read", "--model", model, "--set", f"model.layer.{key}={value}",
                   "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and "model.layer" in err and key in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------------------- model.layer


def test_layer_options_are_checked_against_the_layer_constructor():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"model": {"name": "s4d", "layer": {"blocks": 2}}})
    msg = str(err.value)
    assert "'model.layer.blocks'" in msg and "S4D" in msg and "\n" not in msg
    valid = msg.split("valid: ")[1].split(", ")
    assert set(valid) == set(inspect.signature(S4D.__init__).parameters) - {"self", "d_model"}
    cfg = config_from_dict({"model": {"name": "s5", "layer": {"blocks": 2, "dt_min": "1e-4", "conj_sym": None}}})
    assert cfg.model.layer == {"blocks": 2, "dt_min": 1e-4}  # coerced; null = the layer's default (dropped)
    assert cfg.model.layer_options() == {"init": "s5-legs", "blocks": 2, "dt_min": 1e-4}
    assert cfg.model.layer_options(defaults=True)["d_state"] == inspect.signature(S4D).parameters["d_state"].default


def test_model_names_come_from_the_registry():
    from ptdssm.config import MODEL_NAMES  # the old name still imports

    assert MODEL_NAMES == tuple(family_names()) and {"s4", "s4d", "s4-ptd", "s5", "s5-ptd"} <= set(MODEL_NAMES)
    with pytest.raises(ConfigError, match=r"model\.name.*hyena-xl.*" + ", ".join(map(re.escape, family_names()))):
        config_from_dict({"model": {"name": "hyena-xl"}})


def test_checkpoint_every():
    assert Config().train.checkpoint_every is None
    assert config_from_dict({"train": {"checkpoint_every": 25}}).train.checkpoint_every == 25


# ---------------------------------------------------------------------------------------- deprecated flat keys

def _warned_keys(record):
    return sorted(re.search(r"'model\.(\w+)'", str(w.message)).group(1) for w in record
                  if issubclass(w.category, DeprecationWarning))


def test_flat_keys_load_with_one_warning_per_key():
    old = {"model": {"name": "s5-ptd", "d_state": 16, "blocks": 8, "init": None, "dt_min": "1e-3",
                     "layer_kwargs": {"freeze_A": True}}}
    with pytest.warns(DeprecationWarning) as record:
        cfg = config_from_dict(old)
    assert _warned_keys(record) == ["blocks", "d_state", "dt_min", "init", "layer_kwargs"]
    new = {"model": {"name": "s5-ptd", "layer": {"d_state": 16, "blocks": 8, "dt_min": 1e-3, "freeze_A": True}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new form does not warn
        assert cfg == config_from_dict(new)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match=r"model\.d_state.*model\.layer\.d_state"):
        config_from_dict({"model": {"d_state": 8, "layer": {"d_state": 16}}})


def test_flat_overrides_and_attributes_still_work():
    cfg = load_config(find_config("listops", "s5-ptd"))
    with pytest.warns(DeprecationWarning, match=r"model\.d_state"):
        flat = apply_overrides(cfg, ["model.d_state=32"])
    assert flat.model.layer["d_state"] == 32 and flat == apply_overrides(cfg, ["model.layer.d_state=32"])
    with pytest.warns(DeprecationWarning, match=r"model\.layer_kwargs"):
        assert apply_overrides(cfg, ["model.layer_kwargs.freeze_A=true"]).model.layer["freeze_A"] is True
    assert "blocks" not in apply_overrides(cfg, ["model.layer.blocks=null"]).model.layer  # null unsets
    with pytest.warns(DeprecationWarning, match=r"model\.d_state"):
        assert cfg.model.d_state == 16  # old attribute reads: what the layer receives
    with pytest.warns(DeprecationWarning, match=r"model\.init"):
        assert cfg.model.init == "ptd"
    with pytest.raises(ConfigError, match=r"model\.layer\.blocks.*S4D"):  # S5's J is no S4D option
        apply_overrides(cfg, ["model.name=s4d"])


# ---------------------------------------------------------------------------------------------- recipes

def test_every_packaged_config_round_trips():
    for path in [*available_configs().values(), default_config_path()]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # packaged configs are in the new form
            cfg = load_config(path)
        assert config_from_dict(config_to_dict(cfg)) == cfg
        assert config_from_dict(yaml.safe_load(yaml.safe_dump(config_to_dict(cfg)))) == cfg
        assert pickle.loads(pickle.dumps(cfg)) == cfg  # DDP workers and checkpoints


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_overlay_chain_deep_merges(tmp_path):
    _write(tmp_path / "a.yaml", "model:\n  name: s4d\n  d_model: 32\n  layer: {d_state: 16, dt_min: 0.01}\n"
                                "optim:\n  lr: 0.002\n  betas: [0.8, 0.9]\ndata:\n  options: {n_train: 5, x: 1}\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\nmodel:\n  layer: {d_state: 8, dt_min: null, bidirectional: true}\n"
                                "data:\n  options: {x: 2}\n")
    c = _write(tmp_path / "sub" / "c.yaml", "base: ../b.yaml\noptim:\n  betas: [0.7, 0.8]\n")
    cfg = load_config(c)
    expected = config_from_dict({
        "model": {"name": "s4d", "d_model": 32, "layer": {"d_state": 8, "bidirectional": True}},
        "optim": {"lr": 0.002, "betas": [0.7, 0.8]}, "data": {"options": {"n_train": 5, "x": 2}}})
    assert cfg == expected


def test_overlay_errors_are_one_line(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        load_config(tmp_path / "a.yaml")
    _write(tmp_path / "self.yaml", "base: ./self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "self.yaml")
    _write(tmp_path / "m.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"m\.yaml: config key 'base': no config 'nowhere\.yaml'"):
        load_config(tmp_path / "m.yaml")
    _write(tmp_path / "n.yaml", "base: [1]\n")
    with pytest.raises(ConfigError, match="base"):
        load_config(tmp_path / "n.yaml")
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")


def test_packaged_recipes_as_bases(tmp_path):
    paper = load_config(find_config("listops", "s4-ptd"))
    for ref in ("listops-s4-ptd", "lra/listops-s4-ptd.yaml"):
        mine = load_config(_write(tmp_path / "mine.yaml", f"base: {ref}\noptim: {{lr: 0.5}}\n"))
        assert mine == apply_overrides(paper, {"optim.lr": 0.5})


def test_baseline_recipes_are_overlays_of_the_paper_recipes():
    configs = available_configs()
    for name, path in configs.items():
        m = re.fullmatch(r"(.+)-(s4|s4d|s5)", name)
        if m is None or f"{m.group(1)}-{m.group(2)[:2]}-ptd" not in configs:
            continue
        base = f"{m.group(1)}-{m.group(2)[:2]}-ptd"
        assert yaml.safe_load(path.read_text())["base"] == f"{base}.yaml", name
        a, b = config_to_dict(load_config(path)), config_to_dict(load_config(configs[base]))
        assert a["model"].pop("name") == m.group(2) and b["model"].pop("name") == base[len(m.group(1)) + 1:]
        if m.group(2) == "s4" and b["model"]["layer"].get("disc") == "zoh":  # DPLR S4 is bilinear
            assert a["model"]["layer"].pop("disc") == "bilinear" and b["model"]["layer"].pop("disc") == "zoh"
        assert a == b, name


# The pre-overlay recipes (flat model keys), verbatim: read through the deprecated path they resolve to the same
# config as the new overlay files.
OLD_RECIPES = {
    ("image", "s4"): """
model: {name: s4, n_layers: 6, d_model: 128, d_state: 64, bidirectional: true, norm: layer, prenorm: false,
        activation: glu, dropout: 0.1, pool: mean, dt_min: 0.001, dt_max: 0.1, disc: bilinear}
data: {task: image, batch_size: 128}
optim: {lr: 0.01, ssm_lr: 0.001, weight_decay: 0.01, warmup_epochs: 1, schedule: cosine}
train: {epochs: 2000}
""",
    ("listops", "s5-ptd"): """
model: {name: s5-ptd, n_layers: 8, d_model: 128, d_state: 16, blocks: 8, bidirectional: true, norm: batch,
        prenorm: true, activation: half-glu2, dropout: 0.0, pool: mean, dt_min: 0.001, dt_max: 0.1, disc: zoh,
        C_init: lecun_normal}
data: {task: listops, batch_size: 50}
optim: {lr: 0.003, ssm_lr: 0.001, weight_decay: 0.05, warmup_epochs: 1, schedule: cosine, global_lr_wd: [B]}
train: {epochs: 35}
""",
    ("fashion-mnist-cpu", None): """
model: {name: s4d, n_layers: 4, d_model: 64, d_state: 64, norm: layer, prenorm: true, residual: false,
        activation: gelu, dropout: 0.1, pool: mean, dt_min: 0.001, dt_max: 0.1, disc: zoh,
        layer_kwargs: {freeze_A: true, freeze_B: true, freeze_dt: true}}
data: {task: fashion-mnist, seq_len: 1024, train_subset: 3600, val_subset: 500, test_subset: 500, batch_size: 64}
optim: {lr: 0.01, ssm_lr: 0.001, weight_decay: 0.05, warmup_epochs: 0.5, schedule: cosine}
train: {epochs: 10}
""",
}


@pytest.mark.parametrize("key", list(OLD_RECIPES), ids=lambda k: "-".join(filter(None, k)))
def test_old_flat_recipes_resolve_like_the_new_files(tmp_path, key):
    with pytest.warns(DeprecationWarning):
        old = load_config(_write(tmp_path / "old.yaml", OLD_RECIPES[key]))
    name = key[0] if key[1] is None else f"{key[0]}-{key[1]}"
    assert old == load_config(available_configs()[name])


PRE_OVERLAY_COMMIT = "b1ea1a0b8d09d2f440316e524ae35e276149c189"  # the last commit with flat-key recipes
#: Deliberate recipe changes made after the overlay migration (recipe -> overrides applied to the old file).
CHANGED_SINCE_OVERLAY = {
    "fashion-mnist-cpu": ["train.epochs=10"],  # issue 12: past S5's plateau (docs/REPRODUCING.md section 4)
}


def test_every_recipe_resolves_like_its_pre_overlay_version(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    try:
        listing = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", PRE_OVERLAY_COMMIT,
                                  "src/ptdssm/configs"], capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history with the pre-overlay recipes (shallow clone or no git)")
    configs = available_configs()
    assert len(listing) == 77
    for path in listing:
        text = subprocess.run(["git", "-C", str(repo), "show", f"{PRE_OVERLAY_COMMIT}:{path}"], capture_output=True,
                              text=True, check=True).stdout
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = load_config(_write(tmp_path / "old.yaml", text), CHANGED_SINCE_OVERLAY.get(Path(path).stem, []))
        assert old == load_config(configs[Path(path).stem]), path


# ---------------------------------------------------------------------------------------------- find_config

def test_find_config_falls_back_to_the_generic_recipe():
    info = TaskInfo("config-test-toy", n_classes=2, seq_len=8, d_input=1)
    register_task("config-test-toy", info=lambda cfg: info, build=lambda cfg: None, replace=True)
    generic = load_config(default_config_path())
    for task, model in (("config-test-toy", "s5"), ("some_module:my_task", "s4-ptd")):
        assert find_config(task, model) == default_config_path()
        cfg = load_recipe(task, model, ["optim.lr=0.01"])
        assert (cfg.data.task, cfg.model.name, cfg.optim.lr) == (task, model, 0.01)
        cfg = load_recipe(task, model)
        assert cfg == apply_overrides(generic, {"data.task": task, "model.name": model})
    g = generic
    assert (g.model.n_layers, g.model.d_model, g.data.batch_size, g.train.epochs, g.model.layer) == (4, 64, 32, 10, {})
    assert find_config("listops", "s4d") == available_configs()["listops-s4d"]
    with pytest.raises(ConfigError, match="no packaged config.*'cifar100'"):
        find_config("cifar100", "s4d")
    names = re.escape(", ".join(family_names()))
    with pytest.raises(ConfigError, match="unknown model 'hyena-xl'; expected one of: " + names):
        find_config("listops", "hyena-xl")
