"""Layer benchmark: forward and forward+backward time, throughput and peak memory, as ratios to the FFT floor.

Each layer is benchmarked the way the public S4D layer is built: the SSM (kernel, FFT convolution, D skip), GELU,
then a position-wise ``Linear(H, 2H)`` with GLU. The *FFT floor* is an ``rfft`` then ``irfft`` of a
``(B, H, 2L)`` float32 tensor (the least any FFT-convolution layer must do), measured in the same run; every
layer's time is reported as a ratio to it, which makes numbers comparable across machines.

The layers are the registered families (:mod:`ptdssm.layers.registry`), built with
:func:`~ptdssm.layers.registry.layer_kwargs` of ``family.bench``: ``family.defaults``, ``init=family.init``, then
``family.bench`` (e.g. S5: ``d_state`` 256, ``blocks`` 4), so a family registered at run
time (e.g. by a test file) can be benchmarked by name.

Every case runs in its own subprocess, so that its peak resident memory (``ru_maxrss``) minus the memory after
set-up is its own. The subprocess imports the layer class by ``module`` and ``qualname`` (with the parent's
``sys.path``) and builds it from the JSON-encoded kwargs, so it does not need the family to be registered there.
A family whose class cannot be imported that way (defined in ``__main__`` or inside a function) or whose kwargs are
not JSON-encodable runs in-process instead (its row gets ``"in_process": true``; peak memory then includes the
parent's earlier allocations). Times are medians over repeats after a warm-up, with
``torch.set_num_threads(threads)``.

:func:`run_mamba_benchmark` (``ptdssm bench mamba``) times the Mamba-1 and Mamba-2 mixers themselves (no wrapper)
against *their own Linear layers alone* (same shapes, measured in the same run) and the FFT floor, and the per-token
cost of streaming (``step`` after a ``prefill`` of ``L`` tokens) against ``L``. Each (case, length) runs in its own
subprocess; its modes (``fwd``, ``fwdbwd``) run one after the other there, with freed memory returned to the OS
(``malloc_trim``) and the peak RSS reset (``/proc/self/clear_refs``) between them, so each mode's peak is its own
(where the peak cannot be reset, each mode gets its own process). Times are the least over the repeats, wall-clock
and process CPU time: on a loaded machine the latter is the steadier with one thread.
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

__all__ = ["bench_layers", "format_mamba_table", "profile_mamba", "run_benchmark", "run_case", "run_mamba_benchmark",
           "run_mamba_case"]


def bench_layers() -> dict[str, tuple[type, dict[str, Any]]]:
    """``name -> (layer class, kwargs)`` for every registered family, read from the registry at call time."""
    from .layers.registry import family_names, get_family, layer_kwargs

    return {name: (get_family(name).layer, layer_kwargs(name, get_family(name).bench)) for name in family_names()}


def _importable(cls: type) -> bool:
    return cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__


def _load_class(module: str, qualname: str) -> type:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timeit(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: kernel caches, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run_case(name: str, B: int, H: int, L: int, mode: str, repeats: int, threads: int,
             layer: tuple[str, str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Time one (layer or ``floor``, length, mode) in this process. ``mode`` is ``fwd`` or ``fwdbwd``; ``layer`` is
    ``(module, qualname, kwargs)`` of the layer class (default: the registered family ``name``)."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if name == "floor":
        x = torch.randn(B, H, 2 * L, requires_grad=mode == "fwdbwd")

        def forward() -> torch.Tensor:
            return torch.fft.irfft(torch.fft.rfft(x), n=2 * L)
    else:
        if layer is None:
            cls, kwargs = bench_layers()[name]
        else:
            cls, kwargs = _load_class(layer[0], layer[1]), layer[2]
        ssm = cls(H, **kwargs)
        block = nn.Sequential(nn.GELU(), nn.Linear(H, 2 * H), nn.GLU(dim=-1))
        x = torch.randn(B, L, H, requires_grad=mode == "fwdbwd")

        def forward() -> torch.Tensor:
            return block(ssm(x))

    def step() -> None:
        if mode == "fwd":
            with torch.no_grad():
                forward()
        else:
            forward().sum().backward()

    base = _rss_mib()
    ms = _timeit(step, repeats)
    return {"name": name, "L": L, "mode": mode, "ms": ms, "tokens_per_s": B * L / (ms / 1e3),
            "peak_mib": _rss_mib() - base}


def _case_subprocess(name: str, B: int, H: int, L: int, mode: str, repeats: int, threads: int,
                     layer: tuple[str, str, dict[str, Any]] | None) -> dict[str, Any]:
    spec = json.dumps(layer)
    code = ("import json, sys; from ptdssm.bench import run_case; "
            f"print(json.dumps(run_case({name!r}, {B}, {H}, {L}, {mode!r}, {repeats}, {threads}, "
            f"json.loads({spec!r}))))")
    path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "L": L, "mode": mode, "error": err}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _spec(cls: type, kwargs: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """``(module, qualname, kwargs)`` for the subprocess, or ``None`` if the case must run in-process."""
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError):
        return None
    return (cls.__module__, cls.__qualname__, kwargs) if _importable(cls) else None


def _run_one(name: str, B: int, H: int, L: int, mode: str, repeats: int, threads: int,
             table: dict[str, tuple[type, dict[str, Any]]]) -> dict[str, Any]:
    if name == "floor":
        return _case_subprocess(name, B, H, L, mode, repeats, threads, None)
    spec = _spec(*table[name])
    if spec is not None:
        return _case_subprocess(name, B, H, L, mode, repeats, threads, spec)
    import torch

    n_threads = torch.get_num_threads()
    try:
        return {**run_case(name, B, H, L, mode, repeats, threads), "in_process": True}
    except Exception as exc:  # noqa: BLE001 - reported in the row, as a failing subprocess would be
        return {"name": name, "L": L, "mode": mode, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        torch.set_num_threads(n_threads)


def run_benchmark(layers: Sequence[str] | None = None, lengths: Sequence[int] = (1024, 4096, 16384), *,
                  B: int = 16, H: int = 256, repeats: int = 3, threads: int = 2,
                  progress: bool = True) -> dict[str, Any]:
    """Benchmark ``layers`` (registered family names; default all) at each length, with the FFT floor measured in
    the same run.

    Returns:
        ``{"config": {...}, "rows": [...]}``; each row has ``name, L, fwd_ms, fwdbwd_ms, tokens_per_s`` (forward),
        ``fwd_ratio``, ``fwdbwd_ratio`` (to the floor at the same L) and ``peak_mib`` (forward+backward, above the
        post-set-up baseline) with ``mem_ratio`` to the floor's.
    """
    table = bench_layers()
    layers = list(table) if layers is None else list(layers)
    unknown = [n for n in layers if n not in table]
    if unknown:
        raise ValueError(f"--layers: unknown layer(s) {', '.join(unknown)}; expected some of: {', '.join(table)}")
    if not lengths or any(int(L) < 1 for L in lengths):
        raise ValueError(f"lengths must be positive integers, got {list(lengths)}")
    cases = [(n, int(L)) for L in lengths for n in ("floor", *layers)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(cases), desc="bench", file=sys.stderr)
    raw: dict[tuple[str, int, str], dict[str, Any]] = {}
    for name, L in cases:
        for mode in ("fwd", "fwdbwd"):
            if bar is not None:
                bar.set_postfix(layer=name, L=L, mode=mode)
            raw[(name, L, mode)] = _run_one(name, B, H, L, mode, repeats, threads, table)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    rows = []
    for name, L in cases:
        f, fb = raw[(name, L, "fwd")], raw[(name, L, "fwdbwd")]
        ff, ffb = raw[("floor", L, "fwd")], raw[("floor", L, "fwdbwd")]
        row: dict[str, Any] = {"name": name, "L": L}
        if "error" in f or "error" in fb:
            row["error"] = f.get("error") or fb.get("error")
        else:
            row.update(fwd_ms=f["ms"], fwdbwd_ms=fb["ms"], tokens_per_s=f["tokens_per_s"], peak_mib=fb["peak_mib"])
            if f.get("in_process"):
                row["in_process"] = True
            if "error" not in ff and "error" not in ffb:
                row.update(fwd_ratio=f["ms"] / ff["ms"], fwdbwd_ratio=fb["ms"] / ffb["ms"],
                           mem_ratio=fb["peak_mib"] / max(ffb["peak_mib"], 1e-9))
        rows.append(row)
    layer_kwargs = {n: table[n][1] if _spec(*table[n]) is not None else repr(table[n][1]) for n in layers}
    return {"config": {"B": B, "H": H, "threads": threads, "repeats": repeats, "layers": layer_kwargs,
                       "torch": __import__("torch").__version__}, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`run_benchmark`'s rows."""
    lines = ["| layer | L | fwd ms | fwd+bwd ms | tokens/s | fwd / floor | fwd+bwd / floor | peak MiB | mem / floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['L']} | error: {r['error']} |||||||")
            continue
        lines.append(f"| {r['name']} | {r['L']} | {r['fwd_ms']:.1f} | {r['fwdbwd_ms']:.1f} | "
                     f"{r['tokens_per_s']:.3g} | {r.get('fwd_ratio', float('nan')):.2f} | "
                     f"{r.get('fwdbwd_ratio', float('nan')):.2f} | {r['peak_mib']:.0f} | "
                     f"{r.get('mem_ratio', float('nan')):.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Mamba-1 / Mamba-2 blocks against their own Linear layers (``ptdssm bench mamba``)
# ---------------------------------------------------------------------------------------------------------------

MAMBA_MODELS = ("mamba", "mamba2")
#: issue 10's targets at L = 4096: fwd+bwd time / the block's own Linear layers, and memory in MiB
MAMBA_TARGETS = {"mamba": 4.0, "mamba2": 3.0, "mem_mib_4096": 2048.0, "fwd_mem_mib_16384": 8192.0}


def _mamba_layer(model: str, H: int, d_state: int, expand: int, headdim: int) -> Any:
    from .layers.mamba import Mamba
    from .layers.mamba2 import Mamba2

    if model == "mamba":
        return Mamba(H, d_state=d_state, expand=expand)
    return Mamba2(H, d_state=d_state, expand=expand, headdim=min(headdim, expand * H))


class _MambaLinears:
    """The Linear layers of a Mamba-1 / Mamba-2 block alone, with the block's shapes, chained by one elementwise
    op so that forward+backward runs through all of them: Mamba-1 ``in_proj -> (x, z)``, ``x_proj(x) -> dt``,
    ``dt_proj(dt)``, ``out_proj(x * z + dt)``; Mamba-2 ``in_proj -> (z, x, ...)``, ``out_proj(x * z)``."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.mamba1 = hasattr(layer, "x_proj")

    def __call__(self, u: Any) -> Any:
        import torch.nn.functional as F

        m = self.layer
        E = m.d_inner
        xz = F.linear(u, m.in_proj.weight, m.in_proj.bias)
        x, z = xz[..., :E], xz[..., E:2 * E]
        if self.mamba1:
            dt = F.linear(F.linear(x, m.x_proj.weight)[..., :m.dt_rank], m.dt_proj.weight, m.dt_proj.bias)
            y = x * z + dt
        else:
            y = x * z
        return F.linear(y, m.out_proj.weight, m.out_proj.bias)


def _linears_of(layer: Any) -> list[str]:
    names = ["in_proj", "x_proj", "dt_proj", "out_proj"] if hasattr(layer, "x_proj") else ["in_proj", "out_proj"]
    return [f"{n} {getattr(layer, n).in_features}->{getattr(layer, n).out_features}" for n in names]


def _peak_mib() -> float:
    """Peak RSS of this process since start or the last :func:`_reset_peak` (``VmHWM``; else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _rss_mib()


def _reset_peak() -> bool:
    """Return freed heap memory to the OS (``malloc_trim``, glibc) and reset the peak RSS to the current RSS (Linux
    ``/proc/self/clear_refs``), so that the next case's peak rise is measured as in a fresh process; ``False`` where
    the peak cannot be reset, in which case each mode needs its own process."""
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


def _time_ms(fn: Callable[[], None], repeats: int) -> dict[str, float]:
    """Milliseconds of ``fn`` over ``repeats`` calls after a warm-up call: the least wall-clock time ``ms``, the
    median ``median_ms``, and the least CPU time of this process ``cpu_ms`` (``time.process_time``: with one thread
    it leaves out the time the process waited for a core, which is what moves on a loaded machine)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"ms": 1e3 * min(wall), "median_ms": 1e3 * statistics.median(wall), "cpu_ms": 1e3 * min(cpu)}


def run_mamba_case(kind: str, modes: Sequence[str], *, L: int, B: int, H: int, repeats: int, threads: int,
                   d_state: int = 16, expand: int = 2, headdim: int = 64, **_: Any) -> list[dict[str, Any]]:
    """One case of :func:`run_mamba_benchmark` in this process, a row per mode (``fwd``, ``fwdbwd``).

    ``kind``: ``mamba`` / ``mamba2`` (the mixer), ``mamba-linear`` / ``mamba2-linear`` (its Linear layers alone,
    :class:`_MambaLinears`) or ``floor`` (rfft + irfft of ``(B, H, 2L)``). ``peak_mib`` is the rise of the peak RSS
    during that mode over the RSS after its set-up (parameters and input); the peak is reset before each mode
    where the OS allows (Linux), else it is the process's peak so far."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = kind.split("-")[0]
    if model == "floor":
        fn: Any = lambda x: torch.fft.irfft(torch.fft.rfft(x), n=2 * L)  # noqa: E731
        params: list[Any] = []
        shape = (B, H, 2 * L)
    else:
        layer = _mamba_layer(model, H, d_state, expand, headdim)
        params = list(layer.parameters())
        fn = _MambaLinears(layer) if kind.endswith("-linear") else layer
        shape = (B, L, H)
    rows = []
    for mode in modes:
        _reset_peak()
        step = _mamba_step(fn, torch.randn(*shape, requires_grad=mode == "fwdbwd"), params, mode)
        base = _peak_mib()
        t = _time_ms(step, repeats)
        rows.append({"kind": kind, "L": L, "mode": mode, **t, "tokens_per_s": B * L / (t["ms"] / 1e3),
                     "peak_mib": _peak_mib() - base})
        del step
    return rows


def _mamba_step(fn: Callable[[Any], Any], x: Any, params: list[Any], mode: str) -> Callable[[], None]:
    """One timed call: ``fn(x)`` without grad (``fwd``), or ``fn(x).sum().backward()`` with fresh gradients."""
    import torch

    def step() -> None:
        if mode == "fwd":
            with torch.no_grad():
                fn(x)
        else:
            x.grad = None
            for p in params:
                p.grad = None
            fn(x).sum().backward()

    return step


def run_mamba_stream(model: str, lengths: Sequence[int], *, B: int, H: int, repeats: int, threads: int,
                     d_state: int = 16, expand: int = 2, headdim: int = 64, steps: int = 64,
                     **_: Any) -> list[dict[str, Any]]:
    """Streaming cost of ``model`` in this process: for each ``L`` (``0``: the state from ``init_state``, else from
    ``prefill`` of ``L`` random tokens, timed once), ``steps`` calls of ``step`` timed per token: the least wall-clock
    time ``ms_per_token`` (and the median, and the least CPU time) of ``max(repeats, 10)`` passes after a warm-up
    pass, each pass from the same state."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = _mamba_layer(model, H, d_state, expand, headdim)
    xs = torch.randn(B, steps, H)
    rows = []
    with torch.no_grad():
        for L in lengths:
            t0 = time.perf_counter()
            state0 = layer.init_state(B) if L == 0 else layer.prefill(torch.randn(B, L, H))[1]
            prefill_ms = 1e3 * (time.perf_counter() - t0)
            times, cpu = [], []
            for rep in range(max(repeats, 10) + 1):  # a pass is ~steps ms: ten cost little and steady the minimum
                state = state0
                t0, c0 = time.perf_counter(), time.process_time()
                for t in range(steps):
                    _, state = layer.step(xs[:, t], state)
                if rep:
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
            ms = 1e3 * min(times) / steps
            rows.append({"kind": model, "L": L, "mode": "stream", "prefill_ms": prefill_ms, "ms_per_token": ms,
                         "median_ms_per_token": 1e3 * statistics.median(times) / steps,
                         "cpu_ms_per_token": 1e3 * min(cpu) / steps, "steps": steps, "tokens_per_s": B / (ms / 1e3)})
    return rows


def _mamba_subprocess(calls: list[tuple[str, list[Any], dict[str, Any]]], threads: int) -> tuple[list[Any], str]:
    """``ptdssm.bench.<func>(*args, **kw)`` for each call, in order, in one fresh interpreter, each row printed as
    one JSON line as soon as its call returns: ``(rows, error line or "")``, the rows of the calls that finished
    before a failure kept."""
    code = ("import json; from ptdssm import bench\n"
            f"for f, a, k in json.loads({json.dumps(calls)!r}):\n"
            "    print('\\n'.join(json.dumps(r) for r in getattr(bench, f)(*a, **k)), flush=True)")
    path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
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


def run_mamba_benchmark(lengths: Sequence[int] = (1024, 4096), *, models: Sequence[str] = MAMBA_MODELS,
                        modes: Sequence[str] = ("fwd", "fwdbwd"), B: int = 8, H: int = 256, d_state: int = 16,
                        expand: int = 2, headdim: int = 64, repeats: int = 3, threads: int = 1,
                        stream: bool = True, stream_steps: int = 64, floor: bool = True,
                        progress: bool = True) -> dict[str, Any]:
    """Mamba-1 / Mamba-2 mixers against their own Linear layers (:class:`_MambaLinears`) and the FFT floor, at each
    length and mode, every case in its own subprocess; then, with ``stream``, the per-token cost of ``step`` after a
    prefill of ``0`` and each ``L`` tokens.

    Returns:
        ``{"config": {...}, "load_avg": {"start": [1, 5, 15 min], "end": [...]}, "rows": [...],
        "stream": [...], "targets": [...]}``. A row (one model, ``L``, mode) has the block's ``ms`` (least
        wall-clock time over the repeats), ``median_ms``, ``cpu_ms`` (least process CPU time), ``tokens_per_s`` and
        ``peak_mib`` (peak RSS rise over the set-up), the Linear layers' ``linear_ms``, ``linear_cpu_ms`` and
        ``linear_peak_mib``, the floor's ``floor_ms``, and the ratios ``ratio`` (block / Linear layers, wall-clock),
        ``cpu_ratio`` (the same in CPU time) and ``floor_ratio``. A stream row has ``prefill_ms``,
        ``ms_per_token``, ``cpu_ms_per_token`` and ``rel`` (CPU time per token / that at ``L = 0``). A target has
        ``what``, ``target``, ``measured`` / ``met`` (wall-clock) and, for the time ratios, ``cpu_measured`` /
        ``cpu_met``.
    """
    bad = [m for m in models if m not in MAMBA_MODELS]
    if bad:
        raise ValueError(f"--models: unknown {', '.join(bad)}; expected some of: {', '.join(MAMBA_MODELS)}")
    bad = [m for m in modes if m not in ("fwd", "fwdbwd")]
    if bad:
        raise ValueError(f"--modes: unknown {', '.join(bad)}; expected fwd and/or fwdbwd")
    if not lengths or any(int(L) < 1 for L in lengths):
        raise ValueError(f"lengths must be positive integers, got {list(lengths)}")
    for name, v in (("batch", B), ("width", H), ("d_state", d_state), ("expand", expand), ("headdim", headdim),
                    ("repeats", repeats), ("threads", threads), ("stream_steps", stream_steps)):
        if int(v) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if "mamba2" in models and (expand * H) % min(headdim, expand * H):
        raise ValueError(f"--headdim {headdim} must divide expand * width = {expand * H}")
    kw = {"B": B, "H": H, "repeats": repeats, "threads": threads, "d_state": d_state, "expand": expand,
          "headdim": headdim, "steps": stream_steps}
    lengths = [int(L) for L in lengths]
    kinds = [k for m in models for k in (m, f"{m}-linear")] + (["floor"] if floor else [])
    # One process per (kind, L) running every mode (the peak RSS is reset between modes; where it cannot be, one
    # process per mode). The streaming rows of a model run after its block cases at the first length, in the same
    # process: they report no memory, and one interpreter start fewer keeps small runs short.
    groups = [list(modes)] if _reset_peak() else [[mode] for mode in modes]
    jobs: list[tuple[str, list[tuple[str, list[Any], dict[str, Any]]], list[tuple[str, int, str]]]] = []
    for L in lengths:
        for g in groups:
            for k in kinds:
                calls = [("run_mamba_case", [k, [mode]], {**kw, "L": L}) for mode in g]
                keys = [(k, L, mode) for mode in g]
                if stream and k in models and L == lengths[0] and g is groups[0]:
                    calls.append(("run_mamba_stream", [k, [0, *lengths]], kw))
                    keys += [(k, Ls, "stream") for Ls in (0, *lengths)]
                jobs.append((k, calls, keys))
    load_start = os.getloadavg()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        print(f"load average at start: {' / '.join(f'{v:.2f}' for v in load_start)} (1 / 5 / 15 min, "
              f"{os.cpu_count()} CPUs)", file=sys.stderr)
        bar = tqdm(total=len(jobs), desc="bench mamba", file=sys.stderr)
    raw: dict[tuple[str, int, str], dict[str, Any]] = {}
    for kind, calls, keys in jobs:
        if bar is not None:
            bar.set_postfix(case=kind, L=keys[0][1], modes="+".join(m for _, _, m in keys if m != "stream"))
        out, err = _mamba_subprocess(calls, threads)
        for i, key in enumerate(keys):
            raw[key] = out[i] if i < len(out) else {"error": err or "no output"}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    load_end = os.getloadavg()

    rows = []
    for L in lengths:
        for mode in modes:
            for m in models:
                blk, lin = raw[(m, L, mode)], raw[(f"{m}-linear", L, mode)]
                fl = raw.get(("floor", L, mode), {"error": "not run"})
                row: dict[str, Any] = {"model": m, "L": L, "mode": mode}
                if "error" in blk:
                    row["error"] = blk["error"]
                else:
                    row.update(ms=blk["ms"], median_ms=blk["median_ms"], cpu_ms=blk["cpu_ms"],
                               tokens_per_s=blk["tokens_per_s"], peak_mib=blk["peak_mib"])
                if "error" in lin:
                    row["linear_error"] = lin["error"]
                else:
                    row.update(linear_ms=lin["ms"], linear_cpu_ms=lin["cpu_ms"], linear_peak_mib=lin["peak_mib"])
                    if "ms" in row:
                        row["ratio"] = row["ms"] / lin["ms"]
                        row["cpu_ratio"] = row["cpu_ms"] / max(lin["cpu_ms"], 1e-9)
                if "error" not in fl:
                    row["floor_ms"] = fl["ms"]
                    if "ms" in row:
                        row["floor_ratio"] = row["ms"] / fl["ms"]
                rows.append(row)
    stream_rows = []
    for m in models if stream else ():
        first = None
        for L in (0, *lengths):
            r = raw[(m, L, "stream")]
            srow: dict[str, Any] = {"model": m, "L": L}
            if "error" in r:
                srow["error"] = r["error"]
            else:
                srow.update(prefill_ms=r["prefill_ms"], ms_per_token=r["ms_per_token"],
                            cpu_ms_per_token=r["cpu_ms_per_token"], steps=r["steps"])
                first = r["cpu_ms_per_token"] if first is None else first
                srow["rel"] = r["cpu_ms_per_token"] / max(first, 1e-9)
            stream_rows.append(srow)
    import torch

    config = {"B": B, "H": H, "d_state": d_state, "expand": expand, "d_inner": expand * H,
              "headdim": min(headdim, expand * H), "dtype": "float32", "repeats": repeats, "threads": threads,
              "stream_steps": stream_steps, "torch": torch.__version__, "cpus": os.cpu_count(),
              "linears": {m: _linears_of(_mamba_layer(m, H, d_state, expand, headdim)) for m in models}}
    return {"config": config, "load_avg": {"start": list(load_start), "end": list(load_end)}, "rows": rows,
            "stream": stream_rows, "targets": _mamba_targets(rows)}


def _mamba_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 10's acceptance targets checked against the rows that were run (a target with no row is left out)."""
    out = []
    by = {(r["model"], r["L"], r["mode"]): r for r in rows}
    for m in MAMBA_MODELS:
        r = by.get((m, 4096, "fwdbwd"))
        if r is not None and "ratio" in r:
            out.append({"what": f"{m} fwd+bwd / Linear layers, L=4096", "target": MAMBA_TARGETS[m],
                        "measured": r["ratio"], "cpu_measured": r["cpu_ratio"], "met": r["ratio"] <= MAMBA_TARGETS[m],
                        "cpu_met": r["cpu_ratio"] <= MAMBA_TARGETS[m]})
        for mode in ("fwd", "fwdbwd"):
            r = by.get((m, 4096, mode))
            if r is not None and "peak_mib" in r:
                lim = MAMBA_TARGETS["mem_mib_4096"]
                out.append({"what": f"{m} {mode} extra memory MiB, L=4096", "target": lim,
                            "measured": r["peak_mib"], "met": r["peak_mib"] <= lim})
        r = by.get((m, 16384, "fwd"))
        if r is not None and "peak_mib" in r:
            lim = MAMBA_TARGETS["fwd_mem_mib_16384"]
            out.append({"what": f"{m} fwd extra memory MiB, L=16384", "target": lim,
                        "measured": r["peak_mib"], "met": r["peak_mib"] <= lim})
    return out


def format_mamba_table(result: dict[str, Any]) -> str:
    """Markdown tables of :func:`run_mamba_benchmark`'s result (blocks, streaming, targets) with the load average."""
    c, la = result["config"], result["load_avg"]
    fmt = lambda v, f=".1f": "-" if v is None else format(v, f)  # noqa: E731
    head = f" mamba2 headdim={c['headdim']}," if "mamba2" in c.get("linears", {}) else ","
    lines = [f"B={c['B']} D={c['H']} N={c['d_state']} expand={c['expand']} (E={c['d_inner']}){head} "
             f"{c['dtype']}, threads={c['threads']}, least of {c['repeats']} repeats, "
             f"torch {c['torch']}; load average (1/5/15 min) at start "
             f"{'/'.join(f'{v:.2f}' for v in la['start'])}, at end {'/'.join(f'{v:.2f}' for v in la['end'])}",
             "",
             "| block | L | mode | block ms | Linear layers ms | block / Linear | block / Linear, CPU time | "
             "block / FFT floor | block peak MiB | Linear peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        mode = "fwd+bwd" if r["mode"] == "fwdbwd" else "fwd"
        if "error" in r:
            lines.append(f"| {r['model']} | {r['L']} | {mode} | error: {r['error']} | {fmt(r.get('linear_ms'))} "
                         "| | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['L']} | {mode} | {fmt(r['ms'])} | {fmt(r.get('linear_ms'))} | "
                     f"**{fmt(r.get('ratio'), '.2f')}** | {fmt(r.get('cpu_ratio'), '.2f')} | "
                     f"{fmt(r.get('floor_ratio'), '.2f')} | {fmt(r['peak_mib'], '.0f')} | "
                     f"{fmt(r.get('linear_peak_mib'), '.0f')} |")
    if result.get("stream"):
        lines += ["", f"Streaming: `step` per token ({c['stream_steps']} tokens, batch {c['B']}) after a prefill of "
                      "L tokens (L = 0: from `init_state`)", "",
                  "| block | prefill L | prefill ms | step ms / token | CPU ms / token | CPU rel. to L = 0 |",
                  "|---|---|---|---|---|---|"]
        for r in result["stream"]:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['L']} | error: {r['error']} | | | |")
            else:
                lines.append(f"| {r['model']} | {r['L']} | {fmt(r['prefill_ms'] if r['L'] else None)} | "
                             f"{r['ms_per_token']:.3f} | {r['cpu_ms_per_token']:.3f} | {r['rel']:.2f} |")
    if result.get("targets"):
        yes = lambda v: "yes" if v else "NO"  # noqa: E731
        lines += ["", "| target (issue 10) | limit | measured | met | CPU-time ratio | met (CPU time) |",
                  "|---|---|---|---|---|---|"]
        for t in result["targets"]:
            cpu = (f"{t['cpu_measured']:.2f} | {yes(t['cpu_met'])}") if "cpu_measured" in t else "- | -"
            lines.append(f"| {t['what']} | {t['target']:g} | {t['measured']:.2f} | {yes(t['met'])} | {cpu} |")
    return "\n".join(lines)


def profile_mamba(model: str, B: int, H: int, L: int, mode: str, threads: int = 1, d_state: int = 16,
                  expand: int = 2, headdim: int = 64, top: int = 20) -> str:
    """``torch.profiler`` table (top ``top`` ops by self CPU time) of one warm ``model`` call at ``L`` and ``mode``
    (``fwd``, ``fwdbwd``), in this process with ``torch.set_num_threads(threads)``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if model not in MAMBA_MODELS or mode not in ("fwd", "fwdbwd"):
        raise ValueError(f"profile: model must be one of {MAMBA_MODELS} and mode fwd or fwdbwd, got {model}, {mode}")
    n_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        layer = _mamba_layer(model, H, d_state, expand, headdim)
        x = torch.randn(B, L, H, requires_grad=mode == "fwdbwd")

        def run() -> None:
            if mode == "fwd":
                with torch.no_grad():
                    layer(x)
            else:
                layer(x).sum().backward()

        run()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
    finally:
        torch.set_num_threads(n_threads)
