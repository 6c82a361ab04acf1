"""Optimizer hints and parameter groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ptdssm import S4, S4D, S5
from ptdssm.optim import param_groups


class Tiny(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.enc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.s4d = S4D(4, 8, **kw)
        self.s5 = S5(4, 8, lr=5e-4)
        self.s4 = S4(4, 8, freeze_A=True, freeze_B=True, freeze_dt=True)
        self.dec = nn.Linear(4, 2)

    def forward(self, x):
        h = self.norm(self.enc(x))
        return self.dec(self.s4(self.s5(self.s4d(h))))


def _by_id(groups):
    return {id(p): g for g in groups for p in g["params"]}


def test_groups_honour_hints():
    torch.manual_seed(0)
    m = Tiny()
    groups = param_groups(m, lr=1e-2, weight_decay=0.1, ssm_lr=1e-3)
    g = _by_id(groups)
    trainable = [p for p in m.parameters() if p.requires_grad]
    assert len(g) == len(trainable)  # every trainable parameter exactly once
    for p in (m.s4d.A_re, m.s4d.A_im, m.s4d.B, m.s4d.log_dt):
        assert g[id(p)]["lr"] == 1e-3 and g[id(p)]["weight_decay"] == 0.0
    for p in (m.s5.A_re, m.s5.B, m.s5.log_dt):  # the layer's own lr hint wins over ssm_lr
        assert g[id(p)]["lr"] == 5e-4 and g[id(p)]["weight_decay"] == 0.0
    for p in (m.enc.bias, m.norm.weight, m.norm.bias, m.s4d.D, m.dec.bias):
        assert g[id(p)]["lr"] == 1e-2 and g[id(p)]["weight_decay"] == 0.0
    for p in (m.enc.weight, m.dec.weight, m.s4d.C, m.s5.C, m.s4.C):
        assert g[id(p)]["lr"] == 1e-2 and g[id(p)]["weight_decay"] == 0.1
    # frozen tensors are buffers: not in any group
    assert "A_re" in dict(m.s4.named_buffers()) and id(m.s4.A_re) not in g
    # ssm_lr defaults to lr
    g2 = _by_id(param_groups(m, lr=2e-2))
    assert g2[id(m.s4d.A_re)]["lr"] == 2e-2 and g2[id(m.s4d.A_re)]["weight_decay"] == 0.0


def test_adamw_updates_trainable_and_leaves_frozen_untouched():
    torch.manual_seed(0)
    m = Tiny()
    m.enc.weight.requires_grad_(False)  # requires_grad=False is honoured too
    frozen = {k: v.clone() for k, v in m.s4.named_buffers()}
    enc_w = m.enc.weight.detach().clone()
    before = {n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(param_groups(m, lr=1e-2, weight_decay=0.1, ssm_lr=1e-3))
    for _ in range(2):
        opt.zero_grad()
        m(torch.randn(2, 10, 3)).square().mean().backward()
        opt.step()
    for k, v in m.s4.named_buffers():
        torch.testing.assert_close(v, frozen[k], rtol=0, atol=0)
    torch.testing.assert_close(m.enc.weight, enc_w, rtol=0, atol=0)
    changed = [n for n, p in m.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert len(changed) == len(before)


def test_param_groups_errors():
    with pytest.raises(ValueError, match="lr"):
        param_groups(nn.Linear(2, 2), lr=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(nn.Linear(2, 2), lr=1e-3, weight_decay=-1.0)
