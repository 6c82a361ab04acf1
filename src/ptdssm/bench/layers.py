"""Layer benchmark (``ptdssm bench layers``): every registered family's layer, forward and forward+backward time,
tokens/s and peak memory, as ratios to two floors measured in the same run, and the family's own targets.

**What is timed: the layer alone**, ``layer(x)`` for a float32 ``x (B, L, H)``, built as the registry builds it
(:func:`bench_layers`), with no wrapper, so that a ratio is the layer's own cost. (Until 2026-12 each layer ran
inside S4D's public block, GELU -> ``Linear(H, 2H)`` -> GLU, which costs about 1.5 FFT floors by itself and was
wrong for the self-gating mixers; a family whose layer owns an output projection, as long conv's or Mamba's,
keeps it, since it is part of the layer.) Forward is under ``torch.no_grad``; forward+backward back-propagates a
fixed random output gradient (:func:`~ptdssm.bench.common.make_step`).

**Floors**, each measured in the same run at the same ``L``:

1. the FFT floor, ``irfft(rfft(x), n=2L)`` of ``x (B, H, 2L)``: ``fwd_ratio``, ``fwdbwd_ratio``;
2. its own projections: the layer's own ``nn.Linear`` / ``nn.Conv1d`` calls replayed alone on the inputs they see
   in the layer's forward (:class:`~ptdssm.bench.floors.Projections`), plus ``fft_convs`` times the FFT floor when
   the family declares that it runs that many FFT convolutions: ``proj_floor = proj + fft_convs * floor``,
   ``fwd_proj_ratio``, ``fwdbwd_proj_ratio`` (absent for a family with neither, e.g. S5).

**Family keys** (``register_family(..., bench={...})``, :mod:`ptdssm.layers.registry`): the layer options to
bench with (e.g. ``d_state``) and two keys the bench reads itself, never passed to the layer
(:data:`~ptdssm.layers.registry.BENCH_KEYS`): ``fft_convs`` (an integer >= 0) and ``targets``, a mapping of

- ``"<mode>_<floor>": limit`` with ``mode`` in ``fwd``, ``fwdbwd`` and ``floor`` in ``fft``, ``proj``: the ratio
  must be ``<= limit``, e.g. ``{"fwd_fft": 2.5, "fwdbwd_fft": 2.5}`` or ``{"fwdbwd_proj": 1.5}``;
- ``"<mode>_<floor>_at_most": family``: at most that family's same ratio in the same run (e.g. LRU
  ``{"fwdbwd_fft_at_most": "s5"}``); a family named so is added to the run when not asked for.

Targets are evaluated at ``L = 4096`` (:data:`TARGET_L`; ``measured``/``met`` are ``None`` when it was not run).
Memory: for every family run at both ``L = 4096`` and ``16384``, the peak (forward, forward+backward) must grow at
most linearly, ratio ``<= 4.4`` (:data:`MEM_GROWTH_LIMIT`).

**Processes.** Each (family, ``L``) runs in its own subprocess: layer and projections, forward and
forward+backward, one after the other with the peak reset between them (one process per case where it cannot be
reset; :mod:`ptdssm.bench.common`). The subprocess imports the layer class by ``module`` and ``qualname`` and builds
it from the JSON-encoded kwargs, so the family need not be registered there. A class that cannot be imported so
(defined in ``__main__`` or in a function) or kwargs that are not JSON run in this process (``"in_process": true``).
Times are the least over ``repeats`` after a warm-up, with ``torch.set_num_threads(threads)``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from .common import importable, load_average, load_class, measure, reset_peak, run_calls

__all__ = ["MEM_GROWTH_LIMIT", "TARGET_L", "bench_layers", "bench_options", "evaluate_targets", "format_table",
           "memory_growth", "run_benchmark", "run_case"]

TARGET_L = 4096
MEM_LENGTHS = (4096, 16384)
MEM_GROWTH_LIMIT = 4.4
_MODES = ("fwd", "fwdbwd")
_RATIO = {"fft": "{}_ratio", "proj": "{}_proj_ratio"}  # target floor -> row field, per mode


def bench_layers() -> dict[str, tuple[type, dict[str, Any]]]:
    """``name -> (layer class, kwargs)`` for every registered family, read from the registry at call time: the
    :func:`~ptdssm.layers.registry.layer_kwargs` of ``family.bench`` without the bench's own keys."""
    from ..layers.registry import BENCH_KEYS, family_names, get_family, layer_kwargs

    out = {}
    for name in family_names():
        fam = get_family(name)
        out[name] = (fam.layer, layer_kwargs(fam, {k: v for k, v in fam.bench.items() if k not in BENCH_KEYS}))
    return out


