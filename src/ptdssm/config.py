"""Run configurations: YAML files validated into dataclasses, with dotted ``key=value`` overrides.

A config has four sections, each a dataclass::

    model:  ModelConfig   # which SSM, width, depth, block layout (norm, activation, pooling)
    data:   DataConfig    # task name, data folder, sequence layout, split, batch size
    optim:  OptimConfig   # AdamW, SSM learning rate, warmup + cosine schedule, clipping
    train:  TrainConfig   # epochs, seed, precision, logging, run directory

Every key is checked: an unknown key or a value of the wrong type or range raises ``ValueError`` naming the dotted
key (``model.d_model``), which the CLI prints as one line. Numbers written as ``1e-3`` (which YAML 1.1 reads as a
string) are accepted. The paper's recipes ship as package data under ``ptdssm/configs/`` and are found by
:func:`find_config` from a task and a model name.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = [
    "MODEL_NAMES",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "available_configs",
    "config_from_dict",
    "config_to_dict",
    "find_config",
    "load_config",
    "parse_override",
]

#: Model names accepted by ``model.name`` (and ``ptdssm train --model``).
MODEL_NAMES = ("s4", "s4d", "s4-ptd", "s5", "s5-ptd")


@dataclass
class ModelConfig:
    """The network: encoder -> ``n_layers`` residual SSM blocks -> pooling -> decoder.

    ``name`` picks the SSM layer and its default init: ``s4`` (DPLR, s4-legs), ``s4d`` (S4D, s4d-legs), ``s4-ptd``
    (S4D with init ``ptd``), ``s5`` (S5, s5-legs), ``s5-ptd`` (S5 with init ``ptd``). ``init`` overrides the init
    (e.g. ``s4d-lin``). Options left ``null`` use the layer's own default.
    """

    name: Literal["s4", "s4d", "s4-ptd", "s5", "s5-ptd"] = "s5-ptd"
    init: str | None = None
    n_layers: int = 4
    d_model: int = 64
    d_state: int = 64
    blocks: int | None = None  # S5's J (diagonal blocks of the state matrix)
    bidirectional: bool = False
    norm: Literal["batch", "layer", "none"] = "batch"
    prenorm: bool = True
    residual: bool = True  # false: x = mix(ssm(norm(x))) (the paper's robustness model has no residual)
    activation: Literal["gelu", "glu", "half-glu1", "half-glu2"] = "half-glu2"
    dropout: float = 0.0
    pool: Literal["mean", "last"] = "mean"
    encoder: Literal["auto", "embedding", "linear"] = "auto"
    dt_min: float | None = None
    dt_max: float | None = None
    disc: Literal["zoh", "bilinear"] | None = None
    stability: str | None = None
    conj_sym: bool | None = None  # S5 only
    C_init: Literal["trunc_normal", "lecun_normal", "complex_normal"] | None = None  # S5 only
    bn_momentum: float = 0.1  # PyTorch convention (Flax momentum 0.9 == PyTorch 0.1)
    retrieval_hidden: int | None = None  # hidden width of the retrieval head (default d_model)
    layer_kwargs: dict[str, Any] = field(default_factory=dict)  # passed through to the layer constructor

    def validate(self) -> None:
        _check_min("model.n_layers", self.n_layers, 1)
        _check_min("model.d_model", self.d_model, 1)
        _check_min("model.d_state", self.d_state, 1)
        if self.blocks is not None:
            _check_min("model.blocks", self.blocks, 1)
        _check_range("model.dropout", self.dropout, 0.0, 1.0, high_open=True)
        _check_range("model.bn_momentum", self.bn_momentum, 0.0, 1.0)
        for key in ("dt_min", "dt_max"):
            v = getattr(self, key)
            if v is not None and not v > 0:
                raise ValueError(f"config key 'model.{key}' must be > 0, got {v}")
        if self.dt_min is not None and self.dt_max is not None and self.dt_min > self.dt_max:
            raise ValueError(f"config key 'model.dt_min' ({self.dt_min}) must be <= model.dt_max ({self.dt_max})")
        if self.retrieval_hidden is not None:
            _check_min("model.retrieval_hidden", self.retrieval_hidden, 1)


@dataclass
class DataConfig:
    """The task and how its data is read and batched.

    ``seq_len`` is the sequence layout for tasks that offer several (image tasks: 784 = row-major 28x28, or 1024 =
    zero-padded to 32x32); ``null`` takes the task's default. ``*_subset`` take a seeded random subset of a split
    (for quick runs). ``batch_size`` is the global batch: under torchrun each of N processes takes ``batch_size/N``.
    ``options`` are task-specific settings passed to the task's reader.
    """

    task: str = "digits"
    data_dir: str | None = None
    seq_len: int | None = None
    permute: bool = False
    normalize: bool = False
    val_fraction: float = 0.1
    split_seed: int = 42
    train_subset: int | None = None
    val_subset: int | None = None
    test_subset: int | None = None
    batch_size: int = 50
    eval_batch_size: int | None = None
    num_workers: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.task:
            raise ValueError("config key 'data.task' must name a task")
        _check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, high_open=True)
        for key in ("seq_len", "train_subset", "val_subset", "test_subset", "eval_batch_size"):
            v = getattr(self, key)
            if v is not None:
                _check_min(f"data.{key}", v, 1)
        _check_min("data.batch_size", self.batch_size, 1)
        _check_min("data.num_workers", self.num_workers, 0)


@dataclass
class OptimConfig:
    """AdamW with the SSM parameter groups, linear warmup then a decay schedule, and gradient clipping.

    SSM parameters (A/Lambda, B, dt) take ``ssm_lr`` and no weight decay (``ptdssm.optim.param_groups``).
    ``global_lr`` names SSM parameters moved to the global learning rate without weight decay (e.g. ``[dt]``);
    ``global_lr_wd`` names those moved to the global learning rate with weight decay (e.g. ``[B]``). A name matches
    a parameter when it equals one of the ``_``-separated tokens of the parameter's last name (``dt`` matches
    ``log_dt``; ``B`` matches ``B_re``). ``grad_clip`` 0 disables clipping.
    """

    lr: float = 1e-3
    ssm_lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_epochs: float = 1.0
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0
    global_lr: list[str] = field(default_factory=list)
    global_lr_wd: list[str] = field(default_factory=list)

    def validate(self) -> None:
        for key in ("lr", "ssm_lr", "eps"):
            if not getattr(self, key) > 0:
                raise ValueError(f"config key 'optim.{key}' must be > 0, got {getattr(self, key)}")
        for key in ("weight_decay", "warmup_epochs", "grad_clip"):
            if getattr(self, key) < 0:
                raise ValueError(f"config key 'optim.{key}' must be >= 0, got {getattr(self, key)}")
        _check_range("optim.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"config key 'optim.betas' must be two numbers in [0, 1), got {self.betas}")


@dataclass
class TrainConfig:
    """The training run: length, seed, precision, logging and the run directory.

    ``precision: bf16`` runs forward passes under ``torch.autocast`` (bfloat16). ``device: auto`` picks CUDA when
    present. ``max_steps_per_epoch`` truncates epochs (smoke tests). ``out`` is the run directory (default
    ``runs/<task>-<model>``).
    """

    epochs: int = 10
    seed: int = 0
    out: str | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = "auto"
    log_every: int = 50
    eval_every: int = 1
    progress: bool = True
    tensorboard: bool = False
    deterministic: bool = True
    max_steps_per_epoch: int | None = None

    def validate(self) -> None:
        _check_min("train.epochs", self.epochs, 1)
        _check_min("train.log_every", self.log_every, 1)
        _check_min("train.eval_every", self.eval_every, 1)
        if self.max_steps_per_epoch is not None:
            _check_min("train.max_steps_per_epoch", self.max_steps_per_epoch, 1)
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"config key 'train.device' must be auto, cpu or cuda[:k], got {self.device!r}")


@dataclass
class Config:
    """A whole run configuration (see the module docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> Config:
        """Check every section (raises ``ValueError`` naming the key); returns ``self``."""
        for f in fields(self):
            getattr(self, f.name).validate()
        return self


# --------------------------------------------------------------------------------------------------------------
# Conversion with type checking


def _check_min(key: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"config key '{key}' must be >= {minimum}, got {value}")


def _check_range(key: str, value: float, low: float, high: float, high_open: bool = False) -> None:
    if not (low <= value <= high) or (high_open and value >= high):
        bound = ")" if high_open else "]"
        raise ValueError(f"config key '{key}' must be in [{low}, {high}{bound}, got {value}")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to the annotation ``tp`` or raise ``ValueError`` naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"config key '{key}': invalid value {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ValueError(
                f"config key '{key}': invalid value {value!r}; expected one of: {', '.join(map(str, choices))}")
        return value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"config key '{key}': expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ValueError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"config key '{key}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ValueError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"config key '{key}': expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            out = float(value)
        else:
            try:
                out = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"config key '{key}': expected a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise ValueError(f"config key '{key}': expected a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"config key '{key}': expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover


