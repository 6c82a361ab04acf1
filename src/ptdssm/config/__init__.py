"""Run configurations: YAML files validated into dataclasses, with dotted ``key=value`` overrides.

A config has four sections, each a dataclass::

    model:  ModelConfig   # which family (model.name), its options (model.layer), width, depth, block layout
    data:   DataConfig    # task name, data folder, sequence layout, split, batch size
    optim:  OptimConfig   # AdamW, SSM learning rate, warmup + cosine schedule, clipping
    train:  TrainConfig   # epochs, seed, precision, logging, checkpoints, run directory

Every key is checked: an unknown key or a value of the wrong type or range raises
:class:`ptdssm.errors.ConfigError` (a ``ValueError``) naming the dotted key (``model.d_model``,
``model.layer.d_state``), which the CLI prints as one line. ``model.layer`` is checked against the constructor of
the family's layer class (:mod:`ptdssm.config.layer`). Numbers written as ``1e-3`` (which YAML 1.1 reads as a
string) are accepted. A file may name a ``base`` file and give only what differs (:mod:`ptdssm.config.files`). The
paper's recipes ship as package data under ``ptdssm/configs/`` and are found by :func:`find_config` from a task and
a model name.
"""

from __future__ import annotations

from typing import Any

from .files import (
    apply_overrides,
    available_configs,
    deep_merge,
    default_config_path,
    find_config,
    load_config,
    load_recipe,
    parse_override,
    read_config_dict,
)
from .layer import DEPRECATED_MODEL_KEYS, migrate_model_dict
from .schema import (
    Config,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    replace,
)

__all__ = [
    "DEPRECATED_MODEL_KEYS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "available_configs",
    "config_from_dict",
    "config_to_dict",
    "deep_merge",
    "default_config_path",
    "find_config",
    "load_recipe",
    "load_config",
    "migrate_model_dict",
    "parse_override",
    "read_config_dict",
    "replace",
]


def __getattr__(name: str) -> Any:
    # MODEL_NAMES (a fixed tuple before the family registry): the registered family names, for old imports.
    if name == "MODEL_NAMES":
        from ..layers.registry import family_names

        return tuple(family_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
