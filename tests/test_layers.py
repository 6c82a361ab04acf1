"""S4, S4D and S5 layers against float64 NumPy recurrences, step mode, gradients, padding, errors, runtime modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm import S4, S4D, S5
from ptdssm.theory.hippo import hippo_legs
from ptdssm.theory.init import ssm_init

torch.set_num_threads(min(2, torch.get_num_threads()))

S4D_CASES = [dict(init=i) for i in ("s4d-legs", "s4d-lin", "s4d-inv", "s4d-real")] + [
    dict(init="ptd", d_state=8), dict(init="s4d-legs", disc="bilinear"), dict(init="s4d-lin", conj_sym=False),
    dict(init="s4d-inv", stability="reflect", n_ssm=1), dict(init="s4d-legs", stability="clip")]
S5_CASES = [dict(), dict(init="ptd", d_state=8), dict(init="s5-ptd", d_state=8, blocks=2),
            dict(blocks=2, C_init="lecun_normal", disc="bilinear"), dict(conj_sym=False, C_init="complex_normal"),
            dict(scan="fft", stability="clip")]
S4_CASES = [dict(), dict(rank=2), dict(kernel="cauchy"), dict(kernel="cauchy", rank=2, stability="reflect")]
ALL = ([(S4D, c) for c in S4D_CASES] + [(S5, c) for c in S5_CASES] + [(S4, c) for c in S4_CASES])
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in c.items()) or 'default'}" for cls, c in ALL]


def make(cls, H=3, seed=0, perturb=0.0, **kw):
    torch.manual_seed(seed)
    kw = dict(kw)
    kw.setdefault("d_state", 16 if cls is S5 else 8)
    kw.setdefault("dt_min", 1e-2)
    layer = cls(H, **kw)
    if perturb:  # random "trained" parameters (keep Re Lambda < 0 through the stability map)
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name != "A_re" or layer.stability == "exp":
                    p.add_(perturb * torch.randn_like(p))
    return layer


# ------------------------------------------------------------------ float64 NumPy references
def _disc(lam, dt, method):
    if method == "zoh":
        return np.exp(dt * lam), (np.exp(dt * lam) - 1) / lam
    return (1 + dt * lam / 2) / (1 - dt * lam / 2), dt / (1 - dt * lam / 2)


def _np(t):
    return t.detach().to(torch.complex128 if t.is_complex() else torch.float64).cpu().numpy()


def ref_diag_s4d(layer, u):
    """S4D: x_k = Lambda_bar x_{k-1} + B_bar u_k per channel, y = f Re(C x) + D u."""
    lam = _np(layer._channels(layer._lambda()))
    B = _np(layer._channels(layer._complex(layer.B)))
    C = _np(layer._complex(layer.C))
    dt = _np(layer.step_sizes())[:, None]
    z, gam = _disc(lam, dt, layer.disc)
    f = 2.0 if layer.conj_sym else 1.0
    Bsz, L, H = u.shape
    y = np.zeros((len(C), Bsz, L, H))
    for d in range(len(C)):
        uu = u if d == 0 else u[:, ::-1]
        x = np.zeros((Bsz, H, lam.shape[1]), complex)
        for k in range(L):
            x = z * x + gam * B * uu[:, k, :, None]
            y[d, :, k] = f * (C[d] * x).sum(-1).real
    out = y[0] + (y[1][:, ::-1] if len(C) > 1 else 0)
    return out + u * _np(layer.D)


def ref_s5(layer, u):
    """S5: x_k = Lambda_bar x_{k-1} + B_bar u_k (MIMO), y = f Re(C~ x) + D u."""
    lam, dt = _np(layer._lambda()), _np(layer.step_sizes())
    z, gam = _disc(lam, dt, layer.disc)
    Bb = gam[:, None] * _np(layer._complex(layer.B))
    C = _np(layer._complex(layer.C))
    f = 2.0 if layer.conj_sym else 1.0
    Bsz, L, H = u.shape
    out = u * _np(layer.D)
    for d in range(len(C)):
        uu = u if d == 0 else u[:, ::-1]
        x, ys = np.zeros((Bsz, len(lam)), complex), []
        for k in range(L):
            x = z * x + uu[:, k] @ Bb.T
            ys.append(f * (x @ C[d].T).real)
        ys = np.stack(ys, 1)
        out = out + (ys if d == 0 else ys[:, ::-1])
    return out


def ref_s4_dense(layer, u, A_dense):
    """S4 through a dense A (N x N) per channel: bilinear A_bar, B_bar from the SAME formula, dense recurrence.

    ``A_dense(h) -> (A, B, C_rows, T)`` gives the system in some basis ``x = T x_modes``.
    """
    dt = _np(layer.step_sizes())
    Bsz, L, H = u.shape
    out = u * _np(layer.D)
    for h in range(H):
        A, B, Cs = A_dense(h)
        N = A.shape[0]
        M = np.eye(N) - dt[h] * A / 2
        Ab, Bb = np.linalg.solve(M, np.eye(N) + dt[h] * A / 2), np.linalg.solve(M, dt[h] * B)
        for d, C in enumerate(Cs):
            uu = u[:, :, h] if d == 0 else u[:, ::-1, h]
            x, ys = np.zeros((Bsz, N), complex), []
            for k in range(L):
                x = x @ Ab.T + uu[:, k, None] * Bb
                ys.append((x @ C).real)
            ys = np.stack(ys, 1)
            out[:, :, h] += ys if d == 0 else ys[:, ::-1]
    return out


def ref_s4_params(layer, u):
    lam = _np(layer._channels(layer._lambda()))
    P = _np(layer._channels(layer._complex(layer.P)))
    B = _np(layer._channels(layer._complex(layer.B)))
    C = _np(layer._complex(layer.C))

    def sys(h):
        lf = np.concatenate([lam[h], lam[h].conj()])
        pf = np.concatenate([P[h], P[h].conj()], -1)
        A = np.diag(lf) - pf.T @ pf.conj()
        return A, np.concatenate([B[h], B[h].conj()]), [np.concatenate([c[h], c[h].conj()]) for c in C]
    return ref_s4_dense(layer, u, sys)


def reference(layer, u):
    if isinstance(layer, S5):
        return ref_s5(layer, u)
    if isinstance(layer, S4):
        return ref_s4_params(layer, u)
    return ref_diag_s4d(layer, u)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - b) / np.linalg.norm(b))


# ------------------------------------------------------------------ reference tests
@pytest.mark.parametrize(("cls", "kw"), ALL, ids=IDS)
def test_forward_matches_float64_recurrence(cls, kw):
    layer = make(cls, perturb=0.05, **kw)
    u = torch.randn(2, 300, 3)
    y = layer(u)
    assert y.dtype == torch.float32 and y.shape == u.shape
    assert rel(y.detach().numpy(), reference(layer, u.double().numpy())) < 1e-4


@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_forward_long_and_bidirectional(cls):
    layer = make(cls, H=2, bidirectional=True, perturb=0.05)
    u = torch.randn(1, 1024, 2)
    assert rel(layer(u).detach().numpy(), reference(layer, u.double().numpy())) < 1e-4


def test_s4_equals_dense_hippo_legs_at_init():
    """At init the DPLR layer is the HiPPO-LegS system A_H (real, dense) written in the unitary basis V."""
    N = 8
    layer = make(S4, H=2, d_state=N, rank=2)
    si = ssm_init("s4-legs", N)
    Vf = np.concatenate([si.V, si.V.conj()], axis=1)  # (N, N) unitary, kept modes then conjugates
    A_H, B_H = hippo_legs(N)
    C = _np(layer._complex(layer.C))

    def sys(h):
        Cf = np.concatenate([C[0, h], C[0, h].conj()])
        return A_H, B_H, [Vf.conj() @ Cf]  # y = C_f x_modes = C_f V^H x_H
    u = torch.randn(2, 400, 2)
    assert rel(layer(u).detach().numpy(), ref_s4_dense(layer, u.double().numpy(), sys)) < 1e-4


# ------------------------------------------------------------------ step mode
@pytest.mark.parametrize(("cls", "kw"), ALL, ids=IDS)
def test_step_equals_forward(cls, kw):
    layer = make(cls, perturb=0.05, **kw)
    u = torch.randn(2, 200, 3)
    with torch.no_grad():
        y = layer(u)
    state = layer.init_state(2)
    shape0 = state.shape
    ys = []
    for t in range(u.shape[1]):
        yt, state = layer.step(u[:, t], state)
        ys.append(yt)
    assert state.shape == shape0  # O(1) memory in L
    ys = torch.stack(ys, 1)
    assert float((ys - y).norm() / y.norm()) < 1e-4, float((ys - y).norm() / y.norm())


def test_step_bidirectional_raises():
    layer = S4D(3, 8, bidirectional=True)
    with pytest.raises(RuntimeError, match="bidirectional"):
        layer.init_state(1)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize(("cls", "kw"), [(S4D, {}), (S4D, dict(init="s4d-real", bidirectional=True)),
                                         (S5, dict(d_state=4)), (S5, dict(d_state=4, bidirectional=True)),
                                         (S4, dict(d_state=4)), (S4, dict(d_state=4, kernel="cauchy", rank=2))])
def test_gradcheck_tiny_float64(cls, kw):
    kw.setdefault("d_state", 4)
    layer = make(cls, H=2, perturb=0.05, **kw).double()
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in layer.named_parameters())
    x = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,))
    assert torch.autograd.gradcheck(fn, (x, *params), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(("cls", "kw"), ALL, ids=IDS)
def test_every_trainable_param_gets_a_finite_grad(cls, kw):
    """No unused parameters under DDP: each parameter that requires grad receives one."""
    layer = make(cls, **kw)
    layer(torch.randn(2, 50, 3)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_freeze_flags(cls):
    layer = make(cls, freeze_A=True, freeze_B=True, freeze_dt=True)
    params = dict(layer.named_parameters())
    assert "C" in params and "A_re" not in params and "B" not in params and "log_dt" not in params
    assert {"A_re", "A_im", "B", "log_dt"} <= set(dict(layer.named_buffers()))
    assert {"A_re", "B", "log_dt", "C"} <= set(layer.state_dict())
    layer(torch.randn(1, 20, 3)).sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    assert not [n for n, p in layer.named_parameters() if hasattr(p, "_optim")]  # S4: P follows freeze_A


# ------------------------------------------------------------------ padding
@pytest.mark.parametrize(("cls", "bidir"), [(S4D, False), (S4D, True), (S5, False), (S5, True), (S4, True)])
def test_lengths_padding_invariance(cls, bidir):
    layer = make(cls, bidirectional=bidir, perturb=0.05)
    lengths = torch.tensor([37, 50, 12])
    x = torch.randn(3, 50, 3)
    y = layer(x * 1.0, lengths=lengths)
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e3 * torch.randn(50 - n, 3)
    y2 = layer(garbage, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = layer(x[b:b + 1, :n])
        torch.testing.assert_close(y[b:b + 1, :n], alone, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(y2[b:b + 1, :n], alone, rtol=1e-4, atol=1e-5)
        assert float(y2[b, n:].abs().sum()) == 0.0


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_input_errors(cls):
    layer = make(cls)
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(2, 10, 4))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(10, 3))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(2, 10, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="Tensor"):
        layer(np.zeros((2, 10, 3)))
    bad = torch.randn(2, 10, 3)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        layer(bad)
    with pytest.raises(TypeError, match="lengths"):
        layer(torch.randn(2, 10, 3), lengths=torch.tensor([3.0, 4.0]))
    with pytest.raises(ValueError, match="lengths"):
        layer(torch.randn(2, 10, 3), lengths=torch.tensor([3, 11]))
    with pytest.raises(ValueError, match="lengths"):
        layer(torch.randn(2, 10, 3), lengths=torch.tensor([3]))
    s = layer.init_state(2)
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(3, 3), s)


def test_constructor_errors():
    with pytest.raises(ValueError, match="init"):
        S4D(4, 8, init="s5-legs")
    with pytest.raises(ValueError, match="disc"):
        S4D(4, 8, disc="euler")
    with pytest.raises(ValueError, match="bilinear"):
        S4(4, 8, disc="zoh")
    with pytest.raises(ValueError, match="stability"):
        S5(4, 8, stability="none")
    with pytest.raises(ValueError, match="C_init"):
        S5(4, 8, C_init="zeros")
    with pytest.raises(ValueError, match="dt_min"):
        S4D(4, 8, dt_min=0.5, dt_max=0.1)
    with pytest.raises(ValueError, match="divisible"):
        S5(4, 6, blocks=4)


def test_shapes_of_introspection():
    assert make(S4D, H=5).step_sizes().shape == (5,)
    assert make(S4, H=5).step_sizes().shape == (5,)
    s5 = make(S5, H=5, d_state=16)
    assert s5.step_sizes().shape == (8,) and s5.eigenvalues().shape == (8,)
    assert make(S4D, H=5, d_state=8).eigenvalues().shape == (5, 4)
    assert (make(S4D, H=2, init="s4d-lin", stability="clip").eigenvalues().real < 0).all()


# ------------------------------------------------------------------ runtime modes
@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_autocast_bf16(cls):
    layer = make(cls, H=4)
    x = torch.randn(2, 64, 4)
    ref = layer(x)
    lin = torch.nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = lin(x)  # bf16 activations, as inside a model
        assert xb.dtype == torch.bfloat16
        y = layer(xb)
        assert y.dtype == torch.bfloat16
        y.float().sum().backward()
    assert torch.isfinite(y.float()).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y2 = layer(x)  # fp32 input: kernels stay fp32, output fp32
    torch.testing.assert_close(y2, ref)


def _compile_check(layer, backend):
    x = torch.randn(2, 32, layer.d_model, requires_grad=True)
    torch._dynamo.reset()
    try:
        comp = torch.compile(layer, backend=backend)
        y = comp(x)
    except Exception as e:  # noqa: BLE001 - an environment without a working C++ toolchain for inductor
        if backend == "inductor" and any(w in str(e).lower() for w in ("compiler", "gcc", "g++", "cpp")):
            pytest.skip(f"no working C++ toolchain for inductor: {e}")
        raise
    y.square().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    torch.testing.assert_close(y, layer(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_torch_compile_graph_capture(cls):
    """Dynamo + AOT autograd trace each layer (graph breaks allowed) and give the eager result."""
    _compile_check(make(cls, H=4), "aot_eager")


@pytest.mark.slow
def test_torch_compile_inductor_s4d_tiny():
    _compile_check(make(S4D, H=4), "inductor")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("cls", [S4D, S5, S4])
def test_cuda_matches_cpu(cls):
    layer = make(cls, H=4, bidirectional=True)
    x = torch.randn(2, 128, 4)
    ref = layer(x)
    y = layer.cuda()(x.cuda())
    torch.testing.assert_close(y.cpu(), ref, rtol=1e-4, atol=1e-4)
