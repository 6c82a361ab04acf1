"""Tasks by name: ``register_task``, ``get_task``, ``task_info``, ``build_task``.

Readers register at import time. Three routes lead to a task, all looked up by :func:`get_task` (so ``ptdssm train
--task NAME``, ``ptdssm evaluate`` and ``ptdssm data check`` honour them):

1. **Library modules** listed in :data:`TASK_MODULES`, imported on the first lookup.
2. **Entry points** of the group ``ptdssm.tasks`` (:data:`ENTRY_POINT_GROUP`), loaded on the first lookup. Each
   entry point names a module (importing it registers its tasks) or a callable (called with no arguments; it
   registers tasks). In ``pyproject.toml``::

       [project.entry-points."ptdssm.tasks"]
       my_tasks = "my_package.tasks"            # a module that calls register_task at import
       more = "my_package.tasks:register_all"   # or a function that does

   A plug-in that fails to load raises :class:`ptdssm.errors.DataError` naming the entry point.
3. **``module:name``** (``--task my_module:my_task``): the module is imported (it must be importable, e.g. on
   ``PYTHONPATH`` or the current directory), then the first of these is the task:
   (a) a task registered as ``"my_module:my_task"``; (b) the module attribute ``my_task`` if it is a :class:`Task`
   (what :func:`register_task` returns) or an ``(info, build)`` pair of callables; (c) a task registered as
   ``"my_task"`` (typically by ``register_task("my_task", ...)`` at the module's import). The task is then
   registered as ``"my_module:my_task"``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._plugins import import_plugin, load_entry_points
from ..errors import DataError
from .base import TaskBuilder, TaskData, TaskInfo, TaskInfoFn

__all__ = ["ENTRY_POINT_GROUP", "TASK_MODULES", "Task", "available_tasks", "build_task", "get_task",
           "register_task", "task_info"]

#: Entry-point group whose entries register tasks (see the module docstring).
ENTRY_POINT_GROUP = "ptdssm.tasks"

#: Modules imported on the first registry lookup; each registers its tasks.
TASK_MODULES: list[str] = ["ptdssm.data.images", "ptdssm.data.lra_meta",
                           "ptdssm.data.lra.listops", "ptdssm.data.lra.text", "ptdssm.data.lra.retrieval",
                           "ptdssm.data.lra.image", "ptdssm.data.lra.pathfinder",
                           "ptdssm.data.generators.mnist1d", "ptdssm.data.generators.synthetic",
                           "ptdssm.data.generators.induction", "ptdssm.data.generators.signals", "ptdssm.data.text",
                           "ptdssm.data.files.tasks",
                           "ptdssm.data.forecasting.tasks"]


@dataclass(frozen=True)
class Task:
    """A registered task: ``info(cfg)`` (no data read) and ``build(cfg)`` (reads the data)."""

    name: str
    info: TaskInfoFn
    build: TaskBuilder
    description: str = ""


_TASKS: dict[str, Task] = {}
_loaded = False


def register_task(name: str, *, info: TaskInfoFn, build: TaskBuilder, description: str = "",
                  replace: bool = False) -> Task:
    """Register a task under ``name``.

    Args:
        name: registry name (``ptdssm train --task NAME``).
        info: ``cfg -> TaskInfo`` without reading data.
        build: ``cfg -> TaskData``.
        description: one line for listings.
        replace: allow replacing an existing registration (readers that supersede a placeholder).
    """
    if name in _TASKS and not replace:
        raise ValueError(f"task {name!r} is already registered (pass replace=True to supersede it)")
    task = Task(name, info, build, description)
    _TASKS[name] = task
    return task


def _load_entry_points() -> None:
    """Load every ``ptdssm.tasks`` entry point: import a module, or call a callable (it registers tasks)."""
    load_entry_points(ENTRY_POINT_GROUP, DataError, "task")


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in TASK_MODULES:
        importlib.import_module(mod)
    _load_entry_points()


def _is_pair(obj: Any) -> bool:
    return isinstance(obj, (tuple, list)) and len(obj) == 2 and all(callable(f) for f in obj)


def _resolve_plugin(name: str) -> Task:
    """Resolve ``"module:attr"`` (module docstring, route 3) and register the result under ``name``."""
    attr, mod = import_plugin(name, "task", DataError)
    if name in _TASKS:  # (a) registered as "module:attr" by the import
        return _TASKS[name]
    obj = getattr(mod, attr, None)
    if isinstance(obj, Task):  # (b) a Task object
        task = obj
    elif _is_pair(obj):  # (b) an (info, build) pair
        task = Task(name, obj[0], obj[1])
    elif attr in _TASKS:  # (c) registered as "attr"
        task = _TASKS[attr]
    else:
        raise DataError(f"task {name!r}: module {mod.__name__!r} ({getattr(mod, '__file__', '?')}) neither registers a "
                        f"task {attr!r} or {name!r} nor defines {attr!r} as a Task or an (info, build) pair")
    _TASKS[name] = task
    return task


def available_tasks() -> list[str]:
    """Names of all registered tasks (library modules, entry points, and ``module:name`` tasks resolved so far)."""
    _load()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The task registered under ``name``, or resolved from ``"module:name"`` (module docstring).

    Raises ``DataError`` (a ``ValueError``) listing the registered names for an unknown name.
    """
    _load()
    if name in _TASKS:
        return _TASKS[name]
    if ":" in name:
        return _resolve_plugin(name)
    raise DataError(f"unknown task {name!r}; expected one of: {', '.join(sorted(_TASKS))}, or 'module:name' for "
                    f"a task in your own module")


def task_info(cfg: Any) -> TaskInfo:
    """``TaskInfo`` of ``cfg.task`` for the data config ``cfg`` (reads no data)."""
    return get_task(cfg.task).info(cfg)


def build_task(cfg: Any) -> TaskData:
    """Read the data of ``cfg.task`` (a :class:`ptdssm.config.DataConfig`).

    A ``data_dir`` that is given but does not exist is refused here, for every task, before its reader runs (a
    reader never falls back to other data when the folder named is missing).
    """
    task = get_task(cfg.task)
    data_dir = getattr(cfg, "data_dir", None)
    if data_dir and not Path(str(data_dir)).expanduser().exists():
        raise DataError(f"data folder {data_dir} (--data-dir, config key data.data_dir) does not exist")
    return task.build(cfg)
