"""``ptdssm bench``: the own-projections floor (recorded calls, replay), the targets a family declares (met/missed
against hand-made rows), the bench's own keys kept out of the layer's kwargs, memory growth, and tiny end-to-end runs
of ``ptdssm bench layers`` and ``ptdssm bench mamba`` (every case in its own subprocess); bad options exit 2."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ptdssm.bench import (
    Projections,
    bench_layers,
    bench_options,
    evaluate_targets,
    format_mamba_table,
    format_table,
    mamba_layer,
    memory_growth,
)
from ptdssm.cli import main
from ptdssm.layers import SequenceMixer, register_family, registry


class GatedConv(SequenceMixer):
    """A toy family with projections and one FFT convolution: ``(u, g) = in_proj(x)``, ``v = k * u`` (causal FFT
    convolution with a fixed decaying kernel), ``out_proj(v * silu(g))``; ``in_proj`` is called on a transposed
    view, and ``spare`` is never called."""

    def __init__(self, d_model: int, *, decay: float = 0.9, dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.decay = float(decay)
        self.in_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.spare = nn.Linear(d_model, d_model)

    def _forward(self, u, lengths):
        L = u.shape[1]
        ug, g = self.in_proj(u.transpose(0, 1)).transpose(0, 1).chunk(2, dim=-1)
        k = self.decay ** torch.arange(L, dtype=u.dtype)
        n = 2 * L
        v = torch.fft.irfft(torch.fft.rfft(ug, n=n, dim=1) * torch.fft.rfft(k, n=n)[:, None], n=n, dim=1)[:, :L]
        return self.out_proj(v * F.silu(g))


@pytest.fixture
def isolated(monkeypatch):
    """Registrations in the test are undone after it."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))


# ------------------------------------------------------------------ the own-projections floor

def test_projections_record_each_call_with_its_shape_and_layout():
    layer = GatedConv(4)
    x = torch.randn(2, 6, 4)
    proj = Projections(layer, x)
    assert [c.name for c in proj.calls] == ["in_proj", "out_proj"]  # spare is never called
    assert proj.describe() == ["in_proj 4->8", "out_proj 4->4"]
    c_in, c_out = proj.calls
    assert c_in.shape == (6, 2, 4) and c_in.stride == (4, 24, 1) and c_in.out_shape == (6, 2, 8)
    assert c_out.shape == (2, 6, 4) and c_out.out_shape == (2, 6, 4)
    xs = proj.inputs(requires_grad=True)
    assert [t.stride() for t in xs] == [c_in.stride, c_out.stride]  # e.g. the transposed view is replayed transposed
    outs = proj(xs)
    torch.testing.assert_close(outs[0], xs[0] @ layer.in_proj.weight.T + layer.in_proj.bias)
    torch.testing.assert_close(outs[1], xs[1] @ layer.out_proj.weight.T)
    torch.autograd.backward(outs, proj.out_grads())
    assert layer.in_proj.weight.grad is not None and layer.out_proj.weight.grad is not None
    assert layer.spare.weight.grad is None and all(t.grad is not None for t in xs)


class _ConvThenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.lin, self.unused = nn.Conv1d(4, 4, 3, groups=4, padding=2), nn.Linear(4, 6), nn.Conv1d(4, 4, 1)

    def forward(self, x):  # x (B, C, L)
        return self.lin(self.conv(x)[..., :x.shape[-1]].transpose(1, 2))


def test_projections_record_conv1d_module_calls():
    net = _ConvThenLinear()
    proj = Projections(net, torch.randn(2, 4, 7))
    assert proj.describe() == ["conv 4->4 k3 groups 4", "lin 4->6"]
    outs = proj(proj.inputs())
    assert outs[0].shape == (2, 4, 9) and outs[1].shape == (2, 7, 6)
    xs = proj.inputs()
    torch.testing.assert_close(proj(xs)[0], F.conv1d(xs[0], net.conv.weight, net.conv.bias, padding=2, groups=4))
    assert [c.name for c in Projections(net, torch.randn(2, 4, 7), kinds=(nn.Linear,)).calls] == ["lin"]


