"""Model names -> SSM layers, and ``build_model(ModelConfig, TaskInfo) -> SequenceModel``.

| name | layer | init |
|---|---|---|
| ``s4`` | ``S4`` (DPLR) | layer default (s4-legs) |
| ``s4d`` | ``S4D`` | ``s4d-legs`` |
| ``s4-ptd`` | ``S4D`` | ``ptd`` |
| ``s5`` | ``S5`` | ``s5-legs`` |
| ``s5-ptd`` | ``S5`` | ``ptd`` |

``model.init`` overrides the init. Layer options left ``null`` in the config are not passed, so the layer's defaults
apply; an option the chosen layer does not take (e.g. ``blocks`` for S4D) is an error naming the config key.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..data.base import TaskInfo
from .sequence import SequenceModel

__all__ = ["MODEL_LAYERS", "build_model", "make_ssm_layer", "ssm_layer_kwargs"]

#: model name -> (layer class name exported by ``ptdssm``, default init or None for the layer's default)
MODEL_LAYERS: dict[str, tuple[str, str | None]] = {
    "s4": ("S4", None),
    "s4d": ("S4D", "s4d-legs"),
    "s4-ptd": ("S4D", "ptd"),
    "s5": ("S5", "s5-legs"),
    "s5-ptd": ("S5", "ptd"),
}

# config key -> layer keyword (only passed when not None)
_OPTIONAL = ("blocks", "bidirectional", "dt_min", "dt_max", "disc", "stability", "conj_sym", "C_init")


def _resolve_layer(class_name: str) -> type[nn.Module]:
    """The layer class ``ptdssm.layers.<class_name>``."""
    try:
        from .. import layers
    except ImportError as exc:  # pragma: no cover - only while the layers are missing
        raise ValueError(f"the SSM layers are not available in this install ({exc})") from None
    cls = getattr(layers, class_name, None)
    if cls is None:
        raise ValueError(f"the SSM layer {class_name} is not available in this install of ptdssm")
    return cls


def ssm_layer_kwargs(cfg: Any) -> tuple[str, dict[str, Any]]:
    """``(layer class name, constructor kwargs)`` for a :class:`ptdssm.config.ModelConfig` (without ``d_model``)."""
    if cfg.name not in MODEL_LAYERS:
        raise ValueError(f"unknown model {cfg.name!r}; expected one of: {', '.join(MODEL_LAYERS)}")
    class_name, default_init = MODEL_LAYERS[cfg.name]
    kwargs: dict[str, Any] = {"d_state": cfg.d_state}
    init = cfg.init or default_init
    if init is not None:
        kwargs["init"] = init
    for key in _OPTIONAL:
        value = getattr(cfg, key)
        if value is not None:
            kwargs[key] = value
    if key_clash := set(kwargs) & set(cfg.layer_kwargs):
        raise ValueError(f"config key 'model.layer_kwargs' repeats {sorted(key_clash)}: set them in 'model' directly")
    kwargs.update(cfg.layer_kwargs)
    return class_name, kwargs


def make_ssm_layer(cfg: Any) -> nn.Module:
    """One SSM layer ``(B, L, H) -> (B, L, H)`` as configured by ``cfg`` (a ``ModelConfig``)."""
    class_name, kwargs = ssm_layer_kwargs(cfg)
    cls = _resolve_layer(class_name)
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                where = f"model.layer_kwargs.{key}" if key in cfg.layer_kwargs else f"model.{key}"
                raise ValueError(f"config key '{where}' is not an option of {class_name} (model {cfg.name!r})")
    try:
        return cls(cfg.d_model, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot build {class_name} for model {cfg.name!r}: {exc}") from None


def build_model(cfg: Any, info: TaskInfo) -> SequenceModel:
    """A :class:`SequenceModel` for a ``ModelConfig`` and a task's :class:`TaskInfo`."""
    vocab_size, d_input = info.vocab_size, info.d_input
    if cfg.encoder == "linear" and vocab_size is not None:
        raise ValueError(f"config key 'model.encoder': task {info.name!r} has token inputs; use embedding or auto")
    if cfg.encoder == "embedding" and d_input is not None:
        raise ValueError(f"config key 'model.encoder': task {info.name!r} has continuous inputs; use linear or auto")
    layers = [make_ssm_layer(cfg) for _ in range(cfg.n_layers)]
    return SequenceModel(
        layers, cfg.d_model, info.n_classes, vocab_size=vocab_size, d_input=d_input, norm=cfg.norm,
        prenorm=cfg.prenorm, activation=cfg.activation, dropout=cfg.dropout, pool=cfg.pool,
        bn_momentum=cfg.bn_momentum, is_pair=info.is_pair, retrieval_hidden=cfg.retrieval_hidden,
        residual=cfg.residual,
    )
