"""S4 (DPLR): forward and step against a dense float64 recurrence, equality with HiPPO-LegS at init, the kernel
against ``s4_kernel_ref``, ``d_state`` meaning, gradients, freezing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm import S4
from ptdssm.kernels.dplr import s4_kernel_ref
from ptdssm.theory.hippo import hippo_legs
from ptdssm.theory.init import ssm_init

from . import contract
from .common import bidir_sum, gradcheck_layer, make, np64, param, rel, skip, tile

torch.set_num_threads(min(2, torch.get_num_threads()))

CASES = [dict(), dict(rank=2), dict(kernel="cauchy"), dict(kernel="cauchy", rank=2, stability="reflect")]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CASES]


def ref_dense(layer, u, system):
    """Per channel, ``system(h) -> (A, B, [C_d])`` dense (N x N); bilinear A_bar, B_bar by dense solves; dense
    recurrence ``x_k = A_bar x_{k-1} + B_bar u_k``, ``y = Re(C x) + D u`` (float64)."""
    dt = np64(layer.step_sizes())
    out = skip(layer, u)
    for h in range(layer.d_model):
        A, B, Cs = system(h)
        N = A.shape[0]
        M = np.eye(N) - dt[h] * A / 2
        Ab, Bb = np.linalg.solve(M, np.eye(N) + dt[h] * A / 2), np.linalg.solve(M, dt[h] * B)

        def run(uu, C, Ab=Ab, Bb=Bb, N=N):
            x, ys = np.zeros((u.shape[0], N), complex), []
            for k in range(u.shape[1]):
                x = x @ Ab.T + uu[:, k, None] * Bb
                ys.append((x @ C).real)
            return np.stack(ys, 1)
        out[:, :, h] += bidir_sum(run, Cs, u[:, :, h])
    return out


def reference(layer, u):
    H = layer.d_model
    lam, P, B = (tile(a, H) for a in (np64(layer.eigenvalues()), param(layer, "P"), param(layer, "B")))
    C = param(layer, "C")

    def system(h):
        lf = np.concatenate([lam[h], lam[h].conj()])
        pf = np.concatenate([P[h], P[h].conj()], -1)
        return (np.diag(lf) - pf.T @ pf.conj(), np.concatenate([B[h], B[h].conj()]),
                [np.concatenate([c[h], c[h].conj()]) for c in C])
    return ref_dense(layer, u, system)


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_forward_matches_float64_recurrence(kw):
    layer = make(S4, perturb=0.05, **kw)
    u = torch.randn(2, 300, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel(y, reference(layer, u.double().numpy())) < 1e-4


def test_forward_long_and_bidirectional():
    layer = make(S4, H=2, bidirectional=True, perturb=0.05)
    u = torch.randn(1, 1024, 2)
    assert rel(layer(u), reference(layer, u.double().numpy())) < 1e-4


def test_equals_dense_hippo_legs_at_init():
    """At init the DPLR layer is the HiPPO-LegS system A_H (real, dense) written in the unitary basis V."""
    N = 8
    layer = make(S4, H=2, d_state=N, rank=2)
    si = ssm_init("s4-legs", N)
    Vf = np.concatenate([si.V, si.V.conj()], axis=1)  # (N, N) unitary, kept modes then conjugates
    A_H, B_H = hippo_legs(N)
    C = param(layer, "C")

    def system(h):
        Cf = np.concatenate([C[0, h], C[0, h].conj()])
        return A_H, B_H, [Vf.conj() @ Cf]  # y = C_f x_modes = C_f V^H x_H
    u = torch.randn(2, 400, 2)
    assert rel(layer(u), ref_dense(layer, u.double().numpy(), system)) < 1e-4
    # the layer's dense matrix is A_H in the mode basis: V^H A_H V (float32 storage of Lambda, P)
    A_modes = Vf.conj().T @ A_H @ Vf
    assert rel(np64(layer.dense_A()[0]), A_modes) < 1e-6


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_step_matches_forward(kw):
    contract.check_step_matches_forward(lambda H, **o: make(S4, H=H, perturb=0.05, **kw, **o), L=200)


@pytest.mark.parametrize("kernel", ["krylov", "cauchy"])
def test_kernel_matches_ref(kernel):
    layer = make(S4, H=2, perturb=0.05, rank=2, kernel=kernel, bidirectional=True).double()
    H = layer.d_model
    args = [torch.as_tensor(tile(a, H)) for a in (np64(layer.eigenvalues()), param(layer, "P"), param(layer, "B"))]
    ref = s4_kernel_ref(*args, torch.as_tensor(param(layer, "C")), layer.step_sizes().detach(), 64)
    torch.testing.assert_close(layer.kernel(64).detach(), ref, rtol=1e-8, atol=1e-9)


def test_d_state_is_the_order_of_the_real_state_matrix():
    layer = make(S4, H=2, d_state=8)
    assert layer.d_state == 8 and layer.n_modes == 4
    assert layer.eigenvalues().shape == (2, 4) and layer.dense_A().shape == (2, 8, 8)


def test_gradcheck_tiny_float64():
    for kw in (dict(), dict(kernel="cauchy", rank=2)):
        assert gradcheck_layer(make(S4, H=2, d_state=4, perturb=0.05, **kw).double())


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_every_trainable_param_gets_a_finite_grad(kw):
    contract.check_gradients_reach_every_parameter(lambda H, **o: make(S4, H=H, **kw, **o))


def test_freeze_flags():
    layer = make(S4, freeze_A=True, freeze_B=True, freeze_dt=True)
    assert set(dict(layer.named_parameters())) == {"C", "D"}  # P follows freeze_A
    assert {"A_re", "A_im", "P", "B", "log_dt"} <= set(dict(layer.named_buffers()))
    layer(torch.randn(1, 20, 3)).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_state_dict_keys_unchanged():
    sd = make(S4, H=2, d_state=8, rank=2).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "D": (2,), "A_re": (2, 4), "A_im": (2, 4), "P": (2, 2, 4, 2), "B": (2, 4, 2), "C": (1, 2, 4, 2),
        "log_dt": (2,)}


def test_constructor_errors():
    with pytest.raises(ValueError, match="bilinear"):
        S4(4, 8, disc="zoh")
    with pytest.raises(ValueError, match="kernel"):
        S4(4, 8, kernel="dense")
    with pytest.raises(ValueError, match="init"):
        S4(4, 8, init="ptd")
