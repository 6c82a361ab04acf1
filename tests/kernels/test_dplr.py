"""``s4_kernel`` (both algorithms) against ``s4_kernel_ref`` (dense A, textbook bilinear, one step per tap)."""

from __future__ import annotations

import pytest
import torch

from ptdssm.kernels.dplr import s4_kernel, s4_kernel_ref

from .common import assert_same_outputs_and_grads, c128, f64, rand_lambda

torch.set_num_threads(min(2, torch.get_num_threads()))


def _params(seed, H=2, m=3, r=1, S=2):
    g = torch.Generator().manual_seed(seed)
    return (rand_lambda(H, m, gen=g), torch.randn(H, r, m, dtype=c128, generator=g) * 0.5,
            torch.randn(H, m, dtype=c128, generator=g), torch.randn(S, H, m, dtype=c128, generator=g),
            torch.rand(H, dtype=f64, generator=g) * 0.1 + 1e-3)


@pytest.mark.parametrize("method", ["krylov", "cauchy", "auto"])
@pytest.mark.parametrize("r", [1, 2])
def test_s4_kernel_matches_ref(method, r):
    L = 40
    args = _params(r, r=r)
    K = s4_kernel(*args, L, method)
    assert K.shape == (2, 2, L) and K.dtype == f64
    assert_same_outputs_and_grads(lambda *a: s4_kernel(*a, L, method), lambda *a: s4_kernel_ref(*a, L), args,
                                  rtol=1e-8, atol=1e-9)


def test_s4_kernel_errors():
    with pytest.raises(ValueError, match="method"):
        s4_kernel(*_params(0), 8, "dense")


@pytest.mark.parametrize("method", ["krylov", "cauchy"])
def test_s4_kernel_gradcheck(method):
    args = tuple(t.requires_grad_() for t in _params(4, H=1, m=2, S=1))
    assert torch.autograd.gradcheck(lambda *a: s4_kernel(*a, 8, method), args)
