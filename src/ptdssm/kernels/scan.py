r"""Diagonal linear recurrence over whole sequences (S5): ``x_k = z * x_{k-1} + v_k``, ``x_{-1} = 0``.

``z = Lambda_bar = exp(log_z)`` is ``(m,)`` complex, ``v = B_bar u`` is ``(B, L, m)`` complex. Two algorithms:

- :func:`diag_scan_chunked` (default): split time into chunks of ``T`` (32). Inside a chunk,
  ``x_{cT+t} = z^t cumsum_{s<=t}(z^{-s} v_{cT+s}) + z^{t+1} x_{cT-1}`` (elementwise ops and one ``cumsum`` on the
  ``(B, L/T, T, m)`` view, no layout copies); the chunk-end states ``e_c = z^T e_{c-1} + (local end)_c`` take a
  loop of ``L/T`` tiny ``(B, m)`` steps. ``O(B L m)`` work, exact up to rounding (no wrap-around).
- :func:`diag_scan_fft`: per-state causal convolution with ``z^l`` through a complex FFT of size ``2L``.

**Fast modes.** ``z^{-s}`` must not overflow: a chunk needs ``T |Re log z| <= 30``. PTD's eigenvalues reach
``Re lambda ~ -860`` (``|Re log z| ~ 86`` at ``dt = 0.1``); capping ``T`` for all modes (as a first version did) made
it 1 there, a loop of ``L`` tiny steps. Instead modes are split by decay (:func:`diag_scan_split`): those with
``T Re log z > -30`` keep chunks of ``T``; the fast ones (``|z|^T < e^-30``) take the windowed sum
``x_k = sum_{j<W} z^j v_{k-j}``, by doubling (``x += z^s x`` shifted by ``s = 1, 2, 4, ..``, ``log2 W`` passes),
with ``W`` the least power of two such that ``|z|^W <= e^-20`` in fp32, ``e^-40`` in fp64 (``4 - log eps``): the
dropped tail is below the dtype's rounding, so the result is exact in the same sense as the chunks. With ``T = 32``
a fast mode has ``|Re log z| > 0.94``, so ``W = 32`` (fp32) or 64 (fp64): 5-6 elementwise passes over the few fast
modes. A layer that orders its modes by decay (:func:`decay_order`; S5 permutes ``Lambda``, ``B~`` and ``C~``, small
tensors) hands the fast modes over as a trailing slice, and gets the two groups' states back to concatenate in its
read-out; otherwise the fast modes are gathered and their states put back in place.

Chosen by measurement (2 CPU threads on a shared machine, torch 2.13, B=16, L=4096, m=128 complex states, the
whole S5 layer, forward / forward+backward CPU time): chunked-cumsum ~0.6 s / ~2.1 s, FFT ~1.0 s / ~2.9 s, a first
chunked version with per-state ``(T, T)`` Toeplitz GEMMs ~1.6 s / ~2.5 s (complex ``bmm`` over a permuted layout
spent most of its time in copies). Complex FFTs of ``(B, m, 2L)`` alone cost about one real-FFT floor, so the
FFT route can never beat a scan that is a handful of elementwise passes. A sequential Python loop over all ``L``
steps is far slower (thousands of tiny kernels, each kept by autograd); it is :func:`diag_scan_ref`, the plain
definition both algorithms are tested against.

Measured for the fast-mode split (2026-12, shared 2-core machine under load 4-9, ``OMP_NUM_THREADS=1``, torch
2.13, the bench's layers at B=16, H=256, L=4096: S5 ``s5-legs`` and S5-PTD ``d_state`` 256, 4 blocks, 128 modes;
ratio of the layer's CPU time to the FFT floor of the same round, median of 3 rounds, forward / forward+backward):
S5 2.03 / 1.95; S5-PTD (``ptd`` = ``ptd-response``: 11 of its 128 modes fast, ``|Re log z|`` up to 37) 2.51 / 1.95
with ``T`` capped for all modes (``T = 1``, 4096 chunk-end steps) and 2.14 / 1.98 split; ``ptd-paper-pairs`` 2.79 /
2.22 capped, 2.08 / 1.96 split. A second run in one process, the cases alternated for 7 rounds: S5 2.29 / 1.85,
S5-PTD 2.79 / 1.99 capped, 2.16 / 1.94 split. On a quiet machine the capped version was measured at 2.65 / 2.84
against S5's 2.58 / 1.89 (the loop's ~12k tiny autograd ops weigh more where the large passes are fast). The
split costs S5-PTD over S5 one ``cat`` of the ``(B, L, m)`` input gradient (the backward of splitting ``v``) and
the windowed passes over the fast modes; the states' ``cat`` is S5's read-out copy, which it does anyway.
"""

from __future__ import annotations

import math

import torch

from .vandermonde import powers

