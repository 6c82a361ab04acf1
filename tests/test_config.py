"""Configs: validation errors name the key, overrides, packaged recipes, and the CLI's one-line errors."""

import pytest

from ptdssm.cli import main
from ptdssm.config import (
    Config,
    apply_overrides,
    available_configs,
    config_from_dict,
    config_to_dict,
    find_config,
    load_config,
    parse_override,
)

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
        ({"model": {"name": "mamba"}}, "model.name"),
        ({"train": {"precision": "fp8"}}, "train.precision"),
        ({"model": {"dt_min": 0.5, "dt_max": 0.1}}, "model.dt_min"),
    ],
)
def test_bad_configs_name_the_key(data, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        config_from_dict(data)


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
    assert (s5.model.n_layers, s5.model.d_model, s5.model.d_state, s5.model.blocks) == (8, 128, 16, 8)
    assert (s5.optim.lr, s5.optim.ssm_lr, s5.optim.weight_decay, s5.train.epochs) == (3e-3, 1e-3, 0.05, 35)
    assert s5.model.activation == "half-glu2" and s5.optim.global_lr_wd == ["B"]
    s4 = load_config(find_config("image", "s4-ptd"))
    assert (s4.model.norm, s4.model.prenorm, s4.data.batch_size, s4.train.epochs) == ("layer", False, 128, 2000)
    px = load_config(find_config("pathx", "s5"))
    assert px.model.dt_min == 1e-4 and px.model.stability == "reflect" and px.model.name == "s5"


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
