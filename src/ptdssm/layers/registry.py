"""The one family table: model name -> layer class, default init, block kind, options.

Everything that needs to know which sequence families exist reads this table: config validation and the model
factory (:func:`build_layer`), ``ptdssm bench``, ``ptdssm reproduce``, the CLI help and the contract tests
(``tests/layers/test_contract.py`` is parametrized over :func:`family_names`). Adding a family is one line::

    register_family("ema-toy", EMA, block="ssm", description="fixed exponential moving average")

Family options (``model.layer`` in a config) are checked against the layer constructor's keyword parameters
(:func:`layer_kwargs_schema`, :func:`check_option_names`), so no table lists "S5 only" fields; the keyword arguments
a layer receives are :func:`layer_kwargs` (family defaults, init, then the options), the one place that merge is
written.

Three routes lead to a family, all looked up by :func:`get_family` (so ``ptdssm train --model NAME``, configs and
``ptdssm bench`` honour them):

1. **Built-in** families, registered at the end of this module.
2. **Entry points** of the group ``ptdssm.families`` (:data:`ENTRY_POINT_GROUP`), loaded on the first lookup. Each
   names a module (importing it registers its families) or a callable (called with no arguments; it registers
   families). In ``pyproject.toml``::

       [project.entry-points."ptdssm.families"]
       my_layers = "my_package.layers"            # a module that calls register_family at import

   A plug-in that fails to load raises :class:`~ptdssm.errors.ConfigError` naming the entry point.
3. **``module:name``** (``--model my_module:my_family``): the module is imported (from ``PYTHONPATH`` or the
   current directory); the family is the one it registers as ``"my_module:my_family"`` or, failing that, as
   ``"my_family"``, and is then also registered as ``"my_module:my_family"``.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from .._plugins import import_plugin, load_entry_points
from ..errors import ConfigError
from .mixer import SequenceMixer

__all__ = ["BENCH_KEYS", "BLOCKS", "ENTRY_POINT_GROUP", "Family", "build_checked", "build_layer", "check_option_names",
           "family_names", "get_family", "layer_kwargs", "layer_kwargs_schema", "register_family"]

#: block kinds (see :class:`Family`); :mod:`ptdssm.models.blocks` builds them.
BLOCKS = ("ssm", "mixer", "mlp")

#: Entry-point group whose entries register families (module docstring).
ENTRY_POINT_GROUP = "ptdssm.families"

#: keys of a family's ``bench`` mapping that ``ptdssm bench`` reads itself and never passes to the layer:
#: ``fft_convs`` (FFT convolutions the layer runs) and ``targets`` (speed targets); see :mod:`ptdssm.bench.layers`.
BENCH_KEYS = ("fft_convs", "targets")


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
        bench: extra layer kwargs for ``ptdssm bench`` (e.g. S5: ``d_state`` 256, ``blocks`` 4), plus the bench's
            own keys :data:`BENCH_KEYS` (not layer kwargs).
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
_loaded = False


def _family(family: Family | str) -> Family:
    return get_family(family) if isinstance(family, str) else family


def layer_kwargs_schema(family: Family | str) -> dict[str, inspect.Parameter]:
    """The layer constructor's parameters that can be given by keyword, minus ``d_model`` (``name -> Parameter``)."""
    params = inspect.signature(_family(family).layer.__init__).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in params.items() if p.kind in kinds and n not in ("self", "d_model")}


def _takes_any_kwargs(layer: type) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(layer.__init__).parameters.values())


def check_option_names(family: Family | str, options: Any) -> None:
    """Every key of ``options`` is a keyword of the family's layer constructor (any key if it takes ``**kwargs``).

    Raises:
        ConfigError: ``"config key 'model.layer.<k>' is not an option of <Class> (model '<name>'); valid: ..."``.
    """
    fam = _family(family)
    if _takes_any_kwargs(fam.layer):
        return
    schema = layer_kwargs_schema(fam)
    for key in options or {}:
        if key not in schema:
            raise ConfigError(f"config key 'model.layer.{key}' is not an option of {fam.layer.__name__} "
                              f"(model {fam.name!r}); valid: {', '.join(schema)}")


