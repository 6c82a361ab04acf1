"""Typed errors of ptdssm. Every one is a ``ValueError`` (or ``FileNotFoundError``) with a one-line message that
names the offending argument, key or file, so the CLI maps them all to exit status 2 without a traceback, and callers
branch on the type instead of matching message text.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DataError", "NonFiniteError", "OutputError", "TrainingDiverged"]


class ConfigError(ValueError):
    """A config key or value is unknown or invalid (the message names the dotted key)."""


class DataError(ValueError):
    """A task's data is missing, malformed or inconsistent (the message names the file or the option)."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read: missing, truncated, foreign, or of another schema version."""


class OutputError(ValueError):
    """An output path (``--out``, ``--plot``) cannot be used: it is a file where a folder is needed, lies under a
    file, or is not writable. Raised before any work starts (the message names the option and the path)."""


class NonFiniteError(ValueError):
    """A tensor that must be finite holds NaN or inf (layer inputs, losses, gradients)."""


class TrainingDiverged(NonFiniteError):
    """The loss or the gradient norm became NaN or inf during training."""
