"""Cache of processed tensors (token arrays, grayscale images), keyed by every option that shapes them.

Reading a release is slow (200,000 PNGs for Pathfinder, 147,086 long document pairs for Retrieval), so readers store
the processed arrays once in an ``.npz`` file and reuse them. The key is a SHA-256 of a JSON document holding the
task, a format version, every reader option and a fingerprint of the source files (path, size, mtime): changing any
option or touching a file builds a new entry. Writes go to a temporary file in the same folder and are renamed into
place (atomic on POSIX), so an interrupted run never leaves a half-written entry under the final name; an entry that
cannot be read (truncated, corrupt, or from another key) is rebuilt and overwritten.

Location: ``$PTDSSM_DATA_CACHE``, else ``$PTDSSM_CACHE_DIR/data``, else ``~/.cache/ptdssm/data``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_VERSION", "cache_dir", "cache_key", "cached_arrays", "file_fingerprint"]

#: Bumped whenever a reader's processing changes, so old entries are never reused.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """The data cache folder (not created here)."""
    explicit = os.environ.get("PTDSSM_DATA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("PTDSSM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ptdssm")
    return Path(root) / "data"


def file_fingerprint(paths: Iterable[str | os.PathLike[str]]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of each file (sorted by path), for cache keys."""
    out = []
    for p in sorted(str(Path(q).resolve()) for q in paths):
        st = os.stat(p)
        out.append([p, st.st_size, st.st_mtime_ns])
    return out


def cache_key(task: str, options: dict[str, Any], fingerprint: Any = None) -> tuple[str, str]:
    """``(hex digest, canonical JSON)`` of the task, options and source fingerprint."""
    doc = json.dumps({"task": task, "version": CACHE_VERSION, "options": options, "sources": fingerprint},
                     sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest(), doc


def _load(path: Path, doc: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    if str(arrays.pop("__key__", "")) != doc:  # a hash collision or a foreign file: never trust it
        return None
    return arrays


def cached_arrays(task: str, options: dict[str, Any], build: Callable[[], dict[str, np.ndarray]], *,
                  sources: Iterable[str | os.PathLike[str]] | None = None, enabled: bool = True,
                  folder: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """Return ``build()``'s arrays, from the cache when an entry with the same key exists.

    Args:
        task: task name (part of the key and of the file name).
        options: every option that changes the arrays (JSON-serializable).
        build: computes the arrays (a dict of name -> numpy array; no object arrays).
        sources: files read by ``build``; their paths, sizes and mtimes are part of the key.
        enabled: ``False`` bypasses the cache (no read, no write).
        folder: cache folder (default :func:`cache_dir`).
    """
    if not enabled:
        return build()
    digest, doc = cache_key(task, options, file_fingerprint(sources) if sources is not None else None)
    root = Path(folder) if folder is not None else cache_dir()
    path = root / f"{task}-{digest[:20]}.npz"
    if path.is_file():
        arrays = _load(path, doc)
        if arrays is not None:
            return arrays
    arrays = build()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=root)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, __key__=np.asarray(doc), **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only or full cache folder only costs the rebuild next time
    return arrays
