"""Readers of the official Long Range Arena releases (and CIFAR-10 / IMDB), plugged into the task registry.

One module per task: :mod:`.listops` (also ``listops-synthetic``), :mod:`.text`, :mod:`.retrieval`, :mod:`.image`,
:mod:`.pathfinder` (``pathfinder`` and ``pathx``). They register on import (the registry imports them on first
lookup). :mod:`._find` locates release folders under ``--data-dir`` whatever their nesting; :mod:`._cache` stores
processed arrays keyed by every option. Facts on formats and splits: ``data-formats.md`` section 1.
"""

from .. import lra_meta as _lra_meta  # noqa: F401  (placeholders register first; the readers replace them)
from ._find import DATA_DIR_ENV, DataNotFoundError, data_root, find_leaf

__all__ = ["DATA_DIR_ENV", "DataNotFoundError", "data_root", "find_leaf"]
