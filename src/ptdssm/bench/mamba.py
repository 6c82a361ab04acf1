"""Mamba-1 / Mamba-2 mixers against their own Linear layers (``ptdssm bench mamba``), issue 10.

:func:`run_mamba_benchmark` times the Mamba-1 and Mamba-2 mixers themselves (no wrapper) against *their own Linear
layers alone* (the same calls with the same shapes, replayed by :class:`~ptdssm.bench.floors.Projections` with
``nn.Linear`` only: Mamba-1 ``in_proj``, ``x_proj``, ``dt_proj``, ``out_proj``; Mamba-2 ``in_proj``, ``out_proj``)
and the FFT floor, measured in the same run, and the per-token cost of streaming (``step`` after a ``prefill`` of
``L`` tokens) against ``L``. Each (case, length) runs in its own subprocess; its modes (``fwd``, ``fwdbwd``) run
one after the other there with the peak RSS reset between them (:mod:`ptdssm.bench.common`; where it cannot be
reset, each mode gets its own process). Times are the least over the repeats, wall-clock and process CPU time: on a
loaded machine the latter is the steadier with one thread.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from .common import load_average, measure, reset_peak, run_calls

__all__ = ["MAMBA_MODELS", "MAMBA_TARGETS", "format_mamba_table", "mamba_layer", "profile_mamba",
           "run_mamba_benchmark", "run_mamba_case", "run_mamba_stream"]

MAMBA_MODELS = ("mamba", "mamba2")
#: issue 10's targets at L = 4096: fwd+bwd time / the block's own Linear layers, and memory in MiB
MAMBA_TARGETS = {"mamba": 4.0, "mamba2": 3.0, "mem_mib_4096": 2048.0, "fwd_mem_mib_16384": 8192.0}


def mamba_layer(model: str, H: int, d_state: int, expand: int, headdim: int) -> Any:
    """``Mamba(H, d_state, expand)`` or ``Mamba2(H, d_state, expand, headdim=min(headdim, expand * H))``."""
    from ..layers.mamba import Mamba
    from ..layers.mamba2 import Mamba2

    if model == "mamba":
        return Mamba(H, d_state=d_state, expand=expand)
    return Mamba2(H, d_state=d_state, expand=expand, headdim=min(headdim, expand * H))


def run_mamba_case(kind: str, modes: Sequence[str], *, L: int, B: int, H: int, repeats: int, threads: int,
                   d_state: int = 16, expand: int = 2, headdim: int = 64, **_: Any) -> list[dict[str, Any]]:
    """One case of :func:`run_mamba_benchmark` in this process, a row per mode (``fwd``, ``fwdbwd``).

    ``kind``: ``mamba`` / ``mamba2`` (the mixer), ``mamba-linear`` / ``mamba2-linear`` (its Linear layers alone,
    :class:`~ptdssm.bench.floors.Projections` of its ``nn.Linear`` modules) or ``floor`` (rfft + irfft of
    ``(B, H, 2L)``). ``peak_mib`` is the rise of the peak RSS during that mode over the RSS after its set-up
    (parameters, input, output gradient; :func:`~ptdssm.bench.common.measure`)."""
    import torch
    from torch import nn

    from .floors import Projections, fft_floor_step, layer_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = kind.split("-")[0]
    layer = None if model == "floor" else mamba_layer(model, H, d_state, expand, headdim)
    proj = Projections(layer, torch.randn(B, L, H), kinds=(nn.Linear,)) if kind.endswith("-linear") else None
    rows = []
    for mode in modes:
        if model == "floor":
            step = fft_floor_step(B, H, L, mode)
        else:
            step = proj.step(mode) if proj is not None else layer_step(layer, B, L, H, mode)
        t = measure(step, repeats)
        rows.append({"kind": kind, "L": L, "mode": mode, **t, "tokens_per_s": B * L / (t["ms"] / 1e3)})
        del step
    return rows


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
    layer = mamba_layer(model, H, d_state, expand, headdim)
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


def run_mamba_benchmark(lengths: Sequence[int] = (1024, 4096), *, models: Sequence[str] = MAMBA_MODELS,
                        modes: Sequence[str] = ("fwd", "fwdbwd"), B: int = 8, H: int = 256, d_state: int = 16,
                        expand: int = 2, headdim: int = 64, repeats: int = 3, threads: int = 1,
                        stream: bool = True, stream_steps: int = 64, floor: bool = True,
                        progress: bool = True) -> dict[str, Any]:
    """Mamba-1 / Mamba-2 mixers against their own Linear layers (:class:`~ptdssm.bench.floors.Projections`) and
    the FFT floor, at each length and mode, every case in its own subprocess; then, with ``stream``, the per-token
    cost of ``step`` after a prefill of ``0`` and each ``L`` tokens.

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
    _check_options(lengths, models, modes, B=B, H=H, d_state=d_state, expand=expand, headdim=headdim,
                   repeats=repeats, threads=threads, stream_steps=stream_steps)
    kw = {"B": B, "H": H, "repeats": repeats, "threads": threads, "d_state": d_state, "expand": expand,
          "headdim": headdim, "steps": stream_steps}
    lengths = [int(L) for L in lengths]
    jobs = _jobs(lengths, models, modes, kw, stream=stream, floor=floor)
    load_start = load_average() or [float("nan")] * 3
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
        out, err = run_calls(calls, threads)
        for i, key in enumerate(keys):
            raw[key] = out[i] if i < len(out) else {"error": err or "no output"}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    load_end = load_average() or [float("nan")] * 3
    rows = [_row(raw, m, L, mode) for L in lengths for mode in modes for m in models]
    import torch

    config = {"B": B, "H": H, "d_state": d_state, "expand": expand, "d_inner": expand * H,
              "headdim": min(headdim, expand * H), "dtype": "float32", "repeats": repeats, "threads": threads,
              "stream_steps": stream_steps, "torch": torch.__version__, "cpus": os.cpu_count(),
              "linears": {m: _linears_of(m, H, d_state, expand, headdim) for m in models}}
    return {"config": config, "load_avg": {"start": list(load_start), "end": list(load_end)}, "rows": rows,
            "stream": _stream_rows(raw, models if stream else (), lengths), "targets": _mamba_targets(rows)}


