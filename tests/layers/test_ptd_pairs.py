"""Conjugate-pairs PTD in the layers: S4D and S5 built from ``ptd-response`` (or ``ptd-paper-pairs``) keep ``N/2``
modes with conjugate symmetry, and equal, in float64, the full-state layers (all ``N`` modes, ``Re(.)``) built from
the same eigendecomposition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptdssm import S4D, S5
from ptdssm.theory.init import ssm_init

N = 16


def _c(t: torch.Tensor) -> np.ndarray:
    return torch.view_as_complex(t.detach().contiguous()).numpy()


def _partners(lam_half: np.ndarray, lam_full: np.ndarray, blocks: int = 1) -> list[tuple[int, bool]]:
    """For each full mode ``j``: ``(k, conjugated)`` with ``lam_full[j] = lam_half[k]`` or its conjugate, ``k`` in
    the same diagonal block (S5 repeats the eigenvalues on each block)."""
    out = []
    mh, mf = lam_half.size // blocks, lam_full.size // blocks
    for j, x in enumerate(lam_full):
        lo = (j // mf) * mh
        cand = lam_half[lo:lo + mh]
        d, dc = np.abs(cand - x), np.abs(cand.conj() - x)
        k, kc = int(d.argmin()), int(dc.argmin())
        out.append((lo + k, False) if d[k] <= dc[kc] else (lo + kc, True))
        assert min(d[k], dc[kc]) <= 1e-9 * np.abs(x), "the full layer has a mode the half one lacks"
    return out


@pytest.mark.parametrize("name", ["ptd-response", "ptd-paper-pairs"])
def test_init_keeps_one_mode_per_exact_conjugate_pair(name):
    half, full = ssm_init(name, N), ssm_init(name, N, conj_sym=False)
    assert half.conj_sym and half.n_modes == N // 2 and not full.conj_sym and full.n_modes == N
    assert np.all(half.Lambda.imag > 0) and np.all(full.Lambda.imag != 0)  # no real eigenvalue at all
    # the kept modes and their conjugates are exactly (bit for bit) the full decomposition's eigenvalues
    np.testing.assert_array_equal(np.sort_complex(np.concatenate([half.Lambda, half.Lambda.conj()])),
                                  np.sort_complex(full.Lambda))
    assert ssm_init("ptd-paper", N).n_modes == N  # the paper's objective keeps all N (some may be real)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_conjugate_symmetric_layer_equals_the_full_state_layer(bidirectional):
    torch.manual_seed(0)
    half = S4D(3, N, init="ptd-response", bidirectional=bidirectional).double()
    full = S4D(3, N, init="ptd-response", conj_sym=False, bidirectional=bidirectional).double()
    assert (half.n_modes, half.conj_sym, full.n_modes, full.conj_sym) == (N // 2, True, N, False)
    pairs = _partners(half.eigenvalues().detach().numpy()[0], full.eigenvalues().detach().numpy()[0])
    B_h, B_f, C_h = _c(half.B), _c(full.B), _c(half.C)
    C_f = np.empty(C_h.shape[:-1] + (N,), complex)
    for j, (k, conj) in enumerate(pairs):
        # B~ = V^-1 B_H of the full layer, built on its own, is the half layer's (conjugated for the partner)
        np.testing.assert_allclose(B_f[:, j], B_h[:, k].conj() if conj else B_h[:, k], rtol=1e-12, atol=1e-12)
        C_f[..., j] = C_h[..., k].conj() if conj else C_h[..., k]
    with torch.no_grad():
        full.C.copy_(torch.view_as_real(torch.from_numpy(C_f)))
        full.log_dt.copy_(half.log_dt)
        full.D.copy_(half.D)
    u = torch.randn(2, 120, 3, dtype=torch.float64)
    torch.testing.assert_close(full(u), half(u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("blocks", "bidirectional"), [(1, False), (2, True)])
def test_s5_conjugate_symmetric_layer_equals_the_full_state_layer(blocks, bidirectional):
    # Same seed: the real B (P x H) drawn before the basis change is the same in both layers, so B~ = V^-1 B of the
    # full layer must be the half layer's rows and their conjugates. (C is complex before the basis change, so
    # C~ = C V is not conjugate-closed: the full layer gets the half layer's C~ and its conjugates.)
    torch.manual_seed(1)
    half = S5(3, N, init="ptd-response", blocks=blocks, bidirectional=bidirectional).double()
    torch.manual_seed(1)
    full = S5(3, N, init="ptd-response", blocks=blocks, conj_sym=False, bidirectional=bidirectional).double()
    assert (half.n_modes, half.conj_sym, full.n_modes, full.conj_sym) == (N // 2, True, N, False)
    pairs = _partners(half.eigenvalues().detach().numpy(), full.eigenvalues().detach().numpy(), blocks)
    B_h, B_f, C_h = _c(half.B), _c(full.B), _c(half.C)
    C_f = np.empty(C_h.shape[:-1] + (N,), complex)
    log_dt = torch.empty(N, dtype=torch.float64)
    for j, (k, conj) in enumerate(pairs):
        np.testing.assert_allclose(B_f[j], B_h[k].conj() if conj else B_h[k], rtol=1e-10, atol=1e-12)
        C_f[..., j] = C_h[..., k].conj() if conj else C_h[..., k]
        log_dt[j] = half.log_dt[k]  # one step size per state: the pair shares it
    with torch.no_grad():
        full.C.copy_(torch.view_as_real(torch.from_numpy(C_f)))
        full.log_dt.copy_(log_dt)
    u = torch.randn(2, 120, 3, dtype=torch.float64)
    torch.testing.assert_close(full(u), half(u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("layer", "kw"), [(S4D, {}), (S5, {"blocks": 2})])
def test_d_state_convention_of_the_ptd_inits(layer, kw):
    # d_state = N is the order of the real state matrix for every init: N/2 stored modes for the pairs-only PTDs.
    assert layer(2, N, init="ptd-response", **kw).n_modes == N // 2
    assert layer(2, N, init="ptd-paper", **kw).n_modes == N
    # an odd (block) size keeps one real eigenvalue, so all its modes: no conjugate symmetry
    odd = {"d_state": 10, "blocks": 2} if layer is S5 else {"d_state": 9}
    assert layer(2, init="ptd-response", **odd).n_modes == odd["d_state"]
    with pytest.raises(ValueError, match="even"):
        layer(2, init="ptd-response", conj_sym=True, **odd)


@pytest.mark.parametrize("init", ["ptd", "ptd-paper", "ptd-response", "ptd-paper-pairs"])
@pytest.mark.parametrize(("layer", "kw"), [(S4D, {"d_state": N}), (S5, {"d_state": N, "blocks": 2}),
                                           (S4D, {"d_state": 6, "conj_sym": False})])
def test_meta_build_has_the_real_shapes_without_solving(init, layer, kw, tmp_path, monkeypatch):
    # Config validation builds layers on the meta device: it must not spend minutes on a PTD solve, and must give
    # the parameter shapes of the real build (compared for sizes whose real PTDs the other tests cache).
    real = layer(3, init=init, **kw)
    monkeypatch.setenv("PTDSSM_CACHE_DIR", str(tmp_path))  # an empty cache: a solve would write a file here
    with torch.device("meta"):
        meta = layer(3, init=init, **kw)
    assert list(tmp_path.iterdir()) == []
    assert meta.n_modes == real.n_modes and meta.conj_sym == real.conj_sym
    assert {k: v.shape for k, v in meta.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}
    with torch.device("meta"), pytest.raises(ValueError, match="objective"):
        layer(3, init=init, init_kwargs={"objective": "magic"}, **kw)