@pytest.mark.parametrize("model", ["mamba", "mamba2"])
def test_mamba_linear_baseline_sees_functional_calls_and_reaches_every_linear(model):
    """Mamba-1 calls ``F.linear`` with its modules' weights itself (forward hooks would see nothing); Mamba-2 calls
    its modules. Both run their depthwise conv as shifted ``addcmul`` (``kernels.shift.causal_conv``), not through
    ``F.conv1d``: it is not a recorded call."""
    layer = mamba_layer(model, 8, 4, 2, 64)
    x = torch.randn(2, 5, 8)
    proj = Projections(layer, x, kinds=(nn.Linear,))
    names = ["in_proj", "x_proj", "dt_proj", "out_proj"] if model == "mamba" else ["in_proj", "out_proj"]
    assert [c.name for c in proj.calls] == names
    assert proj.describe()[0] == ("in_proj 8->32" if model == "mamba" else "in_proj 8->41")
    assert [c.name for c in Projections(layer, x).calls] == names
    step = proj.step("fwdbwd")
    step()
    for n in names:
        assert getattr(layer, n).weight.grad is not None, n


# ------------------------------------------------------------------ targets as data

def _rows(**by_name):
    return [{"name": n, "L": 4096, **r} for n, r in by_name.items()]


def test_targets_met_and_missed_against_hand_made_rows():
    rows = _rows(a={"fwd_ratio": 2.4, "fwdbwd_ratio": 2.6, "fwd_proj_ratio": 1.2, "fwdbwd_proj_ratio": 1.5},
                 s5={"fwd_ratio": 3.0, "fwdbwd_ratio": 2.8}, b={"fwd_ratio": 1.0, "fwdbwd_ratio": 2.9})
    rows.append({"name": "a", "L": 1024, "fwd_ratio": 9.0})  # other lengths are not the target's
    targets = {"a": {"fwd_fft": 2.5, "fwdbwd_fft": 2.5, "fwdbwd_proj": 1.5, "fwd_proj": 1.0},
               "b": {"fwdbwd_fft_at_most": "s5", "fwd_proj": 2.0}}
    got = {(t["name"], t["what"]): t for t in evaluate_targets(rows, targets)}
    assert {k: (t["measured"], t["target"], t["met"]) for k, t in got.items()} == {
        ("a", "fwd_fft"): (2.4, 2.5, True),
        ("a", "fwdbwd_fft"): (2.6, 2.5, False),
        ("a", "fwdbwd_proj"): (1.5, 1.5, True),  # at the limit is met
        ("a", "fwd_proj"): (1.2, 1.0, False),
        ("b", "fwdbwd_fft_at_most"): (2.9, 2.8, False),
        ("b", "fwd_proj"): (None, 2.0, None),  # b has no projections ratio: not measured, neither met nor missed
    }
    assert got[("b", "fwdbwd_fft_at_most")]["reference"] == "s5" and all(t["L"] == 4096 for t in got.values())
    # not run at L = 4096 (or the reference not run): nothing is claimed
    none = evaluate_targets([{"name": "b", "L": 1024, "fwdbwd_ratio": 1.0}], {"b": {"fwdbwd_fft_at_most": "s5"}})
    assert (none[0]["measured"], none[0]["target"], none[0]["met"]) == (None, None, None)
    table = format_table({"config": {"B": 1, "H": 1, "threads": 1, "repeats": 1, "torch": "x"}, "rows": [],
                          "targets": list(got.values())})
    assert "| b | fwdbwd_fft_at_most | 4096 | 2.80 (s5) | 2.90 | NO |" in table and "not measured" in table


@pytest.mark.parametrize("key,value,msg", [("fwd_ffft", 2.0, "is not"), ("bwd_fft", 2.0, "is not"),
                                           ("fwd_proj_at_least", 1, "is not"), ("fwd_fft", 0, "> 0"),
                                           ("fwd_fft", "s5", "> 0"), ("fwd_fft_at_most", 2.0, "name a family")])
def test_malformed_target_is_a_value_error_naming_it(isolated, key, value, msg):
    register_family("toy-bad", GatedConv, bench={"targets": {key: value}})
    with pytest.raises(ValueError, match=f"family 'toy-bad': bench target '{key}'.*{msg}"):
        bench_options("toy-bad")