def _parse_target(family: str, key: object, value: object) -> tuple[str, str, float | str]:
    """``(mode, floor, limit or family name)`` of one ``targets`` entry; ``ValueError`` naming it if malformed."""
    where = f"family {family!r}: bench target {key!r}"
    parts = str(key).split("_", 2)
    at_most = len(parts) == 3 and parts[2] == "at_most"
    if not isinstance(key, str) or len(parts) not in (2, 3) or parts[0] not in _MODES or parts[1] not in _RATIO \
            or (len(parts) == 3 and not at_most):
        raise ValueError(f"{where} is not '<mode>_<floor>' or '<mode>_<floor>_at_most' with mode fwd|fwdbwd and "
                         "floor fft|proj")
    if at_most:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where} must name a family, got {value!r}")
        return parts[0], parts[1], value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{where} must be a number > 0, got {value!r}")
    return parts[0], parts[1], float(value)


def bench_options(name: str) -> dict[str, Any]:
    """The bench's own keys of family ``name``, checked: ``{"fft_convs": int, "targets": {key: limit}}``.

    Raises:
        ValueError: ``fft_convs`` not an integer >= 0, ``targets`` not a mapping, or a malformed target (naming the
            family and the key).
    """
    from ..layers.registry import get_family

    bench = get_family(name).bench
    k = bench.get("fft_convs", 0)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"family {name!r}: bench key 'fft_convs' must be an integer >= 0, got {k!r}")
    targets = bench.get("targets", {})
    if not isinstance(targets, dict):
        raise ValueError(f"family {name!r}: bench key 'targets' must be a mapping, got {type(targets).__name__}")
    for key, value in targets.items():
        _parse_target(name, key, value)
    return {"fft_convs": k, "targets": dict(targets)}


def _timed(row: dict[str, Any], t: dict[str, float], tokens: int) -> dict[str, Any]:
    return {**row, **t, "tokens_per_s": tokens / max(t["ms"] / 1e3, 1e-12)}


def run_case(name: str, modes: Sequence[str] = _MODES, *, L: int, B: int, H: int, repeats: int, threads: int,
             layer: Sequence[Any] | None = None, parts: Sequence[str] = ("layer", "proj")) -> list[dict[str, Any]]:
    """One (family or ``"floor"``, ``L``) in this process: a row per part (``layer``: the layer; ``proj``: its own
    projections replayed, :class:`~ptdssm.bench.floors.Projections`) and mode (``fwd``, ``fwdbwd``), each with
    ``ms``, ``median_ms``, ``cpu_ms``, ``peak_mib`` (:func:`~ptdssm.bench.common.measure`); ``layer`` is
    ``(module, qualname, kwargs)`` of the class (default: the registered family ``name``)."""
    import torch

    from .floors import Projections, fft_floor_step, layer_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows: list[dict[str, Any]] = []
    if name == "floor":
        for mode in modes:
            rows.append(_timed({"kind": "floor", "name": name, "L": L, "mode": mode},
                               measure(fft_floor_step(B, H, L, mode), repeats), B * L))
        return rows
    cls, kwargs = bench_layers()[name] if layer is None else (load_class(layer[0], layer[1]), layer[2])
    module = cls(H, **kwargs)
    for part in parts:
        proj = Projections(module, torch.randn(B, L, H)) if part == "proj" else None
        for mode in modes:
            row: dict[str, Any] = {"kind": part, "name": name, "L": L, "mode": mode}
            if proj is not None and not proj.calls:  # nothing to replay: a zero floor
                rows.append({**row, "ms": 0.0, "median_ms": 0.0, "cpu_ms": 0.0, "peak_mib": 0.0, "calls": []})
                continue
            step = layer_step(module, B, L, H, mode) if proj is None else proj.step(mode)
            rows.append(_timed({**row, **({"calls": proj.describe()} if proj else {})}, measure(step, repeats), B * L))
            del step
    return rows


