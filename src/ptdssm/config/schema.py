"""The config sections as dataclasses, and their conversion from and to nested dicts.

Every key is checked: an unknown key or a value of the wrong type or range raises
:class:`ptdssm.errors.ConfigError` (a ``ValueError``) naming the dotted key (``model.d_model``).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .._checks import parse_device
from ..errors import ConfigError
from ._types import check_min, check_range, coerce
from .layer import (
    DEPRECATED_MODEL_KEYS,
    check_layer_options,
    check_layer_values,
    check_model_name,
    deprecation,
    layer_options,
    migrate_model_dict,
)

__all__ = ["Config", "DataConfig", "ModelConfig", "OptimConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "replace"]


@dataclass
class ModelConfig:
    """The network: encoder -> ``n_layers`` residual blocks -> head.

    ``name`` is a family of :mod:`ptdssm.layers.registry` (``ptdssm.layers.family_names()``: ``s4``, ``s4d``,
    ``s4-ptd``, ``s5``, ``s5-ptd``, ...): its layer class, default init and block kind. ``layer`` holds the family's
    options, keyword arguments of the layer's constructor (``{d_state: 64, blocks: 2, init: s4d-lin,
    dt_min: 1e-3}``), checked against its signature; ``null`` or absent options take the family's or the layer's
    default. The other keys lay out the blocks (norm, activation, dropout) and the pooled head (``pool``).
    """

    name: str = "s5-ptd"
    n_layers: int = 4
    d_model: int = 64
    norm: Literal["batch", "layer", "rms", "none"] = "batch"
    prenorm: bool = True
    residual: bool = True  # false: x = mix(ssm(norm(x))) (the paper's robustness model has no residual)
    activation: Literal["gelu", "glu", "half-glu1", "half-glu2", "identity"] = "half-glu2"
    dropout: float = 0.0
    pool: Literal["mean", "last"] = "mean"
    encoder: Literal["auto", "embedding", "linear"] = "auto"
    bn_momentum: float = 0.1  # PyTorch convention (Flax momentum 0.9 == PyTorch 0.1)
    retrieval_hidden: int | None = None  # hidden width of the retrieval head (default d_model)
    layer: dict[str, Any] = field(default_factory=dict)  # the family's options (layer constructor keywords)

    def validate(self) -> None:
        check_model_name(self.name)
        check_min("model.n_layers", self.n_layers, 1)
        check_min("model.d_model", self.d_model, 1)
        check_range("model.dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_range("model.bn_momentum", self.bn_momentum, 0.0, 1.0)
        if self.retrieval_hidden is not None:
            check_min("model.retrieval_hidden", self.retrieval_hidden, 1)
        self.layer = check_layer_options(self.name, self.layer)
        check_layer_values(self.name, self.d_model, self.layer)

    def layer_options(self, *, defaults: bool = False) -> dict[str, Any]:
        """The keyword arguments the layer receives (family defaults and init, then ``layer``); see
        :func:`ptdssm.config.layer.layer_options` (``defaults=True`` adds the constructor's defaults)."""
        return layer_options(self.name, self.layer, defaults=defaults)

    def __getattr__(self, key: str) -> Any:
        # deprecated flat attributes (cfg.model.d_state): the value the layer receives, with a DeprecationWarning
        if key in DEPRECATED_MODEL_KEYS and key != "layer_kwargs" and "layer" in self.__dict__:
            deprecation(key, stacklevel=3)
            return self.layer_options(defaults=True).get(key)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")


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
            raise ConfigError("config key 'data.task' must name a task")
        check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, high_open=True)
        for key in ("seq_len", "train_subset", "val_subset", "test_subset", "eval_batch_size"):
            v = getattr(self, key)
            if v is not None:
                check_min(f"data.{key}", v, 1)
        check_min("data.batch_size", self.batch_size, 1)
        check_min("data.num_workers", self.num_workers, 0)


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
                raise ConfigError(f"config key 'optim.{key}' must be > 0, got {getattr(self, key)}")
        for key in ("weight_decay", "warmup_epochs", "grad_clip"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key 'optim.{key}' must be >= 0, got {getattr(self, key)}")
        check_range("optim.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"config key 'optim.betas' must be two numbers in [0, 1), got {self.betas}")


@dataclass
class TrainConfig:
    """The training run: length, seed, precision, logging, checkpoints and the run directory.

    ``precision: bf16`` runs forward passes under ``torch.autocast`` (bfloat16). ``device: auto`` picks CUDA when
    present. ``max_steps_per_epoch`` truncates epochs (smoke tests). ``checkpoint_every`` also writes the resumable
    checkpoint every that many optimizer steps (``null``: at the end of each epoch only). ``out`` is the run
    directory (default ``runs/<task>-<model>``).
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
    checkpoint_every: int | None = None

    def validate(self) -> None:
        check_min("train.epochs", self.epochs, 1)
        check_min("train.log_every", self.log_every, 1)
        check_min("train.eval_every", self.eval_every, 1)
        for key in ("max_steps_per_epoch", "checkpoint_every"):
            if getattr(self, key) is not None:
                check_min(f"train.{key}", getattr(self, key), 1)
        parse_device(self.device, "config key 'train.device'")


@dataclass
class Config:
    """A whole run configuration: ``model``, ``data``, ``optim`` and ``train`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> Config:
        """Check every section (raises :class:`ConfigError` naming the key); returns ``self``."""
        for f in fields(self):
            getattr(self, f.name).validate()
        return self


def _section_from_dict(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}.{unknown[0]}'; valid keys in '{prefix}': {', '.join(names)}")
    kwargs = {k: coerce(f"{prefix}.{k}", v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested dicts (missing keys take their defaults).

    Deprecated flat ``model`` keys (``model.d_state`` ...) are moved into ``model.layer`` with a
    ``DeprecationWarning`` (:func:`ptdssm.config.layer.migrate_model_dict`).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(data).__name__}")
    sections = [f.name for f in fields(Config)]
    unknown = [k for k in data if k not in sections]
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; valid sections: {', '.join(sections)}")
    data = {**data, "model": migrate_model_dict(data.get("model"))}
    hints = typing.get_type_hints(Config)
    kwargs = {name: _section_from_dict(hints[name], data.get(name), name) for name in sections}
    return Config(**kwargs).validate()


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain nested dicts (what the run directory's ``config.yaml`` holds)."""
    return copy.deepcopy(asdict(cfg))


def replace(cfg: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for one level (convenience for tests)."""
    return dataclasses.replace(cfg, **sections)
