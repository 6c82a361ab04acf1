"""Datasets: the task interface (:class:`TaskData`, :class:`TaskInfo`), the task registry, and the readers.

See :mod:`ptdssm.data.base` for the example format and how to add a task.
"""

from .base import (
    BYTE_VOCAB_SIZE,
    HEADS,
    IGNORE_INDEX,
    LOSSES,
    TOKENIZERS,
    ArrayDataset,
    TaskData,
    TaskInfo,
    collate,
    collate_targets,
    decode_bytes,
    encode_bytes,
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
    "BYTE_VOCAB_SIZE",
    "ENTRY_POINT_GROUP",
    "HEADS",
    "IGNORE_INDEX",
    "LOSSES",
    "TASK_MODULES",
    "TOKENIZERS",
    "ArrayDataset",
    "Task",
    "TaskData",
    "TaskInfo",
    "available_tasks",
    "build_task",
    "collate",
    "collate_targets",
    "decode_bytes",
    "encode_bytes",
    "get_task",
    "register_task",
    "seeded_split",
    "seeded_subset",
    "task_info",
]
