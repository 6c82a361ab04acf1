"""Metadata of the six LRA tasks, registered so that their configs load and build models before the readers exist.

The readers of the official releases supersede these registrations with ``register_task(..., replace=True)``. Until
then ``build`` raises a ``ValueError`` saying the reader is not available. Vocabulary sizes follow S4's tokenizers
(ListOps 18, IMDB char-level 135, AAN 98; ``data-formats.md`` sections 1.1-1.3); a reader may take them from
``cfg.options["vocab_size"]``.
"""

from __future__ import annotations

from typing import Any

from .base import TaskData, TaskInfo
from .registry import register_task

#: name -> (n_classes, default seq_len, vocab_size or None, d_input or None, is_pair, description)
LRA_TASKS: dict[str, tuple[int, int, int | None, int | None, bool, str]] = {
    "listops": (10, 2048, 18, None, False, "LRA ListOps (listops-1000/basic_*.tsv)"),
    "text": (2, 4096, 135, None, False, "LRA Text: IMDB characters (aclImdb/)"),
    "retrieval": (2, 4000, 98, None, True, "LRA Retrieval: AAN document pairs (tsv_data/new_aan_pairs.*.tsv)"),
    "image": (10, 1024, None, 1, False, "LRA Image: grayscale CIFAR-10 (cifar-10-batches-py/)"),
    "pathfinder": (2, 1024, None, 1, False, "LRA Pathfinder 32x32 (pathfinder32/curv_contour_length_14)"),
    "pathx": (2, 16384, None, 1, False, "LRA Path-X 128x128 (pathfinder128/curv_contour_length_14)"),
}


def _make(name: str) -> None:
    n_classes, seq_len, vocab, d_input, pair, desc = LRA_TASKS[name]

    def info(cfg: Any) -> TaskInfo:
        v = cfg.options.get("vocab_size", vocab) if vocab is not None else None
        return TaskInfo(name, n_classes=n_classes, seq_len=cfg.seq_len or seq_len, vocab_size=v,
                        d_input=d_input, is_pair=pair, description=desc)

    def build(cfg: Any) -> TaskData:
        raise ValueError(f"the reader for LRA task {name!r} is not installed in this version of ptdssm "
                         f"(its config and model build, but training needs the reader)")

    register_task(name, info=info, build=build, description=desc)


for _name in LRA_TASKS:
    _make(_name)
