"""Selective scan (Mamba-1): the fast Function against the one-step reference, in float64 and fp32."""

import pytest
import torch

from ptdssm.kernels.selective_scan import selective_scan, selective_scan_ref

F64 = torch.float64
BSZ, DCH, N = 2, 6, 4

# (B shape, C shape) builders: time-invariant, input-dependent, grouped, mixed
LAYOUTS = {
    "invariant": (lambda L: (DCH, N), lambda L: (DCH, N)),
    "dependent": (lambda L: (BSZ, N, L), lambda L: (BSZ, N, L)),
    "groups": (lambda L: (BSZ, 2, N, L), lambda L: (BSZ, 2, N, L)),
    "mixed": (lambda L: (DCH, N), lambda L: (BSZ, 3, N, L)),
    "groups_2_3": (lambda L: (BSZ, 2, N, L), lambda L: (BSZ, 3, N, L)),
}


def _inputs(layout, L, dtype=F64, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    bs, cs = LAYOUTS[layout]

    def r(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=F64) * scale + shift).to(dtype).requires_grad_(grad)

    u = r(BSZ, DCH, L)
    delta = (torch.rand(BSZ, DCH, L, generator=g, dtype=F64) * 0.6 + 0.01).to(dtype).requires_grad_(grad)
    A = (-torch.rand(DCH, N, generator=g, dtype=F64) * 2 - 0.1).to(dtype).requires_grad_(grad)
    return dict(u=u, delta=delta, A=A, B=r(*bs(L)), C=r(*cs(L)), D=r(DCH), z=r(BSZ, DCH, L),
                delta_bias=r(DCH, scale=0.3), initial_state=r(BSZ, DCH, N))


def _run(fn, kw, softplus, use_z, **extra):
    kw = dict(kw)
    if not use_z:
        kw.pop("z")
    if not softplus:
        kw.pop("delta_bias")
    return fn(**kw, delta_softplus=softplus, return_last_state=True, **extra)


def _loss(y, h):
    L = y.shape[-1]
    w = torch.cos(torch.arange(L, dtype=y.dtype, device=y.device) * 0.7)
    return (y * w).sum() + (h * h).sum()


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("softplus,use_z", [(False, False), (True, True)])
def test_matches_reference_fp64(layout, softplus, use_z):
    kw = _inputs(layout, L=23)
    names = [k for k in kw if (use_z or k != "z") and (softplus or k != "delta_bias")]
    outs = []
    for fn, extra in ((selective_scan_ref, {}), (selective_scan, {"chunk_size": 5})):
        y, h = _run(fn, kw, softplus, use_z, **extra)
        grads = torch.autograd.grad(_loss(y, h), [kw[k] for k in names])
        outs.append((y, h, grads))
    (yr, hr, gr), (yf, hf, gf) = outs
    assert yf.shape == (BSZ, DCH, 23) and hf.shape == (BSZ, DCH, N)
    torch.testing.assert_close(yf, yr, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(hf, hr, rtol=1e-10, atol=1e-10)
    for name, a, b in zip(names, gf, gr, strict=True):
        assert a.shape == kw[name].shape, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


def test_default_chunk_and_no_optional_inputs():
    kw = _inputs("dependent", L=40, grad=False)
    args = (kw["u"], kw["delta"], kw["A"], kw["B"], kw["C"])
    torch.testing.assert_close(selective_scan(*args), selective_scan_ref(*args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", ["invariant", "groups"])
def test_gradcheck(layout):
    kw = _inputs(layout, L=5)  # tiny sizes; every input at once
    names = list(kw)

    def f(*tensors):
        y, h = selective_scan(**dict(zip(names, tensors, strict=True)), delta_softplus=True,
                              return_last_state=True, chunk_size=2)
        return y, h

    assert torch.autograd.gradcheck(f, tuple(kw[k] for k in names))


def test_fp32_against_fp64_reference():
    kw64 = _inputs("groups", L=64, grad=False, seed=3)
    kw32 = {k: v.float() for k, v in kw64.items()}
    y64, h64 = _run(selective_scan_ref, kw64, True, True)
    y32, h32 = _run(selective_scan, kw32, True, True)
    assert y32.dtype == torch.float32
    rel = ((y32.double() - y64).norm() / y64.norm()).item()
    rel_h = ((h32.double() - h64).norm() / h64.norm()).item()
    assert rel < 1e-5 and rel_h < 1e-5, (rel, rel_h)


@pytest.mark.parametrize("fn", [selective_scan, selective_scan_ref])
@pytest.mark.parametrize("layout", ["invariant", "dependent", "groups"])
def test_last_state_continues(fn, layout):
    kw = _inputs(layout, L=30, grad=False, seed=1)
    kw.pop("initial_state")
    k = 13

    def cut(v, sl):
        return v[..., sl] if v.dim() >= 3 and v.shape[-1] == 30 else v

    y_full, h_full = _run(fn, kw, True, True)
    y1, h1 = _run(fn, {n: cut(v, slice(0, k)) for n, v in kw.items()}, True, True)
    y2, h2 = _run(fn, {n: cut(v, slice(k, None)) for n, v in kw.items()}, True, True, initial_state=h1)
    torch.testing.assert_close(torch.cat([y1, y2], dim=-1), y_full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h2, h_full, rtol=1e-12, atol=1e-12)


def test_gradient_only_through_last_state():
    kw = _inputs("dependent", L=12)
    _, hf = _run(selective_scan, kw, False, False, chunk_size=4)
    _, hr = _run(selective_scan_ref, kw, False, False)
    gf = torch.autograd.grad(hf.sum(), [kw["u"], kw["A"], kw["initial_state"]])
    gr = torch.autograd.grad(hr.sum(), [kw["u"], kw["A"], kw["initial_state"]])
    for a, b in zip(gf, gr, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_backward_memory_is_linear():
    """Only L / T chunk-entry states are saved besides the inputs (no per-step tensors)."""
    kw = _inputs("dependent", L=64, grad=True)
    kw.pop("z")
    kw.pop("delta_bias")
    y = selective_scan(**kw, chunk_size=16)
    node = y.grad_fn
    while node is not None and "SelectiveScan" not in type(node).__name__:
        node = node.next_functions[0][0]
    assert node is not None
    saved = node.saved_tensors
    assert len(saved) == 5 + 64 // 16  # u, delta, A, B, C and one (B, D, N) state per chunk
    assert all(t.numel() == BSZ * DCH * N for t in saved[5:])


def test_bad_groups_raise():
    kw = _inputs("dependent", L=4, grad=False)
    with pytest.raises(ValueError):
        selective_scan(kw["u"], kw["delta"], kw["A"], torch.randn(BSZ, 4, N, 4, dtype=F64), kw["C"])


def test_channels_last_views():
    """``(B, L, D)`` tensors passed as ``transpose(1, 2)`` views (as a Mamba layer holds them) give the same result."""
    kw = _inputs("dependent", L=19, grad=False, seed=7)
    for k in ("u", "delta", "z"):
        kw[k] = kw[k].transpose(1, 2).contiguous().transpose(1, 2)
    y, h = _run(selective_scan, kw, True, True, chunk_size=4)
    yr, hr = _run(selective_scan_ref, kw, True, True)
    torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, hr, rtol=1e-12, atol=1e-12)
