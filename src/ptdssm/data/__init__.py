"""Datasets: the task interface (:class:`TaskData`, :class:`TaskInfo`), the task registry, and the readers.

See :mod:`ptdssm.data.base` for the example format and how to add a task.
"""

from .base import ArrayDataset, TaskData, TaskInfo, collate, seeded_split, seeded_subset
from .registry import TASK_MODULES, Task, available_tasks, build_task, get_task, register_task, task_info

__all__ = [
    "TASK_MODULES",
    "ArrayDataset",
    "Task",
    "TaskData",
    "TaskInfo",
    "available_tasks",
    "build_task",
    "collate",
    "get_task",
    "register_task",
    "seeded_split",
    "seeded_subset",
    "task_info",
]
