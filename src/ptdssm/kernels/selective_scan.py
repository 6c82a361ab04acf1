r"""Selective scan (Mamba-1, "S6") on CPU: a vectorised time loop with a hand-written reverse-time backward.

Recurrence, per batch ``b``, channel ``d`` and state ``n`` (``mamba_ssm`` semantics: ZOH for ``A``, Euler for ``B``):

.. math:: h_t = \exp(\delta_t A_{d,n})\, h_{t-1} + \delta_t B_{t,n} u_t, \qquad
          y_t = \textstyle\sum_n C_{t,n} h_{t,n} + D_d u_t, \qquad \text{out}_t = y_t \operatorname{silu}(z_t),

with ``delta <- softplus(delta + delta_bias)`` when ``delta_softplus``. Shapes (channels first, as ``mamba_ssm``):
``u, delta, z (B, D, L)``; ``A (D, N)`` real; ``B`` and ``C`` each either ``(D, N)`` (time-invariant),
``(B, N, L)`` (input-dependent, shared by all channels) or ``(B, G, N, L)`` (``G`` groups, channel ``d`` reads group
``d // (D / G)``); ``D, delta_bias (D,)``; states ``(B, D, N)``.

Backward (adjoint). Write ``a_t = exp(delta_t A)``, ``g_t = dLoss/dy_t`` (before the gate) and let ``gh_t`` be
the total gradient reaching ``h_t``. Then, running ``t = L-1 .. 0``,

.. math:: gh_t = C_t\, g_t + a_{t+1} \odot gh_{t+1} \quad (gh_{L-1} \mathrel{+}= \text{grad of the last state}),

and every input gradient is a local product with ``gh_t``, ``h_{t-1}`` and ``h_t``:
``dC_t = sum_d g_t h_t``; ``dB_t = sum_d gh_t delta_t u_t``; ``du_t = delta_t sum_n gh_t B_t``;
``ddelta_t = sum_n gh_t h_{t-1} a_t A + u_t sum_n gh_t B_t``; ``dA = sum_{b,t} gh_t h_{t-1} a_t delta_t``;
``dh_{-1} = a_0 gh_0`` (the initial state). Time-invariant ``B``/``C`` also sum over ``b, t``; grouped ones over
the channels of the group. ``D``, ``z``, ``delta_bias`` and the softplus are cheap ``(B, D, L)`` elementwise ops
left to autograd around the core :class:`_SelectiveScanFn`.

Why linear in ``L``: the time is cut into chunks of ``T`` steps (``T B D N`` about 2^20 elements). The forward
keeps only the ``L / T`` chunk-entry states ``(B, D, N)``; per chunk it forms ``a`` and ``delta B u`` for ``T``
steps at once, runs ``T`` in-place ``addcmul`` steps on contiguous ``(B, D, N)`` slices and gets ``y`` from one
batched contraction with ``C``. The backward walks the chunks in reverse, recomputes that chunk's states from its
entry state, runs the ``T``-step adjoint loop above, and evaluates all the local products as chunk-wide tensor ops.
Time is ``O(B D N L)`` and memory is the inputs, ``L / T`` states and a few ``(T, B, D, N)`` buffers. Autograd
through a Python loop that *indexes* a ``(B, D, L, N)`` tensor (``mamba_ssm``'s ``selective_scan_ref``) instead
writes every slice's gradient into a full-size zero tensor: ``O(L^2)`` backward.

Chosen by measurement (``benchmarks/selective_scan.py``, 2 threads on this project's shared 2-core CPU VM, torch
2.13, fp32, N = 16, input-dependent ``B``/``C``, softplus, ``D`` and ``z``; both paths timed alternating in one
process). Against the one-step :func:`selective_scan_ref` (already split with ``unbind``, so linear in ``L``):

=========  ======  ==========  ===============  ==============  ====================
B x D      L       fast fwd    fast fwd+bwd     ref / fast       peak RSS fast / ref
=========  ======  ==========  ===============  ==============  ====================
2 x 512    1024    0.032 s     0.097 s          3.5x / 3.7x      143 / 372 MiB
2 x 512    4096    0.185 s     0.562 s          2.8x / 3.6x      282 / 1445 MiB
8 x 256    1024    0.099 s     0.277 s          3.0x / 2.4x      155 / 611 MiB
8 x 256    4096    0.348 s     1.025 s          3.6x / 3.0x      410 / 2768 MiB
=========  ======  ==========  ===============  ==============  ====================

(``ref / fast`` for the forward, then forward+backward.) The reference's autograd keeps ~5 ``(B, D, N)`` tensors
per step; the Function keeps ``L / T`` of them. Two layout details mattered: the chunk tensors must be derived from
time-major *contiguous* copies of ``u``/``delta`` (from a ``(B, D, L)`` view TensorIterator lays the outputs out
time-last, the per-step slices become strided and forward+backward ran 1.3-2x slower), and the ``B``/``C`` rows must be
made contiguous once (a strided broadcast read cost 5x an ordinary multiply). ``einsum`` for the ``sum_d`` and
``sum_n`` contractions copied the ``(T, B, D, N)`` operand; ``matmul`` with a one-row operand does not. Chunk
sizes from 2^18 to 2^22 elements per buffer were within 20% of each other. A log-space ``cumsum`` form needs 5-8
full passes and overflows once ``|sum delta A|`` in a chunk exceeds ~80 (families.md 1.1); it was not retained.

Checked against :func:`selective_scan_ref` in float64 (outputs, last state, gradients of every input, to ~1e-12),
by ``gradcheck`` on tiny sizes, and against the Mamba-2 SSD kernel (``ssd.py``) with a scalar ``A`` per head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["selective_scan", "selective_scan_ref"]

_CHUNK_ELEMS = 1 << 20  # T * B * D * N per chunk buffer (4 MiB in fp32)


# ---------------------------------------------------------------------------------------------------------------
# Reference: one step at a time
# ---------------------------------------------------------------------------------------------------------------


def _step_matrix(M: torch.Tensor, D: int) -> list[torch.Tensor] | torch.Tensor:
    """``B``/``C`` as per-step ``(B, D, N)``-broadcastable tensors: a list over ``L``, or one ``(D, N)`` tensor."""
    if M.dim() == 2:  # (D, N), time-invariant
        return M
    if M.dim() == 3:  # (B, N, L): shared by all channels
        return [m[:, None, :] for m in M.unbind(-1)]
    G = M.shape[1]  # (B, G, N, L)
    return [m.repeat_interleave(D // G, dim=1) for m in M.unbind(-1)]


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False, initial_state=None):
    """Selective scan by its definition, one time step after another (module docstring for the maths).

    Clear rather than fast, but the inputs are split once along time with ``unbind`` (never indexed inside the
    loop), so its autograd backward is linear in ``L``. Computes in ``u``'s dtype promoted to at least float32 and
    returns ``y`` in ``u``'s dtype.

    Args:
        u, delta: ``(B, D, L)``. A: ``(D, N)``. B, C: ``(D, N)``, ``(B, N, L)`` or ``(B, G, N, L)``.
        D: ``(D,)`` skip. z: ``(B, D, L)`` gate, ``y *= silu(z)``. delta_bias: ``(D,)``.
        delta_softplus: ``delta = softplus(delta + delta_bias)``.
        return_last_state: also return ``h_{L-1}`` ``(B, D, N)``.
        initial_state: ``h_{-1}`` ``(B, D, N)`` (zeros by default).

    Returns:
        ``y (B, D, L)``, or ``(y, last_state)``.
    """
    dtype_in = u.dtype
    wdt = torch.promote_types(dtype_in, torch.float32)
    u, delta = u.to(wdt), delta.to(wdt)
    if delta_bias is not None:
        delta = delta + delta_bias.to(wdt)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    Bsz, Dch, L = u.shape
    N = A.shape[-1]
    Bs = _step_matrix(B.to(wdt), Dch)
    Cs = _step_matrix(C.to(wdt), Dch)
    h = u.new_zeros(Bsz, Dch, N) if initial_state is None else initial_state.to(wdt)
    ys = []
    for t, (u_t, d_t) in enumerate(zip(u.unbind(-1), delta.unbind(-1), strict=True)):
        B_t = Bs if isinstance(Bs, torch.Tensor) else Bs[t]
        C_t = Cs if isinstance(Cs, torch.Tensor) else Cs[t]
        h = torch.exp(d_t[..., None] * A) * h + (d_t * u_t)[..., None] * B_t
        ys.append((h * C_t).sum(-1))
    y = torch.stack(ys, dim=-1) if L else u.new_zeros(Bsz, Dch, 0)
    if D is not None:
        y = y + D.to(wdt)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(wdt))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y


# ---------------------------------------------------------------------------------------------------------------
# Fast path: chunked forward, reverse-time adjoint backward
# ---------------------------------------------------------------------------------------------------------------


def _layout(M: torch.Tensor, G: int, Dch: int) -> tuple[torch.Tensor, bool]:
    """``B``/``C`` as ``(L, B, G, 1, N)`` (input-dependent) or ``(G, D/G, N)`` (time-invariant), and which."""
    if M.dim() == 2:
        return M.reshape(G, Dch // G, M.shape[-1]), False
    if M.dim() == 3:
        M = M[:, None]
    if M.shape[1] != G:
        M = M.repeat_interleave(G // M.shape[1], dim=1)
    return M.permute(3, 0, 1, 2).contiguous()[:, :, :, None, :], True


class _SelectiveScanFn(torch.autograd.Function):
    """Core ``(u, delta, A, B, C, h0) -> (y, h_last)`` without ``D``, ``z``, bias or softplus.

    Internal layout: time first and channels split into ``(G, D/G)`` so that one grouped ``B``/``C`` row
    broadcasts over its channels; states are ``(B, G, D/G, N)``.
    """

    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm, h0, G, chunk):
        Bsz, Dch, L = u.shape
        N = A.shape[-1]
        Dg = Dch // G
        # time-major copies (one (B, D, L) copy each): every chunk tensor derived from them is then time-major too,
        # so the per-step slices are contiguous (a (B, D, L) view would make TensorIterator lay them out time-last)
        ut = u.permute(2, 0, 1).contiguous().view(L, Bsz, G, Dg)
        dt = delta.permute(2, 0, 1).contiguous().view(L, Bsz, G, Dg)
        Ag = A.reshape(G, Dg, N)
        Bl, b_var = _layout(Bm, G, Dch)
        Cl, c_var = _layout(Cm, G, Dch)
        h = h0.reshape(Bsz, G, Dg, N).clone() if h0 is not None else u.new_zeros(Bsz, G, Dg, N)
        y = u.new_empty(L, Bsz, G, Dg)
        entries = []
        for s in range(0, L, chunk):
            e = min(s + chunk, L)
            entries.append(h)
            d_c = dt[s:e]
            a = torch.mul(d_c[..., None], Ag).exp_()  # exp(delta A), (T, B, G, Dg, N)
            buf = _chunk_states(h, a, d_c * ut[s:e], Bl[s:e] if b_var else Bl)  # (T+1, B, G, Dg, N)
            hs = buf[1:]
            Cc = Cl[s:e] if c_var else Cl
            if c_var:  # (T, B, G, Dg, N) x (T, B, G, 1, N) -> (T, B, G, Dg)
                y[s:e] = torch.matmul(hs, Cc.transpose(-1, -2)).squeeze(-1)
            else:
                y[s:e] = (hs * Cc).sum(-1)
            h = buf[-1].clone()  # not a view: the chunk buffer is freed
        ctx.save_for_backward(u, delta, A, Bm, Cm, *entries)
        ctx.meta = (G, chunk, b_var, c_var, h0 is not None)
        return y.reshape(L, Bsz, Dch).permute(1, 2, 0), h.reshape(Bsz, Dch, N)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, ghl):
        u, delta, A, Bm, Cm, *entries = ctx.saved_tensors
        G, chunk, b_var, c_var, has_h0 = ctx.meta
        Bsz, Dch, L = u.shape
        N = A.shape[-1]
        Dg = Dch // G
        ut = u.permute(2, 0, 1).contiguous().view(L, Bsz, G, Dg)
        dt = delta.permute(2, 0, 1).contiguous().view(L, Bsz, G, Dg)
        Ag = A.reshape(G, Dg, N)
        Bl, _ = _layout(Bm, G, Dch)
        Cl, _ = _layout(Cm, G, Dch)
        gy = u.new_zeros(Bsz, Dch, L) if gy is None else gy
        gyt = gy.permute(2, 0, 1).contiguous().view(L, Bsz, G, Dg)
        carry = ghl.reshape(Bsz, G, Dg, N) if ghl is not None else u.new_zeros(Bsz, G, Dg, N)
        gu = u.new_empty(L, Bsz, G, Dg)
        gd = u.new_empty(L, Bsz, G, Dg)
        gA = torch.zeros_like(Ag)
        gB = torch.zeros_like(Bl) if not b_var else u.new_empty(L, Bsz, G, 1, N)
        gC = torch.zeros_like(Cl) if not c_var else u.new_empty(L, Bsz, G, 1, N)
        starts = list(range(0, L, chunk))
        for k in reversed(range(len(starts))):
            s = starts[k]
            e = min(s + chunk, L)
            d_c, u_c = dt[s:e], ut[s:e]
            B_c = Bl[s:e] if b_var else Bl
            C_c = Cl[s:e] if c_var else Cl
            a = torch.mul(d_c[..., None], Ag).exp_()  # (T, B, G, Dg, N)
            du = d_c * u_c
            buf = _chunk_states(entries[k], a, du, B_c)
            hprev, hs = buf[:-1], buf[1:]
            # adjoint: gh_t = C_t g_t + a_{t+1} gh_{t+1}
            gy_c = gyt[s:e]
            gh = gy_c[..., None] * C_c
            gh[-1] += carry
            for t in range(e - s - 2, -1, -1):
                gh[t].addcmul_(a[t + 1], gh[t + 1])
            carry = a[0] * gh[0]
            # C
            if c_var:
                gC[s:e] = torch.matmul(gy_c[..., None, :], hs)
            else:
                gC += (gy_c[..., None] * hs).sum((0, 1))
            # B and the input term: gh * (delta u) and gh . B
            if b_var:
                gB[s:e] = torch.matmul(du[..., None, :], gh)
                sB = torch.matmul(gh, B_c.transpose(-1, -2)).squeeze(-1)
            else:
                gB += (gh * du[..., None]).sum((0, 1))
                sB = (gh * B_c).sum(-1)
            # A: gh * h_{t-1} * a
            w = gh.mul_(hprev).mul_(a)  # gh no longer needed
            gA += (w * d_c[..., None]).sum((0, 1))
            torch.mul(u_c, sB, out=gd[s:e])
            gd[s:e] += (w * Ag).sum(-1)
            torch.mul(d_c, sB, out=gu[s:e])
        gu = gu.reshape(L, Bsz, Dch).permute(1, 2, 0)
        gd = gd.reshape(L, Bsz, Dch).permute(1, 2, 0)
        gB = _unlayout(gB, Bm, b_var)
        gC = _unlayout(gC, Cm, c_var)
        gh0 = carry.reshape(Bsz, Dch, N) if has_h0 else None
        return gu, gd, gA.reshape(Dch, N), gB, gC, gh0, None, None


def _chunk_states(h, a, du, B_c):
    """States of one chunk from its entry state ``h``, ``a = exp(delta A)`` and ``du = delta u``:
    ``buf[0] = h`` and ``buf[t+1] = h_t = a_t h_{t-1} + du_t B_t``, ``(T+1, B, G, Dg, N)``, in place."""
    T = a.shape[0]
    buf = h.new_empty(T + 1, *h.shape)
    buf[0] = h
    torch.mul(du[..., None], B_c, out=buf[1:])
    for t in range(T):
        buf[t + 1].addcmul_(a[t], buf[t])
    return buf


def _unlayout(g: torch.Tensor, M: torch.Tensor, var: bool) -> torch.Tensor:
    """Gradient in ``_layout``'s shape back to ``M``'s shape (summing over repeated groups)."""
    if not var:
        return g.reshape(M.shape)
    g = g[:, :, :, 0, :].permute(1, 2, 3, 0)  # (B, G, N, L)
    Gm = 1 if M.dim() == 3 else M.shape[1]
    if g.shape[1] != Gm:
        g = g.reshape(g.shape[0], Gm, -1, *g.shape[2:]).sum(2)
    return g.reshape(M.shape)


def _groups(M: torch.Tensor) -> int:
    return M.shape[1] if M.dim() == 4 else 1


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, initial_state=None, chunk_size=None):
    """Selective scan, same arguments and result as :func:`selective_scan_ref` (module docstring), fast on CPU.

    The scan core is a custom autograd Function (chunked vectorised time loop forward, reverse-time adjoint
    backward, linear in ``L`` in time and memory); ``delta_bias``/softplus, ``D`` and the ``silu(z)`` gate are
    ``(B, D, L)`` elementwise ops differentiated by autograd around it.

    Args:
        chunk_size: time steps per chunk buffer; default so that a ``(T, B, D, N)`` buffer holds about 2^20
            elements (no effect on results beyond rounding).
    """
    dtype_in = u.dtype
    wdt = torch.promote_types(dtype_in, torch.float32)
    for M in (B, C):
        if M.dim() not in (2, 3, 4):
            raise ValueError(f"B/C must be (D, N), (B, N, L) or (B, G, N, L), got {tuple(M.shape)}")
    Bsz, Dch, L = u.shape
    N = A.shape[-1]
    Gb, Gc = _groups(B), _groups(C)
    G = Gb * Gc // math.gcd(Gb, Gc)
    if Dch % G:
        raise ValueError(f"channels D={Dch} not divisible by the number of groups {G}")
    u, delta, A, B, C = (t.to(wdt) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(wdt)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h0 = initial_state.to(wdt) if initial_state is not None else None
    chunk = chunk_size or max(8, min(256, _CHUNK_ELEMS // max(1, Bsz * Dch * N)))
    if L == 0:
        y, last = u.new_zeros(Bsz, Dch, 0), (h0 if h0 is not None else u.new_zeros(Bsz, Dch, N))
    else:
        y, last = _SelectiveScanFn.apply(u, delta, A, B, C, h0, G, chunk)
    if D is not None:
        y = y + D.to(wdt)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(wdt))
    y = y.to(dtype_in)
    return (y, last) if return_last_state else y
