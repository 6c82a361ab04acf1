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

__all__ = ["bench_layers", "run_benchmark", "run_case"]


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