def layer_kwargs(family: Family | str, options: dict[str, Any] | None = None, *,
                 with_defaults: bool = False) -> dict[str, Any]:
    """The keyword arguments the family's layer receives for the options ``options`` (minus ``d_model``).

    In increasing priority: ``family.defaults``, ``init=family.init`` (when the family names one), then ``options``
    (``None`` values mean "not set" and are dropped). With ``with_defaults=True`` the constructor's own defaults
    fill in every other keyword (the complete set of options). The names are not checked here
    (:func:`check_option_names`).
    """
    fam = _family(family)
    out = dict(fam.defaults)
    if fam.init is not None:  # register_family checked that the constructor takes it
        out["init"] = fam.init
    out.update({k: v for k, v in (options or {}).items() if v is not None})
    if with_defaults:
        for key, p in layer_kwargs_schema(fam).items():
            if key not in out and p.default is not inspect.Parameter.empty:
                out[key] = p.default
    return out


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
    if not _takes_any_kwargs(layer):
        bench_kw = {k: v for k, v in fam.bench.items() if k not in BENCH_KEYS}
        given = {**fam.defaults, **bench_kw, **({"init": init} if init is not None else {})}
        bad = sorted(set(given) - set(layer_kwargs_schema(fam)))
        if bad:
            raise ValueError(f"family {name!r}: {layer.__name__} takes no option(s) {', '.join(bad)}")
    _FAMILIES[name] = fam
    return fam


def _load() -> None:
    """Load the ``ptdssm.families`` entry points, once (on the first lookup)."""
    global _loaded
    if not _loaded:
        _loaded = True
        load_entry_points(ENTRY_POINT_GROUP, ConfigError, "family")


def _resolve_plugin(name: str) -> Family:
    """Resolve ``"module:family"`` (module docstring, route 3) and register the result under ``name``."""
    attr, mod = import_plugin(name, "model", ConfigError)
    if name in _FAMILIES:  # registered as "module:family" by the import
        return _FAMILIES[name]
    if attr not in _FAMILIES:
        raise ConfigError(f"model {name!r}: module {mod.__name__!r} ({getattr(mod, '__file__', '?')}) registers no "
                          f"family {attr!r} or {name!r} (call ptdssm.layers.register_family at import)")
    fam = _FAMILIES[name] = dataclasses.replace(_FAMILIES[attr], name=name)
    return fam


def get_family(name: str) -> Family:
    """The family registered under ``name``, or resolved from ``"module:name"`` (module docstring).

    Raises:
        ConfigError: (a ``ValueError``) an unknown name (listing the registered ones), a ``module:name`` that does
            not resolve, or an entry point that fails to load.
    """
    _load()
    if isinstance(name, str) and name in _FAMILIES:
        return _FAMILIES[name]
    if isinstance(name, str) and ":" in name:
        return _resolve_plugin(name)
    raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(_FAMILIES)}, or 'module:name' for a "
                      f"family your own module registers")


def family_names() -> list[str]:
    """Registered family names, in registration order (entry points included)."""
    _load()
    return list(_FAMILIES)


def build_layer(name: str, d_model: int, layer_options: dict[str, Any] | None = None) -> SequenceMixer:
    """Build family ``name``'s layer with ``d_model`` channels and the keyword arguments
    :func:`layer_kwargs` ``(name, layer_options)`` (a config's ``model.layer`` mapping).

    Raises:
        ConfigError: unknown model, or an option the constructor does not take (naming ``model.layer.<key>``).
        TypeError, ValueError: the constructor's own checks of the values.
    """
    fam = get_family(name)
    check_option_names(fam, layer_options)
    return fam.layer(d_model, **layer_kwargs(fam, layer_options))


