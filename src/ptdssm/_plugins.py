"""Plug-in loading shared by the registries (tasks in :mod:`ptdssm.data.registry`, families in
:mod:`ptdssm.layers.registry`): a user's own module named on the command line (``--task mod:name``,
``--model mod:name``), and the entry points of a group.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import types

__all__ = ["import_plugin", "import_user_module", "load_entry_points", "one_line"]


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def import_user_module(module: str) -> types.ModuleType:
    """Import ``module``; if it is not found, retry with the current directory appended to ``sys.path`` (the
    ``ptdssm`` console script, unlike ``python -m``, does not put it there)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != module.split(".")[0] or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        importlib.invalidate_caches()
        return importlib.import_module(module)


def import_plugin(name: str, what: str, error: type[Exception]) -> tuple[str, types.ModuleType]:
    """``"module:attr"`` -> ``(attr, the imported module)``; ``error`` naming the ``what`` (``task``, ``model``) and
    ``name`` when a part is empty or the import fails."""
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise error(f"{what} {name!r}: expected 'module:name' with both parts non-empty")
    try:
        return attr, import_user_module(module)
    except Exception as exc:
        raise error(f"{what} {name!r}: cannot import module {module!r}: {one_line(exc)}") from exc


def load_entry_points(group: str, error: type[Exception], what: str) -> None:
    """Load every entry point of ``group``: import a module, or call a callable (either registers plug-ins).

    Raises:
        error: ``"<what> plug-in entry point 'name' = 'value' (group '<group>') failed to load: <one line>"``.
    """
    for ep in importlib.metadata.entry_points(group=group):
        try:
            obj = ep.load()
            if not isinstance(obj, types.ModuleType):
                if not callable(obj):
                    raise TypeError(f"{ep.value} is neither a module nor a callable")
                obj()
        except Exception as exc:  # a user's plug-in: report which one, in one line
            raise error(f"{what} plug-in entry point {ep.name!r} = {ep.value!r} (group {group!r}) failed to load: "
                        f"{one_line(exc)}") from exc
