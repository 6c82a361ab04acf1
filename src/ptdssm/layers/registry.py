"""The one family table: model name -> layer class, default init, block kind, options.

Everything that needs to know which sequence families exist reads this table: config validation and the model
factory (:func:`build_layer`), ``ptdssm bench``, ``ptdssm reproduce``, the CLI help and the contract tests
(``tests/layers/test_contract.py`` is parametrized over :func:`family_names`). Adding a family is one line::

    register_family("ema-toy", EMA, block="ssm", description="fixed exponential moving average")

Family options (``model.layer`` in a config) are checked against the layer constructor's keyword parameters
(:func:`layer_kwargs_schema`), so no table lists "S5 only" fields.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .mixer import SequenceMixer

__all__ = ["BLOCKS", "Family", "build_layer", "family_names", "get_family", "layer_kwargs_schema",
           "register_family"]

#: block kinds (see :class:`Family`).
BLOCKS = ("ssm", "mixer", "mlp")


@dataclass(frozen=True)
class Family:
    """One registered sequence family.

    Attributes:
        name: model name, e.g. ``"s4-ptd"``.
        layer: the :class:`~ptdssm.layers.mixer.SequenceMixer` subclass.
        init: default init passed as the layer kwarg ``init`` (``None``: the layer's own default).
        block: ``"ssm"`` (norm -> mixer -> activation/GLU -> residual), ``"mixer"`` (norm -> mixer -> residual; the
            mixer gates itself, as Mamba) or ``"mlp"`` (norm -> mixer -> residual, then norm -> MLP -> residual).
        defaults: layer kwargs the family always passes (overridable by the config).
        bench: extra layer kwargs for ``ptdssm bench`` (e.g. S5: ``d_state`` 256, ``blocks`` 4).
        description: one line for the CLI help and the docs.
    """

    name: str
    layer: type[SequenceMixer]
    init: str | None = None
    block: str = "ssm"
    defaults: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_FAMILIES: dict[str, Family] = {}


def layer_kwargs_schema(family: Family | str) -> dict[str, inspect.Parameter]:
    """The layer constructor's parameters that can be given by keyword, minus ``d_model`` (``name -> Parameter``)."""
    fam = get_family(family) if isinstance(family, str) else family
    params = inspect.signature(fam.layer.__init__).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in params.items() if p.kind in kinds and n not in ("self", "d_model")}


def _takes_any_kwargs(layer: type) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(layer.__init__).parameters.values())


def register_family(name: str, layer: type[SequenceMixer], *, init: str | None = None, block: str = "ssm",
                    defaults: dict[str, Any] | None = None, bench: dict[str, Any] | None = None,
                    description: str = "", replace: bool = False) -> Family:
    """Register a family under ``name`` (registration order is kept) and return it.

    Raises:
        TypeError: ``layer`` is not a ``SequenceMixer`` subclass.
        ValueError: empty name, name taken (unless ``replace``), unknown ``block``, or an ``init``/option the
            constructor does not take.
    """
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"family name must be a non-empty string without spaces, got {name!r}")
    if not (isinstance(layer, type) and issubclass(layer, SequenceMixer)):
        raise TypeError(f"layer of family {name!r} must be a SequenceMixer subclass, got {layer!r}")
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r} for family {name!r}; expected one of: {', '.join(BLOCKS)}")
    if name in _FAMILIES and not replace:
        raise ValueError(f"family {name!r} is already registered (pass replace=True to replace it)")
    fam = Family(name, layer, init, block, dict(defaults or {}), dict(bench or {}), str(description))
    schema = layer_kwargs_schema(fam)
    if not _takes_any_kwargs(layer):
        given = {**fam.defaults, **fam.bench, **({"init": init} if init is not None else {})}
        bad = sorted(set(given) - set(schema))
        if bad:
            raise ValueError(f"family {name!r}: {layer.__name__} takes no option(s) {', '.join(bad)}")
    _FAMILIES[name] = fam
    return fam


def get_family(name: str) -> Family:
    """The family registered under ``name``; ``ConfigError`` (a ``ValueError``) listing the names otherwise."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(_FAMILIES)}") from None


def family_names() -> list[str]:
    """Registered family names, in registration order."""
    return list(_FAMILIES)


def build_layer(name: str, d_model: int, layer_options: dict[str, Any] | None = None) -> SequenceMixer:
    """Build family ``name``'s layer with ``d_model`` channels.

    Keyword arguments are, in increasing priority: ``family.defaults``, ``init=family.init`` (if the constructor
    takes ``init`` and the family names one), then ``layer_options`` (a config's ``model.layer`` mapping).

    Raises:
        ConfigError: unknown model, or an option the constructor does not take (naming ``model.layer.<key>``).
    """
    fam = get_family(name)
    options = dict(layer_options or {})
    schema = layer_kwargs_schema(fam)
    if not _takes_any_kwargs(fam.layer):
        for key in options:
            if key not in schema:
                raise ConfigError(f"config key 'model.layer.{key}' is not an option of {fam.layer.__name__} "
                                  f"(model {name!r}); valid: {', '.join(schema)}")
    kwargs = dict(fam.defaults)
    if fam.init is not None and ("init" in schema or _takes_any_kwargs(fam.layer)):
        kwargs["init"] = fam.init
    kwargs.update(options)
    return fam.layer(d_model, **kwargs)


# ------------------------------------------------------------------ the built-in families (one line each)
from .s4 import S4  # noqa: E402
from .s4d import S4D  # noqa: E402
from .s5 import S5  # noqa: E402

register_family("s4", S4, bench={"d_state": 64}, description="S4: DPLR SSM (HiPPO-LegS), Cauchy/Krylov kernel")
register_family("s4d", S4D, init="s4d-legs", bench={"d_state": 64}, description="S4D: diagonal SSM (S4D-LegS)")
register_family("s4-ptd", S4D, init="ptd", bench={"d_state": 64},
                description="S4-PTD: diagonal SSM, perturb-then-diagonalize HiPPO-LegS")
register_family("s5", S5, init="s5-legs", bench={"d_state": 256, "blocks": 4},
                description="S5: MIMO diagonal SSM, parallel scan")
register_family("s5-ptd", S5, init="ptd", bench={"d_state": 256, "blocks": 4},
                description="S5-PTD: MIMO diagonal SSM, perturb-then-diagonalize blocks")