def build_checked(name: str, d_model: int, layer_options: dict[str, Any] | None = None, *,
                  meta: bool = False) -> SequenceMixer:
    """:func:`build_layer` for a config: the constructor's ``TypeError``/``ValueError`` (a bad value, e.g.
    ``d_state=0``, ``dt_min > dt_max``, ``n_ssm`` not dividing ``d_model``) becomes a one-line
    :class:`~ptdssm.errors.ConfigError` naming ``model.layer``.

    ``meta=True`` builds on the ``meta`` device (no memory, no random draws, no data): config validation uses it so
    that every value the constructor checks fails when the config is loaded, before any data is read.
    """
    fam = get_family(name)
    try:
        if meta:
            with torch.device("meta"):
                return build_layer(name, d_model, layer_options)
        return build_layer(name, d_model, layer_options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key 'model.layer' of model {name!r} ({fam.layer.__name__}, d_model={d_model}): "
                          f"{' '.join(str(exc).split())}") from None


# ------------------------------------------------------------------ the built-in families (one line each)
from .h3 import H3  # noqa: E402
from .hyena import Hyena  # noqa: E402
from .long_conv import LongConv  # noqa: E402
from .lru import LRU  # noqa: E402
from .mamba import Mamba  # noqa: E402
from .mamba2 import Mamba2  # noqa: E402
from .s4 import S4  # noqa: E402
from .s4d import S4D  # noqa: E402
from .s5 import S5  # noqa: E402
from .spacetime import SpaceTime  # noqa: E402

register_family("s4", S4, bench={"d_state": 64}, description="S4: DPLR SSM (HiPPO-LegS), Cauchy/Krylov kernel")
register_family("s4d", S4D, init="s4d-legs", bench={"d_state": 64}, description="S4D: diagonal SSM (S4D-LegS)")
register_family("s4-ptd", S4D, init="ptd", bench={"d_state": 64},
                description="S4-PTD: diagonal SSM, perturb-then-diagonalize HiPPO-LegS")
register_family("s5", S5, init="s5-legs", bench={"d_state": 256, "blocks": 4},
                description="S5: MIMO diagonal SSM, parallel scan")
register_family("s5-ptd", S5, init="ptd", bench={"d_state": 256, "blocks": 4},
                description="S5-PTD: MIMO diagonal SSM, perturb-then-diagonalize blocks")
register_family("mamba", Mamba, block="mixer", bench={"d_state": 16},
                description="Mamba-1 (S6): selective SSM, gated causal-conv mixer (Gu and Dao 2023)")
register_family("mamba2", Mamba2, block="mixer", bench={"d_state": 16},
                description="Mamba-2: selective SSM, scalar A per head, chunked SSD (Dao and Gu 2024)")
register_family("long-conv", LongConv, bench={"l_max": 16384, "targets": {"fwd_fft": 2.5, "fwdbwd_fft": 2.5}},
                description="long convolutions: explicit kernels, Squash/Smooth regularized (Fu et al. 2023)")
register_family("lru", LRU, bench={"d_state": 256, "targets": {"fwdbwd_fft_at_most": "s5"}},
                description="LRU: complex diagonal linear recurrence, ring init, parallel scan (Orvieto et al. 2023)")
register_family("h3", H3, init="s4d-lin", block="mlp",
                bench={"d_state": 64, "fft_convs": 2, "targets": {"fwdbwd_proj": 1.5}},
                description="H3: shift SSM and diagonal SSM with multiplicative gating (Fu, Dao et al. 2023)")
register_family("hyena", Hyena, block="mlp",
                bench={"l_max": 16384, "order": 2, "fft_convs": 2, "targets": {"fwdbwd_proj": 1.5}},
                description="Hyena: implicit long filters, short convs and gating, order N (Poli et al. 2023)")
register_family("spacetime", SpaceTime, bench={"d_state": 64},
                description="SpaceTime: companion SSM, fast roots-of-unity kernel, closed-loop forecaster "
                            "(Zhang et al. 2023)")