__all__ = ["decay_order", "diag_scan", "diag_scan_chunked", "diag_scan_fft", "diag_scan_ref", "diag_scan_split"]

_BUDGET = 30.0  # largest T |Re log z| in a chunk: |z|^-T <= e^30, no overflow in fp32


def _complex(re: torch.Tensor, im: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    real = torch.empty((), dtype=dtype).real.dtype
    return torch.complex(re.to(real), im.to(real))


def _check(log_z: torch.Tensor, v: torch.Tensor) -> None:
    if v.dim() != 3 or log_z.shape != v.shape[-1:]:
        raise ValueError(f"expected v (B, L, m) and log_z (m,), got {tuple(v.shape)} and {tuple(log_z.shape)}")


def _safe_chunk(log_z: torch.Tensor, chunk: int, budget: float = _BUDGET) -> int:
    """Largest chunk ``T <= chunk`` with ``T max|Re log z| <= budget`` (so ``|z|^-T <= e^30``, no overflow)."""
    decay = float(log_z.real.detach().abs().max()) if log_z.numel() else 0.0
    return max(1, min(chunk, int(budget / decay) if decay > 0 else chunk))


def _fast(log_z: torch.Tensor, T: int, budget: float = _BUDGET) -> torch.Tensor:
    """``(m,)`` bool: the decaying modes too fast for chunks of ``T`` (``T Re log z < -budget``)."""
    return log_z.real.detach() * T < -budget


def decay_order(log_z: torch.Tensor, L: int, chunk: int = 32) -> torch.Tensor | None:
    """Mode order, ``(m,)`` long, by ``Re log z`` descending (the fast-decaying modes last), or ``None`` when no mode
    is too fast for chunks of ``min(chunk, L)`` or the modes are already so ordered.

    A layer that permutes its ``(m, ...)`` parameters by it (and its read-out consistently) hands
    :func:`diag_scan_split` its fast modes as one trailing slice: no gather/scatter of the ``(B, L, m)`` states.
    """
    if not bool(_fast(log_z, max(1, min(chunk, L))).any()):
        return None
    order = torch.argsort(log_z.real.detach(), descending=True, stable=True)
    return None if bool((order == torch.arange(len(order), device=order.device)).all()) else order


def _chunk_scan(log_z: torch.Tensor, v: torch.Tensor, T: int) -> torch.Tensor:
    """Chunked cumulative sum with chunks of ``T`` (``T |Re log z| <= 30`` for every mode), ``(B, L, m)``."""
    Bsz, L, m = v.shape
    nc = -(-L // T)
    if nc * T != L:
        v = torch.nn.functional.pad(v, (0, 0, 0, nc * T - L))
    up_re, up_im = powers(log_z, T + 1)  # (m, T+1): z^0..z^T
    dn_re, dn_im = powers(log_z, T, stride=-1)  # (m, T): z^0..z^-(T-1)
    up = _complex(up_re, up_im, v.dtype).T.contiguous()  # (T+1, m); contiguous: strided broadcasts are slow
    dn = _complex(dn_re, dn_im, v.dtype).T.contiguous()  # (T, m)
    vc = v.view(Bsz, nc, T, m)
    x = torch.cumsum(vc * dn, dim=2) * up[:T]  # local states, zero state entering each chunk
    if nc > 1:
        # Chunk-end states e_c = z^T e_{c-1} + (local end)_c: a short sequential loop over nc = L/T chunks of
        # (B, m) ops (a batched complex GEMM with a (nc, nc) Toeplitz matrix was ~10x slower on CPU).
        zT = up[T]
        ends = x[:, :, T - 1].unbind(1)  # one unbind: per-index selects would each allocate a full-size grad
        e = torch.zeros_like(ends[0])
        carry = [e]
        for c in range(nc - 1):
            e = zT * e + ends[c]
            carry.append(e)
        x = x + up[1:] * torch.stack(carry, 1)[:, :, None]
    return x.reshape(Bsz, nc * T, m)[:, :L]


def _window_scan(log_z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``x_k = sum_{j<W} z^j v_{k-j}`` by doubling (``x += z^s x`` shifted by ``s = 1, 2, 4, ..``), ``(B, L, m)``.

    ``W = 2^K`` is the least power of two with ``|z|^W <= e^-tol`` for every mode, ``tol = 4 - log(eps)`` of the
    dtype (20 in fp32, 40 in fp64), or ``W >= L`` (exact): the dropped tail is below ``e^-tol / (1 - |z|)`` times
    ``max |v|``, under the dtype's rounding. Cost ``K`` elementwise passes (``K <= 5`` in fp32 when
    ``|Re log z| > 30/32``).
    """
    L = v.shape[1]
    tol = 4.0 - math.log(torch.finfo(v.real.dtype).eps)
    decay = float(-log_z.real.detach().max())  # > 0: only decaying modes come here
    K = min(max(0, math.ceil(math.log2(tol / decay))), max(0, math.ceil(math.log2(max(L, 1)))))
    x = v
    for k in range(K):
        s = 1 << k
        zs = torch.exp(log_z * float(s)).to(v.dtype)
        x = x + torch.nn.functional.pad(zs * x[:, :-s], (0, 0, s, 0))  # one slice: its backward is one zero-fill
    return x


def diag_scan_split(log_z: torch.Tensor, v: torch.Tensor, chunk: int = 32) -> list[torch.Tensor]:
    """States of ``x_k = exp(log_z) x_{k-1} + v_k`` as consecutive groups of modes, ``[(B, L, m_1), (B, L, m_2)]``
    (or one ``(B, L, m)``), whose concatenation along the modes is :func:`diag_scan_chunked`'s output: a caller that
    concatenates anyway (S5's read-out) saves a copy of the states.

    ``T = min(chunk, L)`` needs ``|z|^-T <= e^30`` (no overflow in fp32): modes with ``T Re log z < -30`` go through
    the windowed sum (:func:`_window_scan`, exact to below the dtype's rounding), the rest through chunks of ``T``
    (smaller only if a growing mode, ``Re log z > 0``, needs it). Fast modes that trail (:func:`decay_order`) are
    split off and come back as the second group; otherwise they are gathered and the states put back in the modes'
    order (one group).
    """
    _check(log_z, v)
    m, T = v.shape[2], max(1, min(chunk, v.shape[1]))
    fast = _fast(log_z, T)
    nf = int(fast.sum())
    if nf == 0:
        return [_chunk_scan(log_z, v, _safe_chunk(log_z, T))]
    if nf == m:
        return [_window_scan(log_z, v)]
    ms = m - nf
    if bool(fast[ms:].all()):  # already ordered: a split (its backward is one cat), no gather
        (slow_z, fast_z), (slow_v, fast_v) = log_z.split([ms, nf]), v.split([ms, nf], dim=-1)
        return [_chunk_scan(slow_z, slow_v, _safe_chunk(slow_z, T)), _window_scan(fast_z, fast_v)]
    slow_i, fast_i = (~fast).nonzero().squeeze(1), fast.nonzero().squeeze(1)
    slow_z = log_z[slow_i]
    x = torch.cat([_chunk_scan(slow_z, v[..., slow_i], _safe_chunk(slow_z, T)),
                   _window_scan(log_z[fast_i], v[..., fast_i])], dim=-1)
    return [x[..., torch.argsort(torch.cat([slow_i, fast_i]))]]


def diag_scan_chunked(log_z: torch.Tensor, v: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """States ``x (B, L, m)`` of ``x_k = exp(log_z) x_{k-1} + v_k`` (module docstring; the groups of
    :func:`diag_scan_split` concatenated).

    Inside a chunk ``x_{cT+t} = z^t cumsum_{s<=t}(z^-s v_{cT+s}) + z^{t+1} x_{cT-1}``; the rounding error of the
    cumulative sum is relative to its largest term ``z^-t v_t``, i.e. to ``O(|v|)`` after the rescaling by ``z^t``.
    Modes too fast for chunks of ``T = min(chunk, L)`` (``T Re log z < -30``) take the windowed sum instead.
    """
    parts = diag_scan_split(log_z, v, chunk)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def diag_scan_fft(log_z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Same as :func:`diag_scan_chunked` by a complex FFT convolution of size ``2L`` per state."""
    _check(log_z, v)
    L = v.shape[1]
    k_re, k_im = powers(log_z, L)  # (m, L)
    k = _complex(k_re, k_im, v.dtype)
    n = 2 * L
    x = torch.fft.ifft(torch.fft.fft(v, n=n, dim=1) * torch.fft.fft(k, n=n, dim=1).T, n=n, dim=1)
    return x[:, :L]


def diag_scan(log_z: torch.Tensor, v: torch.Tensor, method: str = "chunked", chunk: int = 32) -> torch.Tensor:
    """Dispatch to :func:`diag_scan_chunked` (default, faster on CPU) or :func:`diag_scan_fft`."""
    if method == "chunked":
        return diag_scan_chunked(log_z, v, chunk)
    if method == "fft":
        return diag_scan_fft(log_z, v)
    raise ValueError(f"unknown scan method {method!r}; expected 'chunked' or 'fft'")


def diag_scan_ref(log_z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain definition: ``x_k = exp(log_z) x_{k-1} + v_k`` one step at a time (``x_{-1} = 0``), ``(B, L, m)``."""
    _check(log_z, v)
    z = torch.exp(log_z)
    x, out = torch.zeros_like(v[:, 0]), []
    for k in range(v.shape[1]):
        x = z * x + v[:, k]
        out.append(x)
    return torch.stack(out, 1)
