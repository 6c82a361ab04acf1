r"""Mamba-2 state-space duality (SSD) scan: a one-step reference and the chunked matmul algorithm.

Per head ``h`` (scalar ``A_h``, state ``(P, N)``), with ``a_t = dt_t A_h`` (``<= 0`` for ``dt > 0``, ``A < 0``):

.. math:: H_t = e^{a_t} H_{t-1} + dt_t\, x_t B_t^\top, \qquad y_t = H_t C_t + D_h x_t,

shapes ``x (B, L, H, P)``, ``dt (B, L, H)`` (already positive: bias and softplus applied by the caller), ``A (H,)``,
``B, C (B, L, G, N)`` with head ``h`` reading group ``h // (H / G)``, ``D (H,)`` or ``(H, P)``, states
``(B, H, P, N)``.

Chunked form (Dao and Gu 2024, section 6; written from the formulas). Cut time into chunks of ``T`` and let
``s_i = sum_{r <= i} a_r`` be the cumulative sum *within* a chunk. Unrolling the recurrence,

.. math:: y_i = \sum_{j \le i,\ j \in \text{chunk}} e^{s_i - s_j} (C_i \cdot B_j)\, dt_j x_j
          \;+\; e^{s_i} H_{\text{in}} C_i,

1. intra-chunk ("attention-like") term: ``((C B^T) * M) @ (dt x)`` with the decay mask
   ``M_ij = exp(s_i - s_j)`` for ``i >= j`` and ``0`` above the diagonal; the difference is masked to ``-inf``
   before the ``exp``, so every exponent is ``<= 0`` and nothing overflows (we never divide by ``exp(s)``);
2. chunk states ``S_c = sum_j (dt_j x_j) (e^{s_{T-1} - s_j} B_j)^T`` (one matmul per chunk);
3. state passing ``H_in(c+1) = e^{s_{T-1}(c)} H_in(c) + S_c`` (a loop over the ``L / T`` chunks, split with
   ``unbind``, so autograd stays linear);
4. inter-chunk term ``(e^{s_i} C_i) H_in^T``.

Work is ``O(L T (N + P))`` per head in BLAS matmuls, against ``L`` tiny steps for the loop. ``L`` need not be a
multiple of ``T``: the tail is padded with ``dt = 0`` and ``x = 0``, which holds the state (``e^0 = 1``, no input),
so the returned last state is exact. Plain autograd differentiates it.

Memory traffic, which is what bounds this on CPU (the matmuls are a small part of the work): the decays of steps 2
and 4 multiply the small ``(T, N)`` factors ``B`` and ``C``, not the ``(T, P)`` inputs and outputs; ``dt x`` is the
one contiguous copy of ``x`` the matmuls need; the mask is masked and exponentiated in place; the inter-chunk term is
accumulated into the intra-chunk output in place (``baddbmm_``); and the chunked output goes back to the
``(B, L, H, P)`` order in the same pass that adds ``D x``. Autograd allows each in-place step: the ops before it
save their inputs, not the overwritten output.

Checked in float64 against :func:`ssd_ref` (outputs, last state and gradients, chunk sizes 4/16/64, ``L`` not a
multiple) and, independently, against the Mamba-1 :func:`~ptdssm.kernels.selective_scan.selective_scan_ref` with
``A`` broadcast to ``(H P, N)``, ``dt`` repeated ``P`` times and ``B``/``C`` shared per group (families.md 2.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ssd_chunked", "ssd_ref"]


def _check(x, dt, A, B, C):
    if x.dim() != 4 or dt.shape != x.shape[:3] or A.shape != x.shape[2:3]:
        raise ValueError(f"expected x (B, L, H, P), dt (B, L, H), A (H,); got {tuple(x.shape)}, "
                         f"{tuple(dt.shape)}, {tuple(A.shape)}")
    if B.dim() != 4 or B.shape != C.shape or B.shape[:2] != x.shape[:2] or x.shape[2] % B.shape[2]:
        raise ValueError(f"expected B, C (B, L, G, N) with H divisible by G; got {tuple(B.shape)}, {tuple(C.shape)}")


def _skip(D: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (D[:, None] if D.dim() == 1 else D) * x


def ssd_ref(x, dt, A, B, C, D=None, initial_state=None, return_last_state=False):
    """SSD by its definition, one time step after another (module docstring). Inputs are split with ``unbind``.

    Returns ``y (B, L, H, P)`` in ``x``'s dtype, or ``(y, last_state (B, H, P, N))``.
    """
    _check(x, dt, A, B, C)
    Bsz, L, H, P = x.shape
    G, N = B.shape[2:]
    dtype_in = x.dtype
    wdt = torch.promote_types(dtype_in, torch.float32)
    x, dt, A, B, C = (t.to(wdt) for t in (x, dt, A, B, C))
    h = x.new_zeros(Bsz, H, P, N) if initial_state is None else initial_state.to(wdt)
    ys = []
    for x_t, dt_t, B_t, C_t in zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1), strict=True):
        B_h = B_t.repeat_interleave(H // G, dim=1)  # (B, H, N)
        C_h = C_t.repeat_interleave(H // G, dim=1)
        decay = torch.exp(dt_t * A)[..., None, None]  # (B, H, 1, 1)
        h = decay * h + (dt_t[..., None] * x_t)[..., None] * B_h[:, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, C_h))
    y = torch.stack(ys, dim=1) if L else x.new_zeros(Bsz, 0, H, P)
    if D is not None:
        y = y + _skip(D.to(wdt), x)
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y


def ssd_chunked(x, dt, A, B, C, D=None, initial_state=None, return_last_state=False, chunk_size=64):
    """SSD by the chunked matmul algorithm (module docstring); same arguments and result as :func:`ssd_ref`.

    Args:
        chunk_size: ``T``; any ``L`` is accepted (the tail chunk is padded with ``dt = 0``).
    """
    _check(x, dt, A, B, C)
    Bsz, L, H, P = x.shape
    G, N = B.shape[2:]
    K = H // G
    T = int(chunk_size)
    if T < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dtype_in = x.dtype
    wdt = torch.promote_types(dtype_in, torch.float32)
    x, dt, A, B, C = (t.to(wdt) for t in (x, dt, A, B, C))
    h0 = x.new_zeros(Bsz, H, P, N) if initial_state is None else initial_state.to(wdt)
    if L == 0:
        y = x.new_zeros(Bsz, 0, H, P)
        return (y.to(dtype_in), h0) if return_last_state else y.to(dtype_in)
    nc = -(-L // T)
    pad = nc * T - L
    xs, dts, Bs, Cs = x, dt, B, C
    if pad:  # dt = 0 and x = 0 hold the state through the padded tail
        xs = F.pad(x, (0, 0, 0, 0, 0, pad))
        dts = F.pad(dt, (0, 0, 0, pad))
        Bs = F.pad(B, (0, 0, 0, 0, 0, pad))
        Cs = F.pad(C, (0, 0, 0, 0, 0, pad))
    # layouts (views): heads as (G, K); time inside a chunk next to the last axis
    xh = xs.reshape(Bsz, nc, T, G, K, P).permute(0, 1, 3, 4, 2, 5)  # (B, c, G, K, T, P)
    dth = dts.reshape(Bsz, nc, T, G, K).permute(0, 1, 3, 4, 2)  # (B, c, G, K, T)
    Bc = Bs.reshape(Bsz, nc, T, G, N).transpose(2, 3)[:, :, :, None]  # (B, c, G, 1, T, N)
    Cc = Cs.reshape(Bsz, nc, T, G, N).transpose(2, 3)[:, :, :, None]
    xdt = xh * dth[..., None]  # (B, c, G, K, T, P), contiguous: the one copy of x the matmuls need
    s = torch.cumsum(dth * A.reshape(G, K, 1), dim=-1)  # (B, c, G, K, T), within-chunk cumulative decay
    # 1. intra-chunk: ((C B^T) * M) @ (dt x), M_ij = exp(s_i - s_j) for i >= j (exponent <= 0), else 0; the
    # difference is masked and exponentiated in place (sub's and masked_fill's backward need no values)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    decay = (s[..., :, None] - s[..., None, :]).masked_fill_(~causal, float("-inf")).exp_()
    y = ((Cc @ Bc.transpose(-1, -2)) * decay) @ xdt  # (B, c, G, K, T, P); C B^T shared by a group's K heads
    # 2. chunk-end states from the chunk's own inputs: sum_j (dt_j x_j) (exp(s_{T-1} - s_j) B_j)^T, the decay
    # folded into the small B (T x N per head), not into the T x P inputs
    states = xdt.transpose(-1, -2) @ (Bc * torch.exp(s[..., -1:] - s)[..., None])  # (B, c, G, K, P, N)
    # 3. state passing between chunks (nc small steps, split with unbind)
    h = h0.reshape(Bsz, G, K, P, N)
    entering = []
    for st, dec in zip(states.unbind(1), torch.exp(s[..., -1]).unbind(1), strict=True):
        entering.append(h)
        h = dec[..., None, None] * h + st
    h_in = torch.stack(entering, dim=1)  # (B, c, G, K, P, N)
    # 4. inter-chunk: (exp(s_i) C_i) H_in^T, the decay folded into the small C, added to y in place (the matmul
    # that made y saves its inputs, not y)
    Cs_ = (Cc * torch.exp(s)[..., None]).reshape(-1, T, N)
    y = y.reshape(-1, T, P).baddbmm_(Cs_, h_in.reshape(-1, P, N).transpose(-1, -2))
    y = y.reshape(Bsz, nc, G, K, T, P).permute(0, 1, 4, 2, 3, 5)  # (B, c, T, G, K, P), a view
    if D is None:
        y = y.reshape(Bsz, nc * T, H, P)
        y = y[:, :L] if pad else y
    else:  # back to (B, L, H, P) order in the one pass that adds the skip term D x
        out = _skip(D.to(wdt), xs).contiguous()  # (B, c T, H, P)
        out.view(Bsz, nc, T, G, K, P).add_(y)
        y = out[:, :L] if pad else out
    y = y.to(dtype_in)
    return (y, h.reshape(Bsz, H, P, N)) if return_last_state else y
