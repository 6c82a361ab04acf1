"""What every ``ptdssm bench`` case shares: timing, peak memory, the subprocess runner and the load average.

**Timing** (:func:`time_ms`): one warm-up call, then ``repeats`` calls; the least wall-clock time (``ms``), the
median (``median_ms``) and the least CPU time of the process (``cpu_ms``, ``time.process_time``: with one thread it
leaves out the time the process waited for a core, which is what moves on a loaded machine).

**One call** (:func:`make_step`): ``fwd`` is the forward under ``torch.no_grad``; ``fwdbwd`` clears the gradients,
runs the forward with autograd and back-propagates a fixed dense random output gradient made at set-up (as the
layers above would send it in training; no ``sum()``, whose gradient is a stride-0 tensor of ones).

**Peak memory** (:func:`measure`): the rise of the process's peak resident set (``VmHWM``) during the timed calls
over the RSS after set-up (parameters, input and output gradient) and a warm-up call, i.e. the extra memory of the
call. Before the timed calls the freed heap is returned to the OS (``malloc_trim``) and the peak is reset to the
current RSS (``/proc/self/clear_refs``), so several cases can run one after the other in one process, each with its
own peak (:func:`reset_peak` says whether that works; where it does not, every case needs a fresh process).

**Subprocesses** (:func:`run_calls`): ``ptdssm.bench.<function>(*args, **kwargs)`` for a list of calls in one fresh
interpreter (with the parent's ``sys.path`` and ``OMP_NUM_THREADS``), each result row (a dict with a ``"kind"``)
printed as one JSON line as soon as its call returns, so the rows of calls that finished before a failure are kept.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["importable", "load_average", "load_class", "make_step", "measure", "peak_mib", "reset_peak", "run_calls",
           "time_ms"]


def importable(cls: type) -> bool:
    """Whether a fresh interpreter can import ``cls`` by ``module`` and ``qualname`` (not from ``__main__``, not
    defined inside a function)."""
    return cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__


def load_class(module: str, qualname: str) -> type:
    """The class ``module.qualname`` (``qualname`` may be dotted, for a nested class)."""
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS has none."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def peak_mib() -> float:
    """Peak RSS of this process since start or the last :func:`reset_peak` (``VmHWM``; else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak() -> bool:
    """Return freed heap memory to the OS (``malloc_trim``, glibc) and reset the peak RSS to the current RSS (Linux
    ``/proc/self/clear_refs``); ``False`` where the peak cannot be reset (then each case needs its own process)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_ms(fn: Callable[[], None], repeats: int, warmup: bool = True) -> dict[str, float]:
    """Milliseconds of ``fn`` over ``repeats`` calls (after a warm-up call, with ``warmup``): least wall-clock
    ``ms``, median ``median_ms`` and least process CPU time ``cpu_ms``."""
    if warmup:
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"ms": 1e3 * min(wall), "median_ms": 1e3 * statistics.median(wall), "cpu_ms": 1e3 * min(cpu)}


def make_step(forward: Callable[[], Any], leaves: Sequence[Any], out_grads: Sequence[Any],
              mode: str) -> Callable[[], None]:
    """One timed call of ``forward() -> tensor or list of tensors``: under ``torch.no_grad`` (``mode="fwd"``), or
    (``"fwdbwd"``) with the gradients of ``leaves`` (inputs and parameters) cleared first and
    ``torch.autograd.backward(outputs, out_grads)`` after."""
    import torch

    if mode not in ("fwd", "fwdbwd"):
        raise ValueError(f"mode must be 'fwd' or 'fwdbwd', got {mode!r}")

    def step() -> None:
        if mode == "fwd":
            with torch.no_grad():
                forward()
            return
        for t in leaves:
            t.grad = None
        out = forward()
        torch.autograd.backward(list(out) if isinstance(out, (list, tuple)) else [out], list(out_grads))

    return step


def measure(step: Callable[[], None], repeats: int) -> dict[str, float]:
    """One warm-up call of ``step`` (lazy set-up of libraries and caches is not the call's memory), then
    :func:`reset_peak` and :func:`time_ms` of ``repeats`` calls, and their ``peak_mib`` (peak RSS rise over the RSS
    before them)."""
    step()
    reset_peak()
    base = peak_mib()
    t = time_ms(step, repeats, warmup=False)
    return {**t, "peak_mib": peak_mib() - base}


def _child_env(threads: int) -> dict[str, str]:
    path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}


def run_calls(calls: list[tuple[str, list[Any], dict[str, Any]]], threads: int) -> tuple[list[dict[str, Any]], str]:
    """``ptdssm.bench.<function>(*args, **kwargs)`` for each call, in order, in one fresh interpreter (module
    docstring): ``(rows, error line or "")``, the rows of the calls that finished before a failure kept."""
    code = ("import json, ptdssm.bench as bench\n"
            f"for f, a, k in json.loads({json.dumps(calls)!r}):\n"
            "    print('\\n'.join(json.dumps(r) for r in getattr(bench, f)(*a, **k)), flush=True)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(threads))
    rows = []
    for line in proc.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "kind" in row:  # not a stray print of the code under test
            rows.append(row)
    if proc.returncode == 0:
        return rows, ""
    return rows, (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode} (killed?)"])[-1]