def _section_from_dict(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"config key '{prefix}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(f"unknown config key '{prefix}.{unknown[0]}'; valid keys in '{prefix}': {', '.join(names)}")
    kwargs = {k: _coerce(f"{prefix}.{k}", v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested dicts (missing keys take their defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a mapping of sections, got {type(data).__name__}")
    sections = {f.name: f.type for f in fields(Config)}
    unknown = [k for k in data if k not in sections]
    if unknown:
        raise ValueError(f"unknown config key '{unknown[0]}'; valid sections: {', '.join(sections)}")
    hints = typing.get_type_hints(Config)
    kwargs = {name: _section_from_dict(hints[name], data.get(name), name) for name in sections}
    return Config(**kwargs).validate()


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain nested dicts (what the run directory's ``config.yaml`` holds)."""
    return copy.deepcopy(asdict(cfg))


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"optim.lr=3e-3"`` into ``("optim.lr", value)``; the value is read as YAML (``[1, 2]``, ``null``...)."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Return a new config with dotted-key overrides applied and validated.

    Args:
        cfg: the base config.
        overrides: ``{"optim.lr": 3e-3}`` or a list of ``"key=value"`` strings (as given to ``--set``).
    """
    if isinstance(overrides, list):
        overrides = dict(parse_override(o) for o in overrides)
    data = config_to_dict(cfg)
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) < 2 or parts[0] not in data:
            raise ValueError(f"unknown config key '{key}'; keys look like section.name with section one of: "
                             f"{', '.join(data)}")
        node = data[parts[0]]
        for i, p in enumerate(parts[1:-1], start=1):
            if not isinstance(node, dict) or p not in node:
                raise ValueError(f"unknown config key '{'.'.join(parts[: i + 1])}'")
            if not isinstance(node[p], dict):
                raise ValueError(f"config key '{'.'.join(parts[: i + 1])}' is not a mapping")
            node = node[p]
        last = parts[-1]
        in_free_dict = len(parts) > 2  # inside e.g. data.options: any key is allowed
        if not in_free_dict and last not in node:
            valid = ", ".join(node)
            raise ValueError(f"unknown config key '{key}'; valid keys in '{parts[0]}': {valid}")
        node[last] = value
    return config_from_dict(data)


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read a YAML config file, validate it, and apply overrides.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid YAML, unknown key or bad value (the message names the key and the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        cfg = config_from_dict(data or {})
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return apply_overrides(cfg, overrides) if overrides else cfg


def _config_root() -> Path:
    return Path(str(resources.files("ptdssm") / "configs"))


def available_configs() -> dict[str, Path]:
    """Packaged configs by ``"<task>-<model>"`` name (from ``ptdssm/configs/*/*.yaml``)."""
    root = _config_root()
    return {p.stem: p for p in sorted(root.glob("*/*.yaml"))}


def find_config(task: str, model: str) -> Path:
    """The packaged config for ``task`` and ``model`` (e.g. ``fashion-mnist``, ``s5-ptd``)."""
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; expected one of: {', '.join(MODEL_NAMES)}")
    configs = available_configs()
    key = f"{task}-{model}"
    if key not in configs:
        tasks = sorted({name[: -len(model) - 1] for name in configs if name.endswith("-" + model)})
        raise ValueError(f"no packaged config for task {task!r} and model {model!r}; tasks with a {model} config: "
                         f"{', '.join(tasks)} (or pass --config FILE)")
    return configs[key]


def replace(cfg: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for one level (convenience for tests)."""
    return dataclasses.replace(cfg, **sections)