def _spec(cls: type, kwargs: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """``(module, qualname, kwargs)`` for the subprocess, or ``None`` if the case must run in this process."""
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError):
        return None
    return (cls.__module__, cls.__qualname__, kwargs) if importable(cls) else None


def _run_job(name: str, modes: list[str], parts: list[str], kw: dict[str, Any],
             table: dict[str, tuple[type, dict[str, Any]]]) -> tuple[list[dict[str, Any]], str]:
    spec = None if name == "floor" else _spec(*table[name])
    if name == "floor" or spec is not None:
        return run_calls([("run_case", [name, modes], {**kw, "layer": spec, "parts": parts})], kw["threads"])
    import torch

    n_threads = torch.get_num_threads()
    try:
        rows = run_case(name, modes, **kw, parts=parts)
        return [{**r, "in_process": True} for r in rows], ""
    except Exception as exc:  # noqa: BLE001 - reported in the row, as a failing subprocess would be
        return [], f"{type(exc).__name__}: {exc}"
    finally:
        torch.set_num_threads(n_threads)


def _names_to_run(layers: Sequence[str] | None, table: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    names = list(table) if layers is None else list(dict.fromkeys(layers))
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"--layers: unknown layer(s) {', '.join(unknown)}; expected some of: {', '.join(table)}")
    options = {n: bench_options(n) for n in names}
    for n in list(names):  # families that a target compares with run too
        for key, value in options[n]["targets"].items():
            if isinstance(value, str) and key.endswith("_at_most"):
                if value not in table:
                    raise ValueError(f"family {n!r}: bench target {key!r} names unknown family {value!r}")
                if value not in names:
                    names.append(value)
                    options[value] = bench_options(value)
    return names, options


def run_benchmark(layers: Sequence[str] | None = None, lengths: Sequence[int] = (1024, 4096, 16384), *,
                  B: int = 16, H: int = 256, repeats: int = 3, threads: int = 2, proj: bool = True,
                  progress: bool = True) -> dict[str, Any]:
    """Benchmark ``layers`` (registered family names; default all) at each length against the floors (module
    docstring), measured in the same run.

    Returns:
        ``{"config": {...}, "load_avg": {"start", "end"}, "rows": [...], "targets": [...]}``. A row (one name,
        ``L``; the FFT floor's is named ``floor``) has ``fwd_ms``, ``fwdbwd_ms``, ``tokens_per_s`` (forward),
        ``fwd_ratio``, ``fwdbwd_ratio`` (to the FFT floor), ``peak_mib`` (forward+backward), ``fwd_peak_mib`` and
        ``mem_ratio`` (to the floor's fwd+bwd peak); with ``proj``, ``proj_fwd_ms``, ``proj_fwdbwd_ms`` (the
        replayed projections alone), ``fft_convs`` and ``fwd_proj_ratio``, ``fwdbwd_proj_ratio``. Targets:
        :func:`evaluate_targets` and :func:`memory_growth` entries.
    """
    table = bench_layers()
    names, options = _names_to_run(layers, table)
    if not lengths or any(int(L) < 1 for L in lengths):
        raise ValueError(f"--lengths must be positive integers, got {list(lengths)}")
    lengths = [int(L) for L in lengths]
    parts = ["layer", "proj"] if proj else ["layer"]
    together = reset_peak()  # else one process per (part, mode), so that each peak is its own
    jobs = []
    for L in lengths:
        for name in ("floor", *names):
            p = ["floor"] if name == "floor" else parts
            groups = [(list(_MODES), p)] if together else [([m], [q]) for q in p for m in _MODES]
            jobs += [(name, L, m, q) for m, q in groups]
    load_start = load_average()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="bench layers", file=sys.stderr)
    raw: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for name, L, modes, ps in jobs:
        if bar is not None:
            bar.set_postfix(layer=name, L=L)
        kw = {"L": L, "B": B, "H": H, "repeats": repeats, "threads": threads}
        out, err = _run_job(name, modes, [] if name == "floor" else ps, kw, table)
        got = {(r["kind"], r["name"], r["L"], r["mode"]): r for r in out}
        for q in ps:
            for m in modes:
                raw[(q, name, L, m)] = got.get((q, name, L, m), {"error": err or "no output"})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rows = [_row(name, L, raw, options.get(name, {}).get("fft_convs", 0), proj)
            for L in lengths for name in ("floor", *names)]
    config = {"B": B, "H": H, "threads": threads, "repeats": repeats, "dtype": "float32",
              "layers": {n: table[n][1] if _spec(*table[n]) is not None else repr(table[n][1]) for n in names},
              "fft_convs": {n: options[n]["fft_convs"] for n in names},
              "targets": {n: options[n]["targets"] for n in names if options[n]["targets"]},
              "projections": {n: next((r["calls"] for k, r in raw.items() if k[0] == "proj" and k[1] == n
                                       and "calls" in r), None) for n in names} if proj else {},
              "torch": __import__("torch").__version__}
    targets = evaluate_targets(rows, config["targets"]) + memory_growth(rows)
    return {"config": config, "load_avg": {"start": load_start, "end": load_average()}, "rows": rows,
            "targets": targets}


