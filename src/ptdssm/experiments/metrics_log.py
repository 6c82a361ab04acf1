"""The run's metric files: ``metrics.jsonl`` (every record), ``metrics.csv`` (epoch records), optional TensorBoard.

Only rank 0 writes (``enabled``). Files are append-only; a checkpoint records their byte sizes (:meth:`offsets`) and
a resume cuts them back to those sizes (:meth:`truncate`), so records of work that is redone are never duplicated.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MetricsLog", "csv_fields"]


def csv_fields(metric_names: Sequence[str]) -> tuple[str, ...]:
    """CSV columns of the epoch records for an objective with these metric names (e.g. ``("acc",)``)."""
    train = ("train_loss", *(f"train_{m}" for m in metric_names))
    val = ("val_loss", *(f"val_{m}" for m in metric_names))
    return ("epoch", "step", "lr", *train, *val, "time_s", "samples_per_s")


class MetricsLog:
    """Append-only JSONL + CSV (epoch records) + optional TensorBoard.

    Args:
        out: the run directory.
        enabled: write at all (rank 0 only).
        tensorboard: also log scalars to ``out/tensorboard`` (a warning if TensorBoard is not installed).
        fields: CSV columns (see :func:`csv_fields`).
    """

    def __init__(self, out: Path, enabled: bool, tensorboard: bool, fields: Sequence[str] = csv_fields(("acc",))):
        self.enabled, self.fields = enabled, tuple(fields)
        self.jsonl, self.csv = out / "metrics.jsonl", out / "metrics.csv"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                warnings.warn("train.tensorboard is on but TensorBoard is not installed; logging JSONL/CSV only",
                              stacklevel=2)

    def offsets(self) -> dict[str, int]:
        """Current byte sizes of the two files (0 for a missing file)."""
        return {str(p.name): (p.stat().st_size if p.exists() else 0) for p in (self.jsonl, self.csv)}

    def truncate(self, offsets: dict[str, int]) -> None:
        """Cut the files back to the sizes recorded in a checkpoint (drops records written after it)."""
        if not self.enabled:
            return
        for p in (self.jsonl, self.csv):
            if p.exists():
                with open(p, "r+b") as f:
                    f.truncate(offsets.get(p.name, 0))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (and a CSV row if ``record["kind"] == "epoch"``)."""
        if not self.enabled:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
        if record.get("kind") == "epoch":
            new = not self.csv.exists() or self.csv.stat().st_size == 0
            with open(self.csv, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow(record)
        if self.tb is not None:
            step = int(record.get("step", 0))
            for k, v in record.items():
                if isinstance(v, float) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"{record.get('kind', 'x')}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
