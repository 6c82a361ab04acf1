"""Shift-register kernels: the shift SSM's kernel against explicit matrix powers and against the state recurrence it
stands for, and the short causal FIR against its double sum, ``F.conv1d`` and one step at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ptdssm.kernels.fftconv import fft_conv_ref
from ptdssm.kernels.shift import causal_conv, causal_conv_ref, fir_step, shift_ssm_kernel, shift_ssm_kernel_ref

from .common import assert_same_outputs_and_grads, f64

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("N", [1, 2, 7])
def test_shift_kernel_matches_matrix_powers(N):
    g = torch.Generator().manual_seed(N)
    C, B = torch.randn(3, N, dtype=f64, generator=g), torch.randn(3, N, dtype=f64, generator=g)
    assert_same_outputs_and_grads(shift_ssm_kernel, shift_ssm_kernel_ref, (C, B))
    # the paper's B = e_1: the kernel is C itself
    torch.testing.assert_close(shift_ssm_kernel(C), C, rtol=0, atol=0)
    torch.testing.assert_close(shift_ssm_kernel_ref(C), C, rtol=0, atol=1e-15)


def test_shift_ssm_recurrence_is_the_kernel_convolution():
    """``x_t = S x_{t-1} + B u_t``, ``y_t = C x_t`` run as a NumPy loop equals the causal convolution with
    ``shift_ssm_kernel(C, B)``; with ``B = e_1``, ``C = e_j`` the output is the input delayed by ``j``."""
    g = torch.Generator().manual_seed(0)
    H, N, L = 2, 5, 17
    C, B = torch.randn(H, N, dtype=f64, generator=g), torch.randn(H, N, dtype=f64, generator=g)
    u = torch.randn(1, H, L, dtype=f64, generator=g)
    S = np.diag(np.ones(N - 1), -1)
    ys = np.zeros((H, L))
    for h in range(H):
        x = np.zeros(N)
        for t in range(L):
            x = S @ x + B[h].numpy() * u[0, h, t].item()
            ys[h, t] = C[h].numpy() @ x
    np.testing.assert_allclose(fft_conv_ref(u, shift_ssm_kernel(C, B))[0].numpy(), ys, atol=1e-12)
    for j in range(N):
        e_j = torch.zeros(H, N, dtype=f64)
        e_j[:, j] = 1.0
        delayed = fft_conv_ref(u, shift_ssm_kernel(e_j))[0]
        torch.testing.assert_close(delayed[:, j:], u[0, :, : L - j], rtol=0, atol=1e-15)
        assert float(delayed[:, :j].abs().sum()) == 0.0


@pytest.mark.parametrize("K", [1, 3, 4])
@pytest.mark.parametrize("with_bias", [False, True])
def test_causal_conv_matches_ref_and_conv1d(K, with_bias):
    g = torch.Generator().manual_seed(K)
    u = torch.randn(2, 11, 5, dtype=f64, generator=g)
    w = torch.randn(5, K, dtype=f64, generator=g)
    b = torch.randn(5, dtype=f64, generator=g) if with_bias else None
    if with_bias:
        assert_same_outputs_and_grads(causal_conv, causal_conv_ref, (u, w, b))
    else:
        assert_same_outputs_and_grads(lambda u, w: causal_conv(u, w), lambda u, w: causal_conv_ref(u, w), (u, w))
    # PyTorch's depthwise conv with K - 1 zeros on the left, cut to the first L outputs (nn.Conv1d's orientation)
    ref = F.conv1d(u.transpose(1, 2), w[:, None], b, padding=K - 1, groups=5)[..., :11].transpose(1, 2)
    torch.testing.assert_close(causal_conv(u, w, b), ref, rtol=1e-12, atol=1e-12)


def test_fir_step_equals_causal_conv():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(3, 9, 4, dtype=f64, generator=g)
    w, b = torch.randn(4, 3, dtype=f64, generator=g), torch.randn(4, dtype=f64, generator=g)
    buf = torch.zeros(3, 2, 4, dtype=f64)
    ys = []
    for t in range(9):
        y, buf = fir_step(u[:, t], buf, w, b)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), causal_conv(u, w, b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(buf, u[:, -2:])  # the last K - 1 inputs, oldest first


def test_shift_kernel_and_causal_conv_gradcheck():
    g = torch.Generator().manual_seed(2)
    C = torch.randn(2, 4, dtype=f64, generator=g, requires_grad=True)
    B = torch.randn(2, 4, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(shift_ssm_kernel, (C, B))
    u = torch.randn(1, 5, 2, dtype=f64, generator=g, requires_grad=True)
    w = torch.randn(2, 3, dtype=f64, generator=g, requires_grad=True)
    b = torch.randn(2, dtype=f64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(causal_conv, (u, w, b))


def test_shift_kernel_shape_error():
    with pytest.raises(ValueError, match="same shape") as info:
        shift_ssm_kernel(torch.zeros(2, 3), torch.zeros(2, 4))
    assert "\n" not in str(info.value)


def test_causal_conv_filter_longer_than_input():
    g = torch.Generator().manual_seed(4)
    u = torch.randn(2, 2, 3, dtype=f64, generator=g)
    w, b = torch.randn(3, 5, dtype=f64, generator=g), torch.randn(3, dtype=f64, generator=g)
    assert_same_outputs_and_grads(causal_conv, causal_conv_ref, (u, w, b))