def test_memory_growth_at_most_linear():
    rows = [{"name": "a", "L": 4096, "fwd_peak_mib": 100.0, "peak_mib": 200.0},
            {"name": "a", "L": 16384, "fwd_peak_mib": 440.0, "peak_mib": 1000.0},
            {"name": "b", "L": 4096, "fwd_peak_mib": 0.5, "peak_mib": 10.0},
            {"name": "b", "L": 16384, "fwd_peak_mib": 30.0, "peak_mib": 40.0},
            {"name": "c", "L": 4096, "fwd_peak_mib": 1.0, "peak_mib": 1.0}]  # no 16384 row: no entry
    got = {(t["name"], t["what"]): (t["measured"], t["met"]) for t in memory_growth(rows)}
    assert got == {("a", "fwd_mem_growth"): (4.4, True), ("a", "fwdbwd_mem_growth"): (5.0, False),
                   ("b", "fwd_mem_growth"): (None, None), ("b", "fwdbwd_mem_growth"): (4.0, True)}


def test_bench_keys_are_not_layer_kwargs(isolated):
    register_family("toy-keys", GatedConv, bench={"decay": 0.5, "fft_convs": 1, "targets": {"fwd_fft": 3.0}})
    assert bench_layers()["toy-keys"] == (GatedConv, {"decay": 0.5})
    assert bench_options("toy-keys") == {"fft_convs": 1, "targets": {"fwd_fft": 3.0}}
    assert GatedConv(4, **bench_layers()["toy-keys"][1]).decay == 0.5
    with pytest.raises(ValueError, match="takes no option"):  # a real unknown option is still refused
        register_family("toy-keys2", GatedConv, bench={"decai": 0.5, "fft_convs": 1})
    register_family("toy-keys3", GatedConv, bench={"fft_convs": -1})
    with pytest.raises(ValueError, match="'toy-keys3': bench key 'fft_convs'"):
        bench_options("toy-keys3")


# ------------------------------------------------------------------ end to end (subprocesses)

