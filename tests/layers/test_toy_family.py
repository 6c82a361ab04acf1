"""A family added from this file alone: a fixed exponential moving average, registered here (one line), then picked
up by the contract checks and by ``ptdssm bench`` with no other edit."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from ptdssm.cli import main
from ptdssm.layers import SequenceMixer, build_layer, family_names, get_family, register_family, registry

from . import contract

torch.set_num_threads(min(2, torch.get_num_threads()))


@dataclass
class EMAState:
    """The recurrent state: last output per channel, ``(B, H)`` (a dataclass, to exercise non-tensor states)."""

    y: torch.Tensor


class EMA(SequenceMixer):
    """``y_t = a y_{t-1} + (1 - a) x_t`` per channel with fixed decays ``a`` (a buffer, evenly spaced in
    ``[decay_min, decay_max]``); no trainable parameters."""

    def __init__(self, d_model: int, *, decay_min: float = 0.5, decay_max: float = 0.95, dropout: float = 0.0,
                 validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.register_buffer("a", torch.linspace(decay_min, decay_max, d_model))

    def _forward(self, u, lengths):
        a = self.a.to(u.dtype)
        y, ys = torch.zeros_like(u[:, 0]), []
        for t in range(u.shape[1]):
            y = a * y + (1 - a) * u[:, t]
            ys.append(y)
        return torch.stack(ys, 1)

    def _init_state(self, batch):
        return EMAState(torch.zeros(batch, self.d_model, dtype=self.compute_dtype(), device=self.a.device))

    def _step(self, u_t, state):
        if not isinstance(state, EMAState):
            raise TypeError(f"state must be an EMAState, got {type(state).__name__}")
        a = self.a.to(u_t.dtype)
        y = a * state.y + (1 - a) * u_t
        return y, EMAState(y)


register_family("ema-toy", EMA, block="ssm", description="fixed exponential moving average (test toy)", replace=True)


def make(d_model, **kw):
    return build_layer("ema-toy", d_model, kw)


def test_registered_and_closed_form():
    assert "ema-toy" in family_names() and get_family("ema-toy").layer is EMA
    layer = make(3)
    x = torch.randn(2, 12, 3)
    a = layer.a
    t = torch.arange(12)
    w = (1 - a) * a ** (t[:, None, None] - t[None, :, None]).clamp(min=0) * (t[:, None, None] >= t[None, :, None])
    ref = torch.einsum("tsh,bsh->bth", w, x)  # y_t = (1 - a) sum_{s<=t} a^{t-s} x_s
    torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.check_id)
def test_contract(check):
    check(make)


def _bench(name, capsys):
    rc = main(["bench", "--layers", name, "--lengths", "16", "--batch", "2", "--width", "4", "--repeats", "1",
               "--threads", "1", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def test_bench_picks_up_the_family(capsys):
    res = _bench("ema-toy", capsys)
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"floor", "ema-toy"}
    row = rows["ema-toy"]
    assert "error" not in row, row
    assert row["L"] == 16 and row["fwd_ms"] > 0 and row["fwdbwd_ms"] > 0 and row["tokens_per_s"] > 0
    assert "in_process" not in row  # ran in its own subprocess, importing this module by name
    assert res["config"]["layers"] == {"ema-toy": {}}


def test_bench_family_defined_in_a_function_runs_in_process(capsys, monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # registration undone after the test

    class LocalEMA(EMA):
        pass
    register_family("ema-local", LocalEMA, bench={"decay_max": 0.8})
    row = _bench("ema-local", capsys)["rows"][1]
    assert row["name"] == "ema-local" and row.get("in_process") is True and row["fwd_ms"] > 0, row


def test_bench_unknown_layer_exits_2(capsys):
    assert main(["bench", "layers", "--layers", "no-such-family", "--lengths", "8"]) == 2
    assert "no-such-family" in capsys.readouterr().err


def test_train_picks_up_the_family(tmp_path, capsys):
    """``ptdssm train --model ema-toy``: the generic recipe, the model factory and the training loop take the family
    from the registry alone (a tiny associative-recall run, per-position targets)."""
    out = tmp_path / "run"
    rc = main(["train", "--task", "associative-recall", "--model", "ema-toy", "--out", str(out), "--epochs", "1",
               "--no-progress", "--json", "--set", "model.n_layers=1", "--set", "model.d_model=8",
               "--set", "data.seq_len=24", "--set", "data.options.n_train=64", "--set", "data.options.n_val=16",
               "--set", "data.options.n_test=16", "--set", "data.batch_size=16",
               "--set", "model.layer.decay_max=0.9"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["model"] == "ema-toy" and res["steps"] == 4
    assert 0.0 <= res["test_acc"] <= 1.0 and res["test_n"] > 0
    saved = (out / "config.yaml").read_text()
    assert "ema-toy" in saved and "decay_max: 0.9" in saved