def _row(name: str, L: int, raw: dict[tuple[str, str, int, str], dict[str, Any]], fft_convs: int,
         proj: bool) -> dict[str, Any]:
    """The result row of ``name`` at ``L`` from the raw case rows (see :func:`run_benchmark`)."""
    kind = "floor" if name == "floor" else "layer"
    f, fb = raw[(kind, name, L, "fwd")], raw[(kind, name, L, "fwdbwd")]
    ff, ffb = raw[("floor", "floor", L, "fwd")], raw[("floor", "floor", L, "fwdbwd")]
    row: dict[str, Any] = {"name": name, "L": L}
    if "error" in f or "error" in fb:
        row["error"] = f.get("error") or fb.get("error")
        return row
    row.update(fwd_ms=f["ms"], fwdbwd_ms=fb["ms"], tokens_per_s=f["tokens_per_s"], peak_mib=fb["peak_mib"],
               fwd_peak_mib=f["peak_mib"])
    if f.get("in_process"):
        row["in_process"] = True
    floor_ok = "error" not in ff and "error" not in ffb
    if floor_ok:
        row.update(fwd_ratio=f["ms"] / ff["ms"], fwdbwd_ratio=fb["ms"] / ffb["ms"],
                   mem_ratio=fb["peak_mib"] / max(ffb["peak_mib"], 1e-9))
    if not proj or name == "floor":
        return row
    p, pb = raw[("proj", name, L, "fwd")], raw[("proj", name, L, "fwdbwd")]
    if "error" in p or "error" in pb:
        row["proj_error"] = p.get("error") or pb.get("error")
        return row
    row.update(proj_fwd_ms=p["ms"], proj_fwdbwd_ms=pb["ms"], fft_convs=fft_convs)
    if fft_convs and not floor_ok:
        return row
    for mode, pr, fl in (("fwd", p, ff), ("fwdbwd", pb, ffb)):
        floor_ms = pr["ms"] + (fft_convs * fl["ms"] if fft_convs else 0.0)
        if floor_ms > 0:
            row[f"{mode}_proj_ratio"] = row[f"{mode}_ms"] / floor_ms
    return row


