"""The SequenceMixer contract, checked for every registered family (a family is covered the day it is registered).

Sizes are small (``d_state = 8`` where the layer takes one); the family-specific tests live in ``test_<family>.py``.
"""

from __future__ import annotations

import pytest
import torch

from ptdssm.layers.registry import build_layer, family_names, layer_kwargs_schema

from . import contract

torch.set_num_threads(min(2, torch.get_num_threads()))

FAMILIES = family_names()


def factory(name: str):
    """``make(d_model, **overrides)`` for family ``name``: small state, longer memory where the layer has them."""
    schema = layer_kwargs_schema(name)
    small = {k: v for k, v in (("d_state", 8), ("dt_min", 1e-2)) if k in schema}

    def make(d_model: int, **kw):
        return build_layer(name, d_model, {**small, **kw})
    return make


def _bidirectional(name: str) -> bool:
    return "bidirectional" in layer_kwargs_schema(name)


@pytest.mark.parametrize("name", FAMILIES)
def test_step_matches_forward(name):
    contract.check_step_matches_forward(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_prefill_then_step(name):
    contract.check_prefill_then_step(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["causal", "bidirectional"])
def test_padding_never_leaks(name, bidirectional):
    if bidirectional and not _bidirectional(name):
        pytest.skip(f"{name} has no bidirectional option")
    contract.check_padding_never_leaks(factory(name), bidirectional=bidirectional)


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_reach_every_parameter(name):
    contract.check_gradients_reach_every_parameter(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_compile_matches_eager(name):
    contract.check_compile_matches_eager(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_autocast_bf16(name):
    contract.check_autocast_bf16(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_float64(name):
    contract.check_float64(factory(name))


@pytest.mark.parametrize("name", FAMILIES)
def test_input_errors(name):
    contract.check_input_errors(factory(name))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", FAMILIES)
def test_cuda_matches_cpu(name):
    contract.check_device_matches_cpu(factory(name), "cuda")