def _bench_json(argv, capsys):
    rc = main(["bench", *argv, "--batch", "2", "--width", "8", "--repeats", "1", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_bench_layers_cli_s4d(capsys):
    res = _bench_json(["--layers", "s4d", "--lengths", "64"], capsys)
    rows = {r["name"]: r for r in res["rows"]}
    assert list(rows) == ["floor", "s4d"] and res["config"]["layers"] == {"s4d": {"init": "s4d-legs", "d_state": 64}}
    r, f = rows["s4d"], rows["floor"]
    assert "error" not in r and "proj_error" not in r, r
    assert math.isclose(r["fwd_ratio"], r["fwd_ms"] / f["fwd_ms"]) and r["fwdbwd_ratio"] > 0 and r["peak_mib"] >= 0
    # S4D has no Linear/Conv1d and declares no FFT convolutions: no projections floor
    assert r["proj_fwd_ms"] == 0.0 and "fwd_proj_ratio" not in r and res["config"]["projections"]["s4d"] == []
    assert res["targets"] == [] and len(res["load_avg"]["start"]) == 3


def test_bench_layers_floors_and_targets_end_to_end(isolated, capsys):
    register_family("toy-gc", GatedConv, bench={"decay": 0.8, "fft_convs": 1,
                                                "targets": {"fwd_fft": 1e6, "fwdbwd_proj": 1e-6}})
    register_family("toy-gc-ref", GatedConv, bench={"targets": {"fwd_fft_at_most": "toy-gc"}})
    res = _bench_json(["layers", "--layers", "toy-gc-ref", "--lengths", "4096", "--threads", "1"], capsys)
    rows = {r["name"]: r for r in res["rows"]}
    assert list(rows) == ["floor", "toy-gc-ref", "toy-gc"]  # the target's reference family was added
    f, r = rows["floor"], rows["toy-gc"]
    assert "error" not in r and "in_process" not in r, r
    assert res["config"]["layers"]["toy-gc"] == {"decay": 0.8} and res["config"]["fft_convs"]["toy-gc"] == 1
    assert res["config"]["projections"]["toy-gc"] == ["in_proj 8->16", "out_proj 8->8"]
    for mode in ("fwd", "fwdbwd"):  # own projections + one FFT floor
        assert r[f"proj_{mode}_ms"] > 0
        assert math.isclose(r[f"{mode}_proj_ratio"], r[f"{mode}_ms"] / (r[f"proj_{mode}_ms"] + f[f"{mode}_ms"]))
    got = {(t["name"], t["what"]): t for t in res["targets"]}
    assert got[("toy-gc", "fwd_fft")]["met"] is True and got[("toy-gc", "fwdbwd_proj")]["met"] is False
    ref = got[("toy-gc-ref", "fwd_fft_at_most")]
    assert ref["target"] == r["fwd_ratio"] and ref["measured"] == rows["toy-gc-ref"]["fwd_ratio"]
    assert ref["met"] == (ref["measured"] <= ref["target"])
    assert "fwd_fft_at_most" in format_table(res)


def test_bench_layers_bad_options_exit_2(isolated, capsys):
    register_family("toy-dangling", GatedConv, bench={"targets": {"fwd_fft_at_most": "no-such-family"}})
    assert main(["bench", "layers", "--layers", "toy-dangling", "--lengths", "8"]) == 2
    assert "no-such-family" in capsys.readouterr().err
    assert main(["bench", "layers", "--layers", "s4d", "--lengths", "0"]) == 2


def test_bench_mamba_tiny_json(capsys):
    rc = main(["bench", "mamba", "--lengths", "16", "--batch", "1", "--width", "8", "--repeats", "1", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    cfg = res["config"]
    assert (cfg["B"], cfg["H"], cfg["d_state"], cfg["expand"], cfg["threads"]) == (1, 8, 16, 2, 1)
    assert cfg["headdim"] == 16  # capped at expand * width
    assert cfg["linears"]["mamba"] == ["in_proj 8->32", "x_proj 16->33", "dt_proj 1->16", "out_proj 16->8"]
    assert cfg["linears"]["mamba2"] == ["in_proj 8->65", "out_proj 16->8"]
    assert len(res["load_avg"]["start"]) == 3 and len(res["load_avg"]["end"]) == 3

    rows = {(r["model"], r["mode"]): r for r in res["rows"]}
    assert set(rows) == {(m, mode) for m in ("mamba", "mamba2") for mode in ("fwd", "fwdbwd")}
    for r in rows.values():
        assert "error" not in r and "linear_error" not in r, r
        assert r["L"] == 16 and r["ms"] > 0 and r["linear_ms"] > 0 and r["floor_ms"] > 0
        assert math.isclose(r["ratio"], r["ms"] / r["linear_ms"]) and r["cpu_ratio"] > 0 and r["cpu_ms"] > 0
        assert math.isclose(r["floor_ratio"], r["ms"] / r["floor_ms"])
        assert r["peak_mib"] >= 0 and r["linear_peak_mib"] >= 0

    stream = {(r["model"], r["L"]): r for r in res["stream"]}
    assert set(stream) == {(m, L) for m in ("mamba", "mamba2") for L in (0, 16)}
    for (_, L), r in stream.items():
        assert "error" not in r, r
        assert r["ms_per_token"] > 0 and r["cpu_ms_per_token"] > 0 and r["steps"] == 64
        assert r["rel"] == 1.0 if L == 0 else r["rel"] > 0
    assert res["targets"] == []  # the targets are stated at L = 4096 / 16384 only

    table = format_mamba_table(res)
    assert "block / Linear" in table and "load average" in table and "step ms / token" in table


def _bench_parsers():
    from ptdssm.cli import build_parser

    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    bench = sub.choices["bench"]
    bsub = next(a for a in bench._actions if isinstance(a, argparse._SubParsersAction))
    listed = {a.dest: a.help for a in bsub._choices_actions}
    return [("bench", bench, next(a.help for a in sub._choices_actions if a.dest == "bench"))] + [
        (f"bench {n}", p, listed[n]) for n, p in bsub.choices.items()]


@pytest.mark.parametrize("name,parser,listed", _bench_parsers(), ids=lambda v: v if isinstance(v, str) else "")
def test_bench_help_states_defaults_without_markup(name, parser, listed):
    assert listed and "\n" not in listed and len(listed) <= 100 and parser.description, name
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            assert "default" in (action.help or ""), f"{name} {action.option_strings[0]}: {action.help!r}"
    text = parser.format_help() + listed
    for mark in ("`", ":class:", ":func:", ":mod:"):
        assert mark not in text, f"{mark!r} in the help of {name}"


@pytest.mark.parametrize("argv", [["--modes", "bwd"], ["--models", "mamba3"], ["--lengths", "0"],
                                  ["--width", "8", "--headdim", "5"], ["--threads", "0"]])
def test_bench_mamba_bad_options_exit_2(argv, capsys):
    try:
        rc = main(["bench", "mamba", *argv, "--json"])
    except SystemExit as exc:  # argparse's choices
        rc = exc.code
    assert rc == 2
    assert "error" in capsys.readouterr().err
