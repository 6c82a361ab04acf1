"""``ptdssm bench mamba``: a tiny run end to end (every case in its own subprocess) gives the rows, the ratios to the
blocks' own Linear layers, the streaming rows and the load average; bad options exit 2."""

import json
import math

import pytest

from ptdssm.bench import _mamba_layer, _MambaLinears, format_mamba_table
from ptdssm.cli import main


def test_bench_mamba_tiny_json(capsys):
    rc = main(["bench", "mamba", "--lengths", "16", "--batch", "1", "--width", "8", "--repeats", "1", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    cfg = res["config"]
    assert (cfg["B"], cfg["H"], cfg["d_state"], cfg["expand"], cfg["threads"]) == (1, 8, 16, 2, 1)
    assert cfg["headdim"] == 16  # capped at expand * width
    assert cfg["linears"]["mamba"][0] == "in_proj 8->32" and len(cfg["linears"]["mamba2"]) == 2
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


@pytest.mark.parametrize("model", ["mamba", "mamba2"])
def test_linear_baseline_has_the_blocks_shapes_and_backward_reaches_every_linear(model):
    import torch

    layer = _mamba_layer(model, 8, 4, 2, 64)
    x = torch.randn(2, 5, 8, requires_grad=True)
    y = _MambaLinears(layer)(x)
    assert y.shape == layer(x).shape
    y.sum().backward()
    names = ("in_proj", "x_proj", "dt_proj", "out_proj") if model == "mamba" else ("in_proj", "out_proj")
    for n in names:
        assert getattr(layer, n).weight.grad is not None, n


@pytest.mark.parametrize("argv", [["--modes", "bwd"], ["--models", "mamba3"], ["--lengths", "0"],
                                  ["--width", "8", "--headdim", "5"], ["--threads", "0"]])
def test_bench_mamba_bad_options_exit_2(argv, capsys):
    try:
        rc = main(["bench", "mamba", *argv, "--json"])
    except SystemExit as exc:  # argparse's choices
        rc = exc.code
    assert rc == 2
    assert "error" in capsys.readouterr().err
