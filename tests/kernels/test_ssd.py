"""Mamba-2 SSD: the chunked algorithm against the one-step reference and against the Mamba-1 selective scan."""

import pytest
import torch

from ptdssm.kernels.selective_scan import selective_scan, selective_scan_ref
from ptdssm.kernels.ssd import ssd_chunked, ssd_ref

F64 = torch.float64


def _inputs(L, Bsz=2, H=4, P=3, G=2, N=5, dtype=F64, seed=0, grad=True, d_hdim=False):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=F64).to(dtype).requires_grad_(grad)

    dt = (torch.rand(Bsz, L, H, generator=g, dtype=F64) * 0.5 + 0.02).to(dtype).requires_grad_(grad)
    A = (-torch.rand(H, generator=g, dtype=F64) * 3 - 0.2).to(dtype).requires_grad_(grad)
    return dict(x=r(Bsz, L, H, P), dt=dt, A=A, B=r(Bsz, L, G, N), C=r(Bsz, L, G, N),
                D=r(H, P) if d_hdim else r(H), initial_state=r(Bsz, H, P, N))


def _loss(y, h):
    w = torch.sin(torch.arange(y.shape[1], dtype=y.dtype) * 0.3)[None, :, None, None]
    return (y * w).sum() + (h * h).sum()


@pytest.mark.parametrize("chunk", [4, 16, 64])
@pytest.mark.parametrize("G,d_hdim,L,skip", [(1, False, 37, True), (2, True, 37, True), (4, False, 37, True),
                                             (2, False, 64, True), (1, True, 64, False), (2, False, 37, False)])
def test_chunked_matches_reference(chunk, G, d_hdim, L, skip):
    kw = _inputs(L=L, G=G, d_hdim=d_hdim)  # 37: not a multiple of any chunk size; 64: a multiple of all
    if not skip:
        kw.pop("D")
    names = list(kw)
    res = []
    for fn, extra in ((ssd_ref, {}), (ssd_chunked, {"chunk_size": chunk})):
        y, h = fn(**kw, return_last_state=True, **extra)
        res.append((y, h, torch.autograd.grad(_loss(y, h), [kw[k] for k in names])))
    (yr, hr, gr), (yc, hc, gc) = res
    assert yc.shape == (2, L, 4, 3) and hc.shape == (2, 4, 3, 5)
    torch.testing.assert_close(yc, yr, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(hc, hr, rtol=1e-10, atol=1e-10)
    for name, a, b in zip(names, gc, gr, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


def _as_mamba1(kw):
    """SSD inputs as a Mamba-1 selective scan: channels (h, p), A_h broadcast over N, dt repeated P times."""
    x, dt, A, B, C, D = (kw[k] for k in ("x", "dt", "A", "B", "C", "D"))
    Bsz, L, H, P = x.shape
    N = B.shape[-1]
    return dict(u=x.reshape(Bsz, L, H * P).transpose(1, 2), delta=dt.repeat_interleave(P, dim=2).transpose(1, 2),
                A=A.repeat_interleave(P)[:, None] * torch.ones(N, dtype=A.dtype),
                B=B.permute(0, 2, 3, 1), C=C.permute(0, 2, 3, 1),
                D=D.repeat_interleave(P) if D.dim() == 1 else D.reshape(-1),
                initial_state=kw["initial_state"].reshape(Bsz, H * P, N))


@pytest.mark.parametrize("G", [1, 2])
@pytest.mark.parametrize("scan", [selective_scan_ref, selective_scan])
def test_ssd_equals_selective_scan(G, scan):
    """Independent cross-check (families.md 2.2): Mamba-2 is Mamba-1 with a scalar A per head."""
    kw = _inputs(L=29, G=G)
    Bsz, L, H, P = kw["x"].shape
    names = list(kw)
    y1, h1 = ssd_chunked(**kw, return_last_state=True, chunk_size=8)
    y2, h2 = scan(**_as_mamba1(kw), return_last_state=True)
    y2 = y2.transpose(1, 2).reshape(Bsz, L, H, P)
    h2 = h2.reshape(Bsz, H, P, -1)
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h1, h2, rtol=1e-10, atol=1e-10)
    g1 = torch.autograd.grad(_loss(y1, h1), [kw[k] for k in names])
    g2 = torch.autograd.grad(_loss(y2, h2), [kw[k] for k in names])
    for name, a, b in zip(names, g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"gradient of {name}")


def test_gradcheck_tiny():
    kw = _inputs(L=6, Bsz=1, H=2, P=2, G=1, N=2)
    names = list(kw)

    def f(*tensors):
        return ssd_chunked(**dict(zip(names, tensors, strict=True)), return_last_state=True, chunk_size=4)

    assert torch.autograd.gradcheck(f, tuple(kw[k] for k in names))


def test_fp32_against_fp64_reference():
    kw64 = _inputs(L=100, H=4, P=8, G=2, N=16, grad=False, seed=2)
    kw32 = {k: v.float() for k, v in kw64.items()}
    y64, h64 = ssd_ref(**kw64, return_last_state=True)
    y32, h32 = ssd_chunked(**kw32, return_last_state=True, chunk_size=32)
    assert y32.dtype == torch.float32
    assert ((y32.double() - y64).norm() / y64.norm()).item() < 1e-5
    assert ((h32.double() - h64).norm() / h64.norm()).item() < 1e-5


@pytest.mark.parametrize("fn", [ssd_ref, ssd_chunked])
def test_last_state_continues(fn):
    kw = _inputs(L=40, grad=False, seed=4)
    kw.pop("initial_state")
    k = 17
    seq = ("x", "dt", "B", "C")
    y, h = fn(**kw, return_last_state=True)
    y1, h1 = fn(**{n: (v[:, :k] if n in seq else v) for n, v in kw.items()}, return_last_state=True)
    y2, h2 = fn(**{n: (v[:, k:] if n in seq else v) for n, v in kw.items()}, initial_state=h1,
                return_last_state=True)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h2, h, rtol=1e-12, atol=1e-12)


def test_long_sequence_strong_decay_is_finite():
    """Exponents are differences within a chunk (never exp of a large positive number, no division)."""
    kw = _inputs(L=300, H=2, P=2, G=1, N=3, dtype=torch.float32, grad=False, seed=5)
    kw["dt"] = kw["dt"] * 50  # |sum dt A| over a chunk of 64 reaches thousands
    y, h = ssd_chunked(**kw, return_last_state=True)
    yr, hr = ssd_ref(**kw, return_last_state=True)
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    torch.testing.assert_close(y, yr, rtol=1e-4, atol=1e-4)


def test_shape_errors():
    kw = _inputs(L=4, grad=False)
    kw["B"] = kw["B"][:, :, :1].expand(-1, -1, 3, -1)  # H=4 not divisible by G=3
    kw["C"] = kw["B"]
    with pytest.raises(ValueError):
        ssd_chunked(**kw)
