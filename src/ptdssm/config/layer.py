"""``model.layer``: the family options of a model, checked against its layer's constructor through the registry.

A model is ``model.name`` (a family of :mod:`ptdssm.layers.registry`) plus ``model.layer``, a mapping of keyword
arguments of that family's layer class (``{d_state: 64, blocks: 2, init: ptd, dt_min: 1e-3}``). Keys are checked
against the constructor's signature when the config is validated; values are coerced to the constructor's
annotations (so ``1e-3``, which YAML 1.1 reads as a string, becomes a float) and then checked by the constructor
itself, run on the ``meta`` device (:func:`check_layer_values`), so no range is written here. ``null`` means "not
set": the family's default (``init``) or the constructor's default applies.

Before ``model.layer`` existed the LTI options were flat keys of ``model`` (:data:`DEPRECATED_MODEL_KEYS`). They
still load: :func:`migrate_model_dict` moves them into ``model.layer`` with one ``DeprecationWarning`` per key
(``model.layer_kwargs`` is merged entry by entry).
"""

from __future__ import annotations

import contextlib
import contextvars
import typing
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from ._types import coerce

__all__ = ["DEPRECATED_MODEL_KEYS", "check_layer_options", "check_layer_values", "check_model_name", "layer_options",
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
    """``name`` is a registered family (or a ``module:name`` that resolves to one), or a :class:`ConfigError` naming
    ``model.name`` (listing the names, or saying why the plug-in did not load)."""
    from ..layers.registry import get_family

    try:
        get_family(name)
    except ConfigError as exc:
        raise ConfigError(f"config key 'model.name': {exc}") from None


def _constructor_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: values pass through unconverted
        return {}


def check_layer_options(name: str, options: Any) -> dict[str, Any]:
    """``model.layer`` checked for the family ``name``: known keys, coerced values, ``null`` entries dropped.

    Raises:
        ConfigError: ``"config key 'model.layer.<k>' is not an option of <Class> (model '<name>'); valid: ..."``
            (:func:`ptdssm.layers.registry.check_option_names`), or a value of the wrong type (naming
            ``model.layer.<k>``). The values' ranges are the constructor's to check (:func:`check_layer_values`).
    """
    from ..layers.registry import check_option_names, get_family

    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"config key 'model.layer' must be a mapping of layer options, got {options!r}")
    family = get_family(name)
    options = {k: v for k, v in options.items() if v is not None}  # null: the layer's default, for any family
    check_option_names(family, options)
    hints = _constructor_hints(family.layer)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in hints:
            try:
                value = coerce(f"model.layer.{key}", value, hints[key])
            except TypeError:  # an annotation the config cannot check: passed as given
                pass
        out[key] = value
    return out


_VALID: set[str] = set()  # layers already built on the meta device (a config is validated after every override)
_DEFERRED = contextvars.ContextVar("ptdssm_defer_layer_values", default=False)


@contextlib.contextmanager
def deferred_layer_values() -> Iterator[None]:
    """Skip :func:`check_layer_values` inside the block: a config file about to get ``--set`` overrides is checked
    for its keys and cheap values, and the layer build (which may run a PTD solve of the file's state size) waits
    for the final config."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def check_layer_values(name: str, d_model: int, options: dict[str, Any]) -> None:
    """The family's constructor checks the values of ``model.layer`` (ranges, divisibility): the layer is built on
    the ``meta`` device (no memory, no random draws), so a bad value fails when the config is loaded, before any data
    is read. A constructor that cannot run on ``meta`` is checked when the model is built.

    Raises:
        ConfigError: the constructor's one-line message, naming ``model.layer`` and the model.
    """
    from ..layers.registry import build_checked, get_family

    if _DEFERRED.get():
        return
    family = get_family(name)
    key = repr((family, d_model, sorted(options.items())))
    if key in _VALID:
        return
    try:
        build_checked(name, d_model, options, meta=True)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - e.g. an op the meta device lacks: the real build checks the values
        return
    _VALID.add(key)


def layer_options(name: str, options: dict[str, Any], *, defaults: bool = False) -> dict[str, Any]:
    """The keyword arguments the family ``name``'s layer receives for ``model.layer = options`` (minus ``d_model``):
    :func:`ptdssm.layers.registry.layer_kwargs` (``defaults=True`` adds the constructor's own defaults)."""
    from ..layers.registry import layer_kwargs

    return layer_kwargs(name, options, with_defaults=defaults)