def _check_options(lengths: Sequence[int], models: Sequence[str], modes: Sequence[str], **sizes: int) -> None:
    bad = [m for m in models if m not in MAMBA_MODELS]
    if bad:
        raise ValueError(f"--models: unknown {', '.join(bad)}; expected some of: {', '.join(MAMBA_MODELS)}")
    bad = [m for m in modes if m not in ("fwd", "fwdbwd")]
    if bad:
        raise ValueError(f"--modes: unknown {', '.join(bad)}; expected fwd and/or fwdbwd")
    if not lengths or any(int(L) < 1 for L in lengths):
        raise ValueError(f"--lengths must be positive integers, got {list(lengths)}")
    names = {"B": "batch", "H": "width"}
    for name, v in sizes.items():
        if int(v) < 1:
            raise ValueError(f"--{names.get(name, name).replace('_', '-')} must be >= 1, got {v}")
    E, P = sizes["expand"] * sizes["H"], sizes["headdim"]
    if "mamba2" in models and E % min(P, E):
        raise ValueError(f"--headdim {P} must divide expand * width = {E}")


Job = tuple[str, list[tuple[str, list[Any], dict[str, Any]]], list[tuple[str, int, str]]]


def _jobs(lengths: list[int], models: Sequence[str], modes: Sequence[str], kw: dict[str, Any], *, stream: bool,
          floor: bool) -> list[Job]:
    """``(kind, calls, keys)`` per subprocess: one per (kind, L) running every mode (the peak RSS is reset between
    modes; where it cannot be, one process per mode). The streaming rows of a model run after its block cases at
    the first length, in the same process: they report no memory, and one interpreter start fewer keeps small runs
    short."""
    kinds = [k for m in models for k in (m, f"{m}-linear")] + (["floor"] if floor else [])
    groups = [list(modes)] if reset_peak() else [[mode] for mode in modes]
    jobs: list[Job] = []
    for L in lengths:
        for g in groups:
            for k in kinds:
                calls = [("run_mamba_case", [k, [mode]], {**kw, "L": L}) for mode in g]
                keys = [(k, L, mode) for mode in g]
                if stream and k in models and L == lengths[0] and g is groups[0]:
                    calls.append(("run_mamba_stream", [k, [0, *lengths]], kw))
                    keys += [(k, Ls, "stream") for Ls in (0, *lengths)]
                jobs.append((k, calls, keys))
    return jobs


def _row(raw: dict[tuple[str, int, str], dict[str, Any]], m: str, L: int, mode: str) -> dict[str, Any]:
    """One result row (see :func:`run_mamba_benchmark`) from the raw case rows."""
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
    return row


def _stream_rows(raw: dict[tuple[str, int, str], dict[str, Any]], models: Sequence[str],
                 lengths: list[int]) -> list[dict[str, Any]]:
    out = []
    for m in models:
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
            out.append(srow)
    return out


def _linears_of(model: str, H: int, d_state: int, expand: int, headdim: int) -> list[str]:
    """``"in_proj 256->1064"``, ... for each Linear call of ``model`` (recorded on a tiny input: the calls do not
    depend on ``B`` or ``L``)."""
    import torch
    from torch import nn

    from .floors import Projections

    layer = mamba_layer(model, H, d_state, expand, headdim)
    return Projections(layer, torch.randn(1, 8, H), kinds=(nn.Linear,)).describe()


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
        layer = mamba_layer(model, H, d_state, expand, headdim)
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
