"""Tasks by name: ``register_task``, ``get_task``, ``task_info``, ``build_task``.

Readers register at import time. The modules listed in :data:`TASK_MODULES` are imported on the first lookup, so a
new reader only needs to call :func:`register_task` at module level and add its module path here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .base import TaskBuilder, TaskData, TaskInfo, TaskInfoFn

__all__ = ["TASK_MODULES", "Task", "available_tasks", "build_task", "get_task", "register_task", "task_info"]

#: Modules imported on the first registry lookup; each registers its tasks.
TASK_MODULES: list[str] = ["ptdssm.data.images", "ptdssm.data.lra_meta",
                           "ptdssm.data.lra.listops", "ptdssm.data.lra.text", "ptdssm.data.lra.retrieval",
                           "ptdssm.data.lra.image", "ptdssm.data.lra.pathfinder",
                           "ptdssm.data.generators.mnist1d", "ptdssm.data.generators.synthetic"]


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


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in TASK_MODULES:
        importlib.import_module(mod)


def available_tasks() -> list[str]:
    """Names of all registered tasks."""
    _load()
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The task registered under ``name`` (``ValueError`` listing the names otherwise)."""
    _load()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def task_info(cfg: Any) -> TaskInfo:
    """``TaskInfo`` of ``cfg.task`` for the data config ``cfg`` (reads no data)."""
    return get_task(cfg.task).info(cfg)


def build_task(cfg: Any) -> TaskData:
    """Read the data of ``cfg.task`` (a :class:`ptdssm.config.DataConfig`)."""
    return get_task(cfg.task).build(cfg)
