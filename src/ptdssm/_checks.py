"""Argument validation shared by the whole package.

Every public entry point checks its inputs here so that bad input fails early with a ``ValueError`` (or
``TypeError``) that names the offending argument, instead of a shape error deep inside a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising ``ValueError`` naming ``name`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0 with ``allow_zero``), else raise ``ValueError``."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Raise ``ValueError`` naming ``name`` and listing the options unless ``value`` is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(options)}")
    return str(value)


def check_square_matrix(name: str, value: object) -> np.ndarray:
    """Return ``value`` as a finite float64/complex128 square matrix, else raise ``ValueError`` naming ``name``."""
    a = np.asarray(value)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
            or np.issubdtype(a.dtype, np.complexfloating)):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def check_finite_array(name: str, value: object, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite numeric array (of ``ndim`` dimensions if given), else raise ``ValueError``."""
    a = np.asarray(value)
    if not (np.issubdtype(a.dtype, np.number)):
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a
