"""``model.layer``: the family options of a model, checked against its layer's constructor through the registry.

A model is ``model.name`` (a family of :mod:`ptdssm.layers.registry`) plus ``model.layer``, a mapping of keyword
arguments of that family's layer class (``{d_state: 64, blocks: 2, init: ptd, dt_min: 1e-3}``). Keys are checked
against the constructor's signature when the config is validated; values are coerced to the constructor's
annotations (so ``1e-3``, which YAML 1.1 reads as a string, becomes a float). ``null`` means "not set": the family's
default (``init``) or the constructor's default applies.

Before ``model.layer`` existed the LTI options were flat keys of ``model`` (:data:`DEPRECATED_MODEL_KEYS`). They
still load: :func:`migrate_model_dict` moves them into ``model.layer`` with one ``DeprecationWarning`` per key
(``model.layer_kwargs`` is merged entry by entry).
"""

from __future__ import annotations

import inspect
import typing
import warnings
from typing import Any

from ..errors import ConfigError
from ._types import check_min, coerce

__all__ = ["DEPRECATED_MODEL_KEYS", "check_layer_options", "check_model_name", "layer_options",
           "migrate_model_dict"]

#: Flat ``model.<key>`` entries of the old schema that now live in ``model.layer``.
DEPRECATED_MODEL_KEYS = ("init", "d_state", "blocks", "bidirectional", "dt_min", "dt_max", "disc", "stability",
                         "conj_sym", "C_init", "layer_kwargs")


def deprecation(key: str, stacklevel: int = 4) -> None:
    """Warn that the flat key ``model.<key>`` is deprecated (one ``DeprecationWarning``, attributed to the frame
    ``stacklevel`` levels up: the caller of the public function that read the key)."""
    new = "its entries in 'model.layer'" if key == "layer_kwargs" else f"'model.layer.{key}'"
    warnings.warn(f"config key 'model.{key}' is deprecated; write {new} instead", DeprecationWarning,
                  stacklevel=stacklevel)


def migrate_model_dict(model: Any) -> Any:
    """The ``model`` section with the deprecated flat keys moved into its ``layer`` mapping.

    ``null`` flat values are dropped (they meant "the layer's default", as ``null`` in ``model.layer`` does). A key
    given both flat and in ``model.layer`` raises :class:`ConfigError`. Other values pass through unchanged.
    """
    if not isinstance(model, dict):
        return model
    flat = [k for k in DEPRECATED_MODEL_KEYS if k in model]
    if not flat:
        return model
    out = dict(model)
    layer = out.get("layer")
    layer = {} if layer is None else layer
    if not isinstance(layer, dict):
        raise ConfigError(f"config key 'model.layer' must be a mapping of layer options, got {layer!r}")
    layer = dict(layer)
    for key in flat:
        deprecation(key)
        value = out.pop(key)
        if key == "layer_kwargs":
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"config key 'model.layer_kwargs' must be a mapping, got {value!r}")
            items = list((value or {}).items())
        else:
            items = [(key, value)]
        for k, v in items:
            if k in layer:
                raise ConfigError(f"config key 'model.{key}' repeats 'model.layer.{k}'; keep only model.layer.{k}")
            if v is not None:
                layer[k] = v
    out["layer"] = layer
    return out


def check_model_name(name: Any) -> None:
    """``name`` is a registered family, or a :class:`ConfigError` naming ``model.name`` and listing the names."""
    from ..layers.registry import family_names

    names = family_names()
    if name not in names:
        raise ConfigError(f"config key 'model.name': invalid value {name!r}; expected one of: {', '.join(names)}")


def _constructor_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: values pass through unconverted
        return {}


def _check_ranges(options: dict[str, Any]) -> None:
    """The bounds every LTI family shares (so a bad value fails at load time, not after data loading)."""
    for key in ("d_state", "blocks"):
        if isinstance(options.get(key), int):
            check_min(f"model.layer.{key}", options[key], 1)
    for key in ("dt_min", "dt_max"):
        v = options.get(key)
        if isinstance(v, (int, float)) and not v > 0:
            raise ConfigError(f"config key 'model.layer.{key}' must be > 0, got {v}")
    lo, hi = options.get("dt_min"), options.get("dt_max")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        raise ConfigError(f"config key 'model.layer.dt_min' ({lo}) must be <= model.layer.dt_max ({hi})")


def check_layer_options(name: str, options: Any) -> dict[str, Any]:
    """``model.layer`` checked for the family ``name``: known keys, coerced values, ``null`` entries dropped.

    Raises:
        ConfigError: ``"config key 'model.layer.<k>' is not an option of <Class> (model '<name>'); valid: ..."``,
            or a value of the wrong type or range (naming ``model.layer.<k>``).
    """
    from ..layers.registry import get_family, layer_kwargs_schema

    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"config key 'model.layer' must be a mapping of layer options, got {options!r}")
    family = get_family(name)
    schema = layer_kwargs_schema(family)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD
                     for p in inspect.signature(family.layer.__init__).parameters.values())
    valid = list(schema)
    hints = _constructor_hints(family.layer)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in valid and not open_ended:
            raise ConfigError(f"config key 'model.layer.{key}' is not an option of {family.layer.__name__} "
                              f"(model '{name}'); valid: {', '.join(valid)}")
        if value is None:
            continue
        if key in hints:
            try:
                value = coerce(f"model.layer.{key}", value, hints[key])
            except TypeError:  # an annotation the config cannot check: passed as given
                pass
        out[key] = value
    _check_ranges(out)
    return out


def layer_options(name: str, options: dict[str, Any], *, defaults: bool = False) -> dict[str, Any]:
    """The keyword arguments the family ``name``'s layer receives for ``model.layer = options`` (minus ``d_model``).

    ``family.defaults``, then the family's ``init`` (when the constructor takes one), then ``options``. With
    ``defaults=True`` the constructor's own defaults fill in every other keyword (the complete set of options).
    """
    from ..layers.registry import get_family, layer_kwargs_schema

    family = get_family(name)
    schema = layer_kwargs_schema(family)
    out = dict(family.defaults or {})
    if family.init is not None and "init" in schema:
        out["init"] = family.init
    out.update({k: v for k, v in options.items() if v is not None})
    if defaults:
        for key, p in schema.items():
            if key not in out and p.default is not inspect.Parameter.empty:
                out[key] = p.default
    return out
