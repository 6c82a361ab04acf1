"""Datasets: the task interface (:class:`TaskData`, :class:`TaskInfo`), the task registry, and the readers.

See :mod:`ptdssm.data.base` for the example format and how to add a task.
"""

from .base import (
    HEADS,
    IGNORE_INDEX,
    LOSSES,
    ArrayDataset,
    TaskData,
    TaskInfo,
    collate,
    collate_targets,
    seeded_split,
    seeded_subset,
)
from .registry import (
    ENTRY_POINT_GROUP,
    TASK_MODULES,
    Task,
    available_tasks,
    build_task,
    get_task,
    register_task,
    task_info,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "HEADS",
    "IGNORE_INDEX",
    "LOSSES",
    "TASK_MODULES",
    "ArrayDataset",
    "Task",
    "TaskData",
    "TaskInfo",
    "available_tasks",
    "build_task",
    "collate",
    "collate_targets",
    "get_task",
    "register_task",
    "seeded_split",
    "seeded_subset",
    "task_info",
]
