"""Residual blocks around any mixer: the three block kinds against explicit formulas, and the family's block kind."""

import pytest
import torch
from torch import nn

from ptdssm.config import config_from_dict
from ptdssm.data import TaskInfo
from ptdssm.layers import SequenceMixer, registry
from ptdssm.models import MLP, ResidualBlock, build_model

H = 6


class GatedScale(SequenceMixer):
    """A toy mixer that gates itself: ``y_t = x_t * sigmoid(w) + cumsum(x)_t * v`` (causal)."""

    def __init__(self, d_model: int, *, scale: float = 1.0, dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.w = nn.Parameter(torch.linspace(-1, 1, d_model))
        self.v = nn.Parameter(torch.full((d_model,), 0.1 * scale))

    def _forward(self, u, lengths):
        return u * torch.sigmoid(self.w) + torch.cumsum(u, dim=1) * self.v


def _param_ids(module):
    return {id(p) for p in module.parameters()}


@pytest.mark.parametrize("prenorm", [True, False])
@pytest.mark.parametrize("residual", [True, False])
def test_block_kinds_against_formulas(prenorm, residual):
    torch.manual_seed(0)
    x = torch.randn(2, 5, H)
    for kind in ("ssm", "mixer", "mlp"):
        blk = ResidualBlock(GatedScale(H), H, block=kind, norm="layer", prenorm=prenorm, residual=residual,
                            activation="gelu").eval()

        z = blk.mixer(blk.norm(x) if prenorm else x)
        z = blk.mix(z) if kind == "ssm" else z
        ref = (x + z if residual else z) if prenorm else blk.norm(x + z if residual else z)
        if kind == "mlp":
            z = blk.norm2(ref) if prenorm else ref
            z = blk.mlp.fc2(torch.nn.functional.gelu(blk.mlp.fc1(z)))
            ref = (ref + z if residual else z) if prenorm else blk.norm2(ref + z if residual else z)
        torch.testing.assert_close(blk(x), ref)


def test_mixer_block_has_no_mlp_and_mlp_block_has_one():
    mixer = GatedScale(H)
    blk = ResidualBlock(mixer, H, block="mixer", norm="layer")
    assert _param_ids(blk) == _param_ids(mixer) | _param_ids(blk.norm)
    assert blk.mix is None and blk.mlp is None
    blk = ResidualBlock(GatedScale(H), H, block="mlp", norm="layer")
    assert isinstance(blk.mlp, MLP) and blk.mlp.fc1.weight.shape == (4 * H, H) and blk.mix is None
    with pytest.raises(ValueError, match="block kind"):
        ResidualBlock(GatedScale(H), H, block="attention")


def test_old_checkpoints_name_the_mixer_ssm():
    torch.manual_seed(0)
    blk = ResidualBlock(GatedScale(H), H, norm="layer")
    legacy = {k.replace("mixer.", "ssm.", 1): v.clone() + 1 for k, v in blk.state_dict().items()}
    fresh = ResidualBlock(GatedScale(H), H, norm="layer")
    fresh.load_state_dict(legacy)  # strict
    torch.testing.assert_close(fresh.mixer.w, legacy["ssm.w"])
    assert fresh.ssm is fresh.mixer


@pytest.fixture
def toy_family(monkeypatch):
    """A family of GatedScale mixers with the 'mixer' block kind, registered for this test only."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    registry.register_family("gated-toy", GatedScale, block="mixer", description="test toy")
    return "gated-toy"


def test_a_registered_family_builds_its_block_kind_and_options(toy_family):
    cfg = config_from_dict({"model": {"name": toy_family, "n_layers": 2, "d_model": H, "norm": "layer",
                                      "layer": {"scale": "2"}}})
    assert cfg.model.layer == {"scale": 2.0}  # coerced to the constructor's annotation
    m = build_model(cfg.model, TaskInfo("t", n_classes=3, seq_len=8, d_input=2))
    assert all(b.block == "mixer" and b.mlp is None and b.mix is None for b in m.blocks)
    torch.testing.assert_close(m.blocks[0].mixer.v.detach(), torch.full((H,), 0.2))
    assert m(torch.randn(2, 8, 2)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"model\.layer\.d_state.*valid: scale"):
        config_from_dict({"model": {"name": toy_family, "layer": {"d_state": 4}}})


def test_channel_mix_keeps_the_state_dict_keys_and_constants_are_defined_once():
    """The post-mixer activation/GLU module is ChannelMix (no second "Mixer" next to SequenceMixer); its parameters
    stay under ``mix.`` in a block, so old checkpoints load. Block kinds and heads have one definition each."""
    import ptdssm.models as models
    from ptdssm.data import base
    from ptdssm.models import BLOCK_KINDS, HEADS, ChannelMix, sequence

    blk = ResidualBlock(GatedScale(H), H, norm="layer", activation="glu")
    assert type(blk.mix) is ChannelMix and not hasattr(models, "Mixer")
    assert {"mix.linear.weight", "mix.linear.bias"} <= set(blk.state_dict())
    assert BLOCK_KINDS is registry.BLOCKS and HEADS is base.HEADS is sequence.HEADS
