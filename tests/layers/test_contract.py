"""The SequenceMixer contract, checked for every registered family (a family is covered the day it is registered).

Every check of :data:`contract.CHECKS` runs for every family. Sizes are small (``d_state = 8`` where the layer takes
one); the family-specific tests live in ``test_<family>.py``.
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
    small = {k: v for k, v in (("d_state", 8), ("dt_min", 1e-2), ("headdim", 2)) if k in schema}

    def make(d_model: int, **kw):
        return build_layer(name, d_model, {**small, **kw})
    return make


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.check_id)
@pytest.mark.parametrize("name", FAMILIES)
def test_contract(name, check):
    check(factory(name))


def test_checks_cover_the_contract_module():
    """Every ``check_*`` of contract.py is in CHECKS (directly, or through a wrapper that CHECKS holds)."""
    defined = {n for n in dir(contract) if n.startswith("check_") and n != "check_id"}
    listed = {c.__name__ for c in contract.CHECKS}
    wrapped = {"check_device_matches_cpu"}  # run by check_cuda_matches_cpu
    assert defined == listed | wrapped