def evaluate_targets(rows: list[dict[str, Any]], targets: dict[str, dict[str, Any]],
                     L: int = TARGET_L) -> list[dict[str, Any]]:
    """Each family's ``targets`` (module docstring) checked against the ``rows`` at ``L``.

    Returns one entry per target: ``{"name", "what" (the key), "L", "target" (the limit; for ``_at_most`` the
    reference family's measured ratio, named in ``"reference"``), "measured", "met"}``; ``measured`` / ``target`` /
    ``met`` are ``None`` when a row (or the reference's) is missing at ``L`` or has no such ratio.
    """
    by = {(r["name"], r["L"]): r for r in rows}
    out = []
    for name, tg in targets.items():
        for key, value in tg.items():
            mode, floor, limit = _parse_target(name, key, value)
            field = _RATIO[floor].format(mode)
            measured = by.get((name, L), {}).get(field)
            entry: dict[str, Any] = {"name": name, "what": key, "L": L}
            if isinstance(limit, str):
                entry["reference"] = limit
                limit = by.get((limit, L), {}).get(field)
            met = None if measured is None or limit is None else bool(measured <= limit)
            out.append({**entry, "target": limit, "measured": measured, "met": met})
    return out


def memory_growth(rows: list[dict[str, Any]], lengths: tuple[int, int] = MEM_LENGTHS,
                  limit: float = MEM_GROWTH_LIMIT) -> list[dict[str, Any]]:
    """For every layer with rows at both ``lengths``: the peak memory ratio (forward, forward+backward) from the
    first to the second against ``limit`` (linear growth, ``16384 / 4096 = 4``, plus 10%); ``measured`` is
    ``None`` when the shorter run's peak rise is under 1 MiB (no meaningful ratio)."""
    by = {(r["name"], r["L"]): r for r in rows if "error" not in r}
    out = []
    for name in dict.fromkeys(r["name"] for r in rows):
        lo, hi = by.get((name, lengths[0])), by.get((name, lengths[1]))
        if name == "floor" or lo is None or hi is None:
            continue
        for mode, field in (("fwd", "fwd_peak_mib"), ("fwdbwd", "peak_mib")):
            ratio = hi[field] / lo[field] if lo[field] >= 1.0 else None
            out.append({"name": name, "what": f"{mode}_mem_growth", "L": f"{lengths[0]}->{lengths[1]}",
                        "target": limit, "measured": ratio, "met": None if ratio is None else ratio <= limit})
    return out


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables of :func:`run_benchmark`'s result: the rows, then the targets."""
    fmt = lambda v, f=".2f": "-" if v is None else format(v, f)  # noqa: E731
    c, la = result["config"], result.get("load_avg") or {}
    load = " / ".join("-" if v is None else "/".join(f"{x:.2f}" for x in v) for v in (la.get("start"), la.get("end")))
    lines = [f"B={c['B']} H={c['H']} {c.get('dtype', 'float32')}, threads={c['threads']}, least of {c['repeats']} "
             f"repeats, torch {c['torch']}; load average (1/5/15 min) at start / end {load}", "",
             "| layer | L | fwd ms | fwd+bwd ms | tokens/s | fwd / FFT floor | fwd+bwd / FFT floor | fwd / own proj. | "
             "fwd+bwd / own proj. | peak MiB | mem / floor |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['L']} | error: {r['error']} |||||||||")
            continue
        lines.append(f"| {r['name']} | {r['L']} | {r['fwd_ms']:.1f} | {r['fwdbwd_ms']:.1f} | "
                     f"{r['tokens_per_s']:.3g} | {fmt(r.get('fwd_ratio'))} | {fmt(r.get('fwdbwd_ratio'))} | "
                     f"{fmt(r.get('fwd_proj_ratio'))} | {fmt(r.get('fwdbwd_proj_ratio'))} | {r['peak_mib']:.0f} | "
                     f"{fmt(r.get('mem_ratio'))} |")
    if result.get("targets"):
        lines += ["", "| layer | target | L | limit | measured | met |", "|---|---|---|---|---|---|"]
        for t in result["targets"]:
            ref = f" ({t['reference']})" if "reference" in t else ""
            met = "not measured" if t["met"] is None else ("yes" if t["met"] else "NO")
            lines.append(f"| {t['name']} | {t['what']} | {t['L']} | {fmt(t['target'])}{ref} | "
                         f"{fmt(t['measured'])} | {met} |")
    return "\n".join(lines)
