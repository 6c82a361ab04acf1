"""The one owner of the checkpoint schema, of atomic writes, and of reading checkpoints back.

Every file a run writes goes through :func:`atomic_save` (``torch.save``) or :func:`atomic_write_text`: the bytes go
to a temp file in the same folder, are flushed and ``fsync``-ed, then ``os.replace`` moves them over the target, so a
reader (or a run killed with SIGKILL at any instant) sees either the old file or the new one, never half of one.

Schema, version :data:`CHECKPOINT_VERSION` (= 2). Both kinds hold::

    version      int     CHECKPOINT_VERSION
    kind         str     "last" or "best"
    config       dict    the resolved config (ptdssm.config.config_to_dict)
    task_info    dict    dataclasses.asdict(TaskInfo): everything needed to rebuild the model without the reader
    model        dict    state_dict of the (unwrapped) model
    epoch        int     completed epochs

``last.pt`` (written every epoch and every ``train.checkpoint_every`` optimizer steps) adds what an exact resume
needs::

    step_in_epoch   int          optimizer steps already done in epoch ``epoch`` (0: at an epoch boundary)
    global_step     int          optimizer steps since the start of the run
    optimizer, scheduler         their state_dicts
    rng             list[dict]   per process: torch / numpy / python (/ cuda) RNG states
    epoch_sums      list[list]   per process: running Objective.stats sums of the unfinished epoch (None at a boundary)
    epoch_examples  list[int]    per process: sequences trained on in the unfinished epoch (None at a boundary; may be
                                 absent in older files: samples_per_s only)
    epoch_time      float        seconds already spent in the unfinished epoch (for the time_s column only)
    best            dict         {"epoch", "score", "val"}: the best validation so far (epoch -1: none yet)
    metric_offsets  dict         byte sizes of metrics.jsonl / metrics.csv when it was written (resume truncates)
    last_record     dict | None  the last epoch record

``best.pt`` adds ``val`` (the validation metrics that made it the best).

Version 1 (ptdssm before checkpoint_every) is still read: it has no ``kind``, ``step_in_epoch``, ``epoch_sums``,
``best``; its ``best_val_acc`` / ``best_epoch`` are mapped onto ``best``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError

__all__ = ["CHECKPOINT_VERSION", "READABLE_VERSIONS", "atomic_save", "atomic_write_text", "best_payload",
           "checkpoint_contents", "last_payload", "read_checkpoint"]

CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# what resume_or_fresh reads from last.pt; a version-1 file names its own keys (best_epoch becomes best, and
# step_in_epoch / epoch_sums / epoch_time default to an epoch boundary)
_RESUME_KEYS = ("optimizer", "scheduler", "rng", "global_step", "epoch", "step_in_epoch", "epoch_sums", "epoch_time",
                "best", "metric_offsets")
_RESUME_KEYS_V1 = ("optimizer", "scheduler", "rng", "global_step", "epoch", "best_epoch", "metric_offsets")


def _atomic_write_bytes(write, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    _atomic_write_bytes(lambda f: torch.save(obj, f), Path(path))


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating the parent folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(lambda f: f.write(text.encode()), path)


def last_payload(*, config: dict, task_info: dict, model: dict, optimizer: dict, scheduler: dict, epoch: int,
                 step_in_epoch: int, global_step: int, rng: list, epoch_sums: list | None, epoch_time: float,
                 best: dict, metric_offsets: dict, last_record: dict | None,
                 epoch_examples: list | None = None) -> dict[str, Any]:
    """The ``last.pt`` dict of the current schema (see the module docstring)."""
    return {"version": CHECKPOINT_VERSION, "kind": "last", "config": config, "task_info": task_info, "model": model,
            "epoch": int(epoch), "step_in_epoch": int(step_in_epoch), "global_step": int(global_step),
            "optimizer": optimizer, "scheduler": scheduler, "rng": rng, "epoch_sums": epoch_sums,
            "epoch_time": float(epoch_time), "best": best, "metric_offsets": metric_offsets,
            "last_record": last_record, "epoch_examples": epoch_examples}


def best_payload(*, config: dict, task_info: dict, model: dict, epoch: int, val: dict) -> dict[str, Any]:
    """The ``best.pt`` dict of the current schema."""
    return {"version": CHECKPOINT_VERSION, "kind": "best", "config": config, "task_info": task_info, "model": model,
            "epoch": int(epoch), "val": dict(val)}


def _upgrade_v1(ckpt: dict) -> dict:
    """Map a version-1 dict onto the current keys (in place)."""
    ckpt.setdefault("kind", "last" if "optimizer" in ckpt else "best")
    ckpt.setdefault("step_in_epoch", 0)
    ckpt.setdefault("epoch_sums", None)
    ckpt.setdefault("epoch_time", 0.0)
    if "best" not in ckpt and "best_epoch" in ckpt:
        acc = float(ckpt.get("best_val_acc", -1.0))
        # version 1 ranked by accuracy alone, the earliest epoch winning ties: an infinite -loss keeps that
        ckpt["best"] = {"epoch": int(ckpt["best_epoch"]), "score": [acc, math.inf] if ckpt["best_epoch"] > 0 else None,
                        "val": {"acc": acc}}
    if "val" not in ckpt and "val_acc" in ckpt:
        ckpt["val"] = {"acc": float(ckpt["val_acc"])}
    return ckpt


def _reason(exc: BaseException, limit: int = 160) -> str:
    """``"Type: first line of the message"``, cut to ``limit`` characters (torch's messages run to paragraphs)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else (lines[0] if lines else "")
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def checkpoint_contents(path: str | os.PathLike[str], what: str = "its contents") -> Iterator[None]:
    """Apply what a checkpoint holds (weights, optimizer and scheduler states, RNG states, counters) inside this
    block: any error on the way becomes one :class:`CheckpointError` naming the file. ``ptdssm evaluate`` (loading
    a model) and ``ptdssm train --resume`` (restoring a run) share it, so a damaged or foreign file reads the same
    everywhere. Config and checkpoint errors raised inside pass through unchanged (they already name the key or
    file)."""
    try:
        yield
    except (CheckpointError, ConfigError):
        raise
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{path}: {what} do not fit ({_reason(exc)}); a damaged file, or one written by "
                              f"another model or version?") from None


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
                    resume: bool = False, required: Sequence[str] = ()) -> dict[str, Any]:
    """Load and check a checkpoint.

    Args:
        path: the file.
        map_location: where tensors go.
        resume: also require what an exact resume needs (optimizer, scheduler, RNG states, step counters).
        required: more keys that must be present.

    Returns:
        The checkpoint dict, upgraded to the current keys.

    Raises:
        CheckpointError: the file is missing, truncated or not a ptdssm checkpoint, or has an unknown schema version
            (one line, naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - whatever unpickling a damaged file raises (even MemoryError, TypeError)
        raise CheckpointError(f"{path}: not a readable ptdssm checkpoint (truncated or foreign file: "
                              f"{_reason(exc)})") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a ptdssm checkpoint (missing config or model state)")
    version = ckpt.get("version")
    if version is None:
        raise CheckpointError(f"{path}: not a ptdssm checkpoint (no schema version)")
    if version not in READABLE_VERSIONS:
        older = ", ".join(str(v) for v in READABLE_VERSIONS if v != CHECKPOINT_VERSION)
        raise CheckpointError(f"checkpoint {path} has schema version {version}; this ptdssm reads version "
                              f"{CHECKPOINT_VERSION}" + (f" (and older {older})" if older else ""))
    missing = [k for k in (_RESUME_KEYS_V1 if version == 1 else _RESUME_KEYS) if k not in ckpt] if resume else []
    if version == 1:
        ckpt = _upgrade_v1(ckpt)
    missing += [k for k in required if k not in ckpt and k not in missing]
    if missing:
        what = "resume from" if resume else "use"
        hint = " (a best.pt? resume reads checkpoints/last.pt)" if resume and "optimizer" in missing else ""
        raise CheckpointError(f"cannot {what} {path} (schema version {version}): it lacks {', '.join(missing)}"
                              + hint)
    return ckpt
