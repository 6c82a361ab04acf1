"""Value checks shared by the config sections: range checks and coercion of YAML values to annotations.

Every failure raises :class:`ptdssm.errors.ConfigError` (a ``ValueError``) whose one-line message names the dotted
key. Numbers written as ``1e-3`` (which YAML 1.1 reads as a string) are accepted wherever a number is expected.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

from ..errors import ConfigError

__all__ = ["check_min", "check_range", "coerce"]


def check_min(key: str, value: int | float, minimum: int | float) -> None:
    """``value >= minimum`` or a :class:`ConfigError` naming ``key``."""
    if value < minimum:
        raise ConfigError(f"config key '{key}' must be >= {minimum}, got {value}")


def check_range(key: str, value: float, low: float, high: float, high_open: bool = False) -> None:
    """``low <= value <= high`` (``< high`` with ``high_open``) or a :class:`ConfigError` naming ``key``."""
    if not (low <= value <= high) or (high_open and value >= high):
        bound = ")" if high_open else "]"
        raise ConfigError(f"config key '{key}' must be in [{low}, {high}{bound}, got {value}")


def _coerce_union(key: str, value: Any, tp: Any) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(key, value, arg)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if len(errors) == 1 else f"config key '{key}': invalid value {value!r}")


def _coerce_number(key: str, value: Any, tp: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected {'an integer' if tp is int else 'a number'}, got {value!r}")
    if tp is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
    return out


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to the annotation ``tp`` or raise :class:`ConfigError` naming ``key``.

    Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``Any``, ``Literal[...]``, ``list[T]``,
    ``dict[...]`` and unions of those (``X | None``). Anything else raises ``TypeError`` (a programming error).
    """
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _coerce_union(key, value, tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"config key '{key}': invalid value {value!r}; expected one of: {', '.join(map(str, choices))}")
        return value
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        return [coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if tp in (int, float):
        return _coerce_number(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {tp!r} for {key}")
