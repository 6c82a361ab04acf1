"""Find the leaf folders of the official releases under a data root, whatever their nesting.

Releases come nested differently: ``lra_release.gz`` unpacks to ``lra_release/lra_release/listops-1000``, mirrors
drop one or both ``lra_release`` levels, and users point ``--data-dir`` at the root, at an intermediate folder, or at
the leaf itself. :func:`find_leaf` accepts all of these: it looks at the root itself, then walks down (breadth
first, up to ``max_depth`` levels, skipping hidden folders and the contents of leaves such as ``imgs/``) for a folder
whose path ends with the leaf's components and which holds every required entry.

When nothing matches, :class:`DataNotFoundError` (a ``FileNotFoundError``) says which root was searched, how deep,
which folder names were expected, which required files each partial match lacks, and where to get the data.
"""

from __future__ import annotations

import glob
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "DataNotFoundError", "data_root", "find_leaf", "missing_entries"]

#: Environment variable naming the data root when ``data.data_dir`` / ``--data-dir`` is not given.
DATA_DIR_ENV = "PTDSSM_DATA_DIR"

# Folders never descended into: they hold data files, not releases (and can hold 100k+ entries).
_NO_DESCEND = {"imgs", "metadata", "pos", "neg", "unsup", "__pycache__"}


class DataNotFoundError(FileNotFoundError):
    """A release folder or file was not found; the message lists what was searched and what was expected."""


def data_root(data_dir: str | os.PathLike[str] | None, task: str) -> Path:
    """The folder to search: ``data_dir``, else ``$PTDSSM_DATA_DIR``; a clear error when neither is set or exists."""
    root = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV)
    if not root:
        raise DataNotFoundError(
            f"task {task!r} reads data from disk but no data folder was given: pass --data-dir DIR "
            f"(config key data.data_dir) or set ${DATA_DIR_ENV}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"task {task!r}: data folder {str(path)!r} does not exist or is not a folder")
    return path


def missing_entries(folder: Path, required: Sequence[str]) -> list[str]:
    """The entries of ``required`` (relative paths, glob patterns allowed) that ``folder`` lacks."""
    missing = []
    for rel in required:
        if any(ch in rel for ch in "*?["):
            if not glob.glob(os.path.join(glob.escape(str(folder)), rel)):
                missing.append(rel)
        elif not (folder / rel).exists():
            missing.append(rel)
    return missing


def _ends_with(path: Path, parts: Sequence[str]) -> bool:
    return len(path.parts) >= len(parts) and tuple(path.parts[-len(parts):]) == tuple(parts)


def find_leaf(root: str | os.PathLike[str], leaf: str | Sequence[str], required: Sequence[str], *, task: str,
              max_depth: int = 5, hint: str = "") -> Path:
    """Find the release folder ``leaf`` (e.g. ``"listops-1000"`` or ``"pathfinder32/curv_contour_length_14"``).

    Args:
        root: the data root (``--data-dir``).
        leaf: the folder name, or several alternative names (a sequence); a name may have several ``/`` components.
            ``root`` itself qualifies when it holds the required entries (the user pointed at the leaf).
        required: entries the leaf must hold, relative to it (glob patterns allowed, e.g. ``"metadata/*.npy"``).
        task: task name, for the message.
        max_depth: how many folder levels below ``root`` to search.
        hint: where the data comes from, appended to the error message.

    Returns:
        the first matching folder in breadth-first order (shallowest first, then alphabetical).

    Raises:
        DataNotFoundError: with the root, the depth, the expected names and files, and the partial matches.
    """
    root = Path(root).expanduser()
    leaves = [leaf] if isinstance(leaf, str) else list(leaf)
    leaf_parts = [tuple(p for p in name.replace("\\", "/").split("/") if p) for name in leaves]
    partial: list[tuple[Path, list[str]]] = []
    if root.is_dir() and not missing_entries(root, required):
        return root
    queue: deque[tuple[Path, int]] = deque([(root, 0)])
    visited = 0
    while queue:
        folder, depth = queue.popleft()
        visited += 1
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        for child in children:
            if any(_ends_with(child, parts) for parts in leaf_parts):
                missing = missing_entries(child, required)
                if not missing:
                    return child
                partial.append((child, missing))
            if depth + 1 < max_depth and child.name not in _NO_DESCEND:
                queue.append((child, depth + 1))
    names = " or ".join(repr(n) for n in leaves)
    lines = [f"task {task!r}: could not find the folder {names} under {str(root)!r} "
             f"(searched {visited} folders, {max_depth} levels deep, and the folder itself)",
             f"  expected {names} holding: {', '.join(required)}"]
    for folder, missing in partial[:5]:
        lines.append(f"  found {str(folder)!r} but it lacks: {', '.join(missing)}")
    if hint:
        lines.append(f"  {hint}")
    raise DataNotFoundError("\n".join(lines))
