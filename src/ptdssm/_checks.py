"""Argument validation shared by the whole package.

Every public entry point checks its inputs here so that bad input fails early with a ``ValueError`` (or
``TypeError``) that names the offending argument, instead of a shape error deep inside a kernel.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

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


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing ancestor (``.`` for a relative path under nothing)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe if probe.exists() else Path(".")


def ensure_writable_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Check, before any work, that the folder ``path`` can be created (if missing) and written; return it.

    Nothing is created: the nearest existing folder (``path`` or an ancestor) must be a folder in which a file can
    be created (tried with a temporary file, so read-only mounts are caught even for root).

    Raises:
        OutputError: one line naming ``what`` (e.g. ``"--out"``) and ``path``: a file where a folder is needed, a
            path under a file, or a folder that is not writable.
    """
    from .errors import OutputError

    p = Path(path).expanduser()
    probe = _nearest_existing(p)
    if probe == p and not p.is_dir():
        raise OutputError(f"{what} {p} is a file, not a folder; give a folder (it is created if missing)")
    if not probe.is_dir():
        raise OutputError(f"{what} {p} cannot be created: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ptdssm-write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        where = "" if probe == p else f" (its nearest existing folder {probe} is not)"
        raise OutputError(f"{what} {p} is not writable{where}: {exc.strerror or exc}") from None
    return p


def ensure_writable_file(path: str | os.PathLike[str], what: str) -> Path:
    """Check, before any work, that the file ``path`` can be written (its folder created if missing); return it.

    Raises:
        OutputError: one line naming ``what`` and ``path`` (an existing folder, or an unusable parent folder).
    """
    from .errors import OutputError

    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(f"{what} {p} is a folder; give a file name (e.g. {p / 'figure.png'})")
    ensure_writable_dir(p.parent, what)
    return p


def parse_device(spec: object, what: str) -> tuple[str, int | None]:
    """``(kind, index)`` of a device value: ``("auto", None)``, ``("cpu", None)``, ``("cuda", None)`` for ``cuda``
    (the process's own GPU) or ``("cuda", k)`` for ``cuda:k``. Only the spelling is checked here (a config may be
    written on a machine without the GPU it names); :func:`ptdssm.experiments.distributed.resolve_device` checks
    that the device exists.

    Raises:
        ConfigError: one line naming ``what`` for any other value.
    """
    from .errors import ConfigError

    text = str(spec).strip().lower() if isinstance(spec, str) else ""
    if text in ("auto", "cpu", "cuda"):
        return text, None
    if text.startswith("cuda:") and text[5:].isdigit():
        return "cuda", int(text[5:])
    raise ConfigError(f"{what} must be auto, cpu, cuda or cuda:k (k a GPU index), got {spec!r}")
