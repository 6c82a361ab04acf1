r"""The timescale rule of *How to Train Your HiPPO* (Gu et al., ICLR 2023, sec. 4): ``dt`` sets the memory length.

An SSM discretized with step ``dt`` runs its continuous system at ``dt`` time units per step, so a basis of window
``W`` time units (:mod:`ptdssm.theory.basis`) covers ``W / dt`` steps. The window in time units of each init's
measure (:data:`WINDOW_OF_MEASURE`): LegT and FouT in s4's normalisation have a sharp window ``W = 2`` (so ``2/dt``
steps); LegS and the other diagonal inits have no sharp window and the paper's timescale ``1/dt`` (``W = 1``).

The rule: draw ``dt`` log-uniformly in ``[dt_min, dt_max]`` so that the windows ``W/dt`` span the dependency lengths
``[min_len, max_len]`` (in steps) the task needs::

    dt_min = W / max_len,     dt_max = W / min_len.

E.g. the continuous delay task (lag 1000 steps) with S4-LegT or S4-FouT: ``min_len = max_len = 1000`` gives the paper's
fixed ``dt = 0.002``. The layers take it as ``model.layer.dt_lengths: [min_len, max_len]`` (it then replaces
``dt_min``/``dt_max``). s4's default ``[1e-3, 1e-1]`` is, for LegS, lengths 10 to 1000 steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["WINDOW_OF_MEASURE", "dt_range", "init_window"]

#: Window (LegT, FouT) or timescale (the rest) in time units of each measure.
WINDOW_OF_MEASURE = {"legs": 1.0, "legt": 2.0, "fout": 2.0}


def init_window(init: str | None) -> float:
    """Window ``W`` in time units of the named init (:data:`~ptdssm.theory.init.MEASURE_OF_INIT`; ``1`` for inits
    without a sharp window: LegS, PTD, ``s4d-inv``, ``s4d-real``, ``None``)."""
    from .init import MEASURE_OF_INIT

    return WINDOW_OF_MEASURE.get(MEASURE_OF_INIT.get(init or "", "legs"), 1.0)


def dt_range(lengths: Sequence[float], window: float = 1.0, *, name: str = "dt_lengths") -> tuple[float, float]:
    """``(dt_min, dt_max) = (window / max_len, window / min_len)`` for ``lengths = [min_len, max_len]`` in steps.

    Args:
        lengths: two finite numbers ``0 < min_len <= max_len`` (steps); one number means ``[len, len]``.
        window: the basis window in time units (:func:`init_window`).
        name: the argument's name in error messages.

    Raises:
        ValueError: one line naming ``name``, for anything but one or two finite positive numbers in order.
    """
    vals = [lengths] if isinstance(lengths, (int, float)) and not isinstance(lengths, bool) else lengths
    try:
        seq = [float(v) for v in vals if not isinstance(v, bool)]
        ok = 1 <= len(seq) == len(vals) <= 2  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ok = False
    if not ok or not all(math.isfinite(v) and v > 0 for v in seq):
        raise ValueError(f"{name} must be [min_len, max_len], two finite numbers of steps > 0, got {lengths!r}")
    lo, hi = seq[0], seq[-1]
    if lo > hi:
        raise ValueError(f"{name} must be [min_len, max_len] with min_len <= max_len, got {lengths!r}")
    if not (math.isfinite(window) and window > 0):
        raise ValueError(f"window must be a finite number > 0, got {window!r}")
    return window / hi, window / lo
