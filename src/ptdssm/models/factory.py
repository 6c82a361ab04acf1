"""``build_model(ModelConfig, TaskInfo) -> SequenceModel``: the family registry picks the layers and the block.

``model.name`` is a family of :mod:`ptdssm.layers.registry`; each block's mixer is
``build_layer(model.name, model.d_model, model.layer)`` (:func:`~ptdssm.layers.registry.layer_kwargs`: the
family's defaults and init, then the ``model.layer`` options) and the block kind is the family's. The head follows
the task (:attr:`TaskInfo.head`): pooled, last-K, per-position, causal LM, or forecast (every family's generic
forecast path: the lookback window extended by ``horizon`` zero steps and a future-indicator channel, the last-K head
at those steps; :mod:`ptdssm.models.heads`). A SpaceTime family on a forecasting task gets its own model instead,
the closed-loop :class:`~ptdssm.models.spacetime.SpaceTimeForecaster`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..data.base import TaskInfo
from ..errors import ConfigError
from .sequence import SequenceModel

__all__ = ["build_model", "make_layer"]


def make_layer(cfg: Any) -> nn.Module:
    """One mixer ``(B, L, H) -> (B, L, H)`` as configured by ``cfg`` (a :class:`ptdssm.config.ModelConfig`).

    Raises:
        ConfigError: an unknown model or layer option, or options the layer rejects (the message names them).
    """
    from ..layers.registry import build_checked, get_family

    try:
        get_family(cfg.name)
    except ConfigError as exc:
        raise ConfigError(f"config key 'model.name': {exc}") from None
    return build_checked(cfg.name, cfg.d_model, dict(cfg.layer))  # ConfigErrors naming model.layer


def build_model(cfg: Any, info: TaskInfo) -> nn.Module:
    """A :class:`SequenceModel` for a ``ModelConfig`` and a task's :class:`TaskInfo` (its inputs and head); for a
    forecasting task (head ``forecast``) and a SpaceTime family, SpaceTime's own forecaster
    (:class:`~ptdssm.models.spacetime.SpaceTimeForecaster`)."""
    from ..layers.registry import get_family

    vocab_size, d_input = info.vocab_size, info.d_input
    if cfg.encoder == "linear" and vocab_size is not None:
        raise ConfigError(f"config key 'model.encoder': task {info.name!r} has token inputs; use embedding or auto")
    if cfg.encoder == "embedding" and d_input is not None:
        raise ConfigError(f"config key 'model.encoder': task {info.name!r} has continuous inputs; use linear or "
                          f"auto")
    head = getattr(info, "head", "pooled")
    if head == "lm" and vocab_size is None:
        raise ConfigError(f"task {info.name!r}: head 'lm' needs token inputs (vocab_size)")
    from ..layers.spacetime import SpaceTime

    if head == "forecast" and issubclass(get_family(cfg.name).layer, SpaceTime):
        return _spacetime_forecaster(cfg, info)
    layers = [make_layer(cfg) for _ in range(cfg.n_layers)]
    return SequenceModel(
        layers, cfg.d_model, info.n_classes, vocab_size=vocab_size, d_input=d_input, norm=cfg.norm,
        prenorm=cfg.prenorm, activation=cfg.activation, dropout=cfg.dropout, pool=cfg.pool,
        bn_momentum=cfg.bn_momentum, is_pair=info.is_pair, retrieval_hidden=cfg.retrieval_hidden,
        residual=cfg.residual, block=get_family(cfg.name).block, head=head, target_len=info.target_len,
    )


def _spacetime_forecaster(cfg: Any, info: TaskInfo) -> nn.Module:
    """SpaceTime's own forecaster (encoder, closed-loop decoder; :mod:`ptdssm.models.spacetime`) for a forecasting
    task: ``model.d_model``, ``n_layers``, ``dropout`` and the ``model.layer`` options (with ``forecaster``)."""
    from ..layers.registry import layer_kwargs
    from .spacetime import SpaceTimeForecaster

    try:
        return SpaceTimeForecaster(info.d_input, info.n_classes, info.seq_len, info.target_len, d_model=cfg.d_model,
                                   n_layers=cfg.n_layers, dropout=cfg.dropout,
                                   layer=layer_kwargs(cfg.name, dict(cfg.layer)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key 'model.layer' of model {cfg.name!r} (SpaceTime forecaster): "
                          f"{' '.join(str(exc).split())}") from None
