r"""What a run minimizes and reports, picked from the task's description (``TaskInfo.head`` / ``TaskInfo.loss``).

Shapes (``C`` = ``TaskInfo.n_classes``, or the vocabulary for ``head="lm"``; ``K`` = ``target_len``):

======== ====== ============================= ==================================================
head     loss   model output ``out``          target ``y`` (unscored positions)
======== ====== ============================= ==================================================
pooled   ce     ``(B, C)``                    int64 ``(B,)``
pooled   mse    ``(B, C)``                    float ``(B, C)`` (NaN)
last-k   ce     ``(B, K, C)``                 int64 ``(B, K)`` (-100)
token/lm ce     ``(B, L, C)``                 int64 ``(B, L)`` (-100 = :data:`IGNORE_INDEX`)
token    mse    ``(B, L, C)``                 float ``(B, L, C)`` (NaN)
forecast mse    ``(B, K, C)``                 float ``(B, K, C)`` (the horizon's scaled values)
======== ====== ============================= ==================================================

Cross-entropy: ``loss = mean over scored positions p of -log softmax(out_p)[y_p]``; accuracy is the fraction of
scored positions with ``argmax out_p == y_p``. MSE: ``loss = mse = mean over scored scalars (out - y)^2``, ``mae =
mean |out - y|``; forecasting (``head="forecast"``) also reports ``rmse = sqrt(mse)`` over the split (as SpaceTime
does), all three on the scaled values, as the benchmark reports them. ``n`` counts scored positions (CE: examples
for a pooled head) or scored scalars (MSE).
Language-model tasks (``head="lm"``) also report ``bpb``, bits per token: ``loss / ln 2``, the mean cross-entropy
in bits over scored positions; with the byte-level tokenizer (``TaskInfo.tokenizer == "bytes"``: one token per
byte) it is bits per byte, the usual figure for character-level language models.

``stats`` returns float64 sums ``[loss_sum, correct_or_sq_err, abs_err, count]`` that add across batches and
processes (``all_reduce``); ``summarize`` turns them into means. ``score`` orders validation results for the best
checkpoint: larger is better; cross-entropy tasks rank by ``(acc, -loss)`` (a tie in accuracy, common on small
validation sets, goes to the lower loss), regression and language-model tasks by ``(-loss,)`` (the held-out
cross-entropy, i.e. bits per byte, is what an LM is judged by); ``is_better`` never takes an empty
split or NaN metrics as an improvement.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "Objective"]

IGNORE_INDEX = -100


class Objective:
    """Loss and metrics of a task.

    Args:
        info: the task's :class:`~ptdssm.data.TaskInfo` (its ``head`` and ``loss``); ``None`` means a pooled
            classification task (cross-entropy), the default of every task before heads existed.
    """

    def __init__(self, info: Any = None) -> None:
        self.head = getattr(info, "head", "pooled") or "pooled"
        self.kind = getattr(info, "loss", "cross-entropy") or "cross-entropy"
        if self.kind not in ("cross-entropy", "mse"):
            raise ValueError(f"unknown TaskInfo.loss {self.kind!r}; expected cross-entropy or mse")
        self.regression = self.kind == "mse"
        self.lm = self.head == "lm" and not self.regression
        self.forecast = self.head == "forecast"

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Names of :meth:`summarize`'s keys besides ``loss`` and ``n``."""
        if self.regression:
            return ("mse", "mae", "rmse") if self.forecast else ("mse", "mae")
        return ("acc", "bpb") if self.lm else ("acc",)

    # --- per batch -------------------------------------------------------------------------------------------

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scalar mean loss over scored positions (differentiable, float32)."""
        out = out.float()
        if self.regression:
            mask = ~torch.isnan(y)
            diff = (out - torch.nan_to_num(y.to(out.dtype)))[mask]
            return diff.pow(2).mean() if diff.numel() else out.sum() * 0.0
        logits, target = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        if y.dim() > 1 and not bool((target != IGNORE_INDEX).any()):
            return out.sum() * 0.0  # a batch without a scored position contributes nothing
        return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)

    @torch.no_grad()
    def stats(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """float64 ``[loss_sum, correct (CE) or squared-error sum (MSE), abs-error sum (MSE; 0 for CE), count]``
        on ``out``'s device."""
        out = out.detach().float()
        if self.regression:
            mask = ~torch.isnan(y)
            diff = (out - torch.nan_to_num(y.to(out.dtype)))[mask].double()
            sq = diff.pow(2).sum()
            return torch.stack([sq, sq, diff.abs().sum(), torch.tensor(float(diff.numel()), dtype=torch.float64,
                                                                       device=sq.device)])
        logits, target = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        valid = target != IGNORE_INDEX
        loss_sum = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum").double()
        correct = ((logits.argmax(-1) == target) & valid).sum().double()
        return torch.stack([loss_sum, correct, torch.zeros_like(correct), valid.sum().double()])

    # --- over a split ----------------------------------------------------------------------------------------

    def summarize(self, stats: torch.Tensor) -> dict[str, Any]:
        """Means from summed :meth:`stats`: CE ``{"loss", "acc", "n"}`` (plus ``"bpb"`` = ``loss / ln 2`` for an
        ``lm`` head), MSE ``{"loss", "mse", "mae", "n"}`` (plus ``"rmse"`` for a ``forecast`` head)."""
        s = [float(v) for v in stats.double().cpu()]
        n = int(round(s[3]))
        mean = (lambda v: v / s[3]) if n else (lambda v: math.nan)
        if self.regression:
            out = {"loss": mean(s[0]), "mse": mean(s[1]), "mae": mean(s[2]), "n": n}
            if self.forecast:
                out["rmse"] = math.sqrt(out["mse"]) if out["mse"] >= 0 else math.nan
            return out
        out = {"loss": mean(s[0]), "acc": mean(s[1]), "n": n}
        if self.lm:
            out["bpb"] = out["loss"] / math.log(2.0)
        return out

    def score(self, metrics: dict[str, Any]) -> tuple[float, ...]:
        """Order of validation results for the best checkpoint (larger is better; NaN ranks lowest)."""
        def neg(v: float) -> float:
            return -math.inf if math.isnan(v) else -v

        if self.regression or self.lm:  # an LM is judged by its loss (bits per byte), not next-token accuracy
            return (neg(float(metrics["loss"])),)
        acc = float(metrics["acc"])
        return (-math.inf if math.isnan(acc) else acc, neg(float(metrics["loss"])))

    def is_better(self, metrics: dict[str, Any], best_score: tuple[float, ...] | list[float] | None) -> bool:
        """True if ``metrics`` beats ``best_score`` strictly (an exact tie keeps the earlier checkpoint).

        Metrics of an empty split (``n == 0``) or with a NaN value are never better, not even than no best at all
        (``best_score`` None): such a validation says nothing about the model, so no best checkpoint is taken.
        """
        if int(metrics.get("n", 1)) == 0:
            return False
        if any(math.isnan(float(metrics[k])) for k in ("loss", *self.metric_names) if k in metrics):
            return False
        return best_score is None or self.score(metrics) > tuple(best_score)
