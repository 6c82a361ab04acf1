r"""Hyena (Poli et al. 2023, "Hyena Hierarchy"): the order-``N`` recurrence and the pieces of its implicit filter.

**Recurrence** (the paper's Definition 3.1, with a bias per filter as in the public code). From ``N + 1``
projections ``(x^1, ..., x^N, v)`` of the input and ``N`` long filters ``h^n``:

.. math::
    z^1 = v, \qquad z^{n+1}_t = x^n_t \odot \Big( \sum_{s=0}^{t} h^n_s \odot z^n_{t-s} + b^n \odot z^n_t \Big)
    \quad (n = 1, \dots, N), \qquad y = z^{N+1},

all per channel. :func:`hyena_recurrence` runs each long convolution through the project's FFT convolution in
``(B, L, H)`` layout (:func:`~ptdssm.kernels.fftconv.fft_conv_blh`, the bias folded into the lag-0 tap), ``O(N L log
L)``; :func:`hyena_recurrence_ref` is the direct ``O(N L^2)`` sum. :func:`hyena_operator` is the layer's fast path:
the short depthwise convolution, the split into ``(x^1 .. x^N, v)`` and the recurrence fused into one autograd
Function that works on one batch element at a time (section "fused operator" below). (The public code applies
``N - 1`` long convolutions for order ``N``, i.e. ``h^1 = \delta``; the paper's ``N`` are used here.)

**Implicit filter** (sec. 3.3): ``h_t = FFN(PE(t)) \cdot window(t)``.

- :func:`positional_features` ``PE``: ``z_k = [t_k, \cos(f_j \omega_k), -\sin(f_j \omega_k)]_{j < J}`` with
  ``t_k = k / (l_{max} - 1)`` (``0`` for ``l_max = 1``), ``\omega_k = 2 \pi k / l_{max}``, ``J = (e - 1) / 2``
  bands for an odd embedding size ``e`` and ``f_j`` evenly spaced in ``[10^{-4}, J - 1]``.
- The FFN (``Linear -> sin(w x)`` layers, a module: :class:`ptdssm.layers.hyena_filter.HyenaFilter`).
- :func:`exponential_modulation`, the decay window ``h_t \leftarrow h_t (\exp(-t |\delta_c|) + s)``, with the
  decay rates :func:`decay_deltas` ``\delta_c`` evenly spaced between ``\ln(target) / slow`` and
  ``\ln(target) / fast``: the fastest channel has decayed to ``target`` (``10^{-2}``) at ``t = fast`` (0.3), the
  slowest at ``t = slow`` (1.5), ``t`` in units of ``l_max``.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from .fftconv import fft_conv_blh

__all__ = ["decay_deltas", "exponential_modulation", "hyena_operator", "hyena_recurrence", "hyena_recurrence_ref",
           "positional_features"]


def positional_features(l_max: int, emb_dim: int, *, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hyena's positional encoding (module docstring).

    Args:
        l_max: number of positions.
        emb_dim: odd feature size ``e >= 3`` (``t`` and ``(e - 1) / 2`` cosine/sine bands).

    Returns:
        ``(z (l_max, emb_dim), t (l_max,))``.
    """
    if l_max < 1:
        raise ValueError(f"l_max must be >= 1, got {l_max}")
    if emb_dim < 3 or emb_dim % 2 == 0:
        raise ValueError(f"emb_dim must be odd and >= 3 (t plus cosine/sine pairs), got {emb_dim}")
    k = torch.arange(l_max, dtype=torch.float64, device=device)
    t = k / (l_max - 1) if l_max > 1 else k
    bands = (emb_dim - 1) // 2
    f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64, device=device)
    phase = f[None, :] * (2 * math.pi * k / l_max)[:, None]  # (l_max, bands)
    z = torch.cat([t[:, None], torch.cos(phase), -torch.sin(phase)], dim=-1)
    return z.to(dtype), t.to(dtype)


def decay_deltas(n: int, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5,
                 target: float = 1e-2) -> torch.Tensor:
    """``n`` decay rates ``delta`` evenly spaced in ``[ln(target)/slow, ln(target)/fast]`` (float64, negative)."""
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target}")
    if not 0 < fast_decay_pct <= slow_decay_pct:
        raise ValueError(f"need 0 < fast_decay_pct <= slow_decay_pct, got {fast_decay_pct}, {slow_decay_pct}")
    return torch.linspace(math.log(target) / slow_decay_pct, math.log(target) / fast_decay_pct, n,
                          dtype=torch.float64)


def exponential_modulation(h: torch.Tensor, t: torch.Tensor, deltas: torch.Tensor,
                           shift: float = 0.0) -> torch.Tensor:
    """Decay window ``h * (exp(-t |delta|) + shift)``.

    Args:
        h: ``(..., C, L)`` filters.
        t: ``(L,)`` positions in units of ``l_max``.
        deltas: ``(..., C)`` decay rates (broadcast against ``h``'s leading axes).
        shift: constant added to the window.

    Returns:
        ``(..., C, L)``.
    """
    return h * (torch.exp(-t * deltas.abs()[..., None]) + shift)


def hyena_recurrence(v: torch.Tensor, x: torch.Tensor, h: torch.Tensor, bias: torch.Tensor | None = None, *,
                     return_inputs: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """The order-``N`` Hyena recurrence (module docstring) by FFT convolutions.

    Args:
        v: ``(B, L, H)`` value branch ``z^1``.
        x: ``(N, B, L, H)`` gates ``x^1 .. x^N`` (or a sequence of ``N`` ``(B, L, H)`` tensors).
        h: ``(N, H, L')`` long filters, ``L' >= L`` (cut to ``L``; shorter ones are zero-padded).
        bias: optional ``(N, H)`` per-filter skip ``b^n``.
        return_inputs: also return the convolution inputs ``[z^1, ..., z^N]`` (step mode's history).

    Returns:
        ``y (B, L, H)`` (and the list of ``N`` inputs).
    """
    L = v.shape[1]
    z, inputs = v, []
    for n in range(len(x)):
        inputs.append(z)
        z = x[n] * fft_conv_blh(z, h[n, :, :L], D=None if bias is None else bias[n])
    return (z, inputs) if return_inputs else z


def hyena_recurrence_ref(v: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                         bias: torch.Tensor | None = None) -> torch.Tensor:
    """Plain definition of :func:`hyena_recurrence`: each long convolution as the direct sum
    ``sum_{s<=t} h_s z_{t-s}`` (a dense lower-triangular Toeplitz matrix), ``O(N L^2)``."""
    L = v.shape[1]
    idx = torch.arange(L, device=v.device)
    lag = idx[:, None] - idx[None, :]  # (t, s) -> t - s
    z = v
    for n in range(len(x)):
        hn = torch.nn.functional.pad(h[n], (0, max(0, L - h[n].shape[-1])))[:, :L]
        T = torch.where(lag >= 0, hn[:, lag.clamp(min=0)], torch.zeros((), dtype=hn.dtype))  # (H, L, L)
        conv = torch.einsum("hts,bsh->bth", T, z)
        if bias is not None:
            conv = conv + bias[n] * z
        z = x[n] * conv
    return z


# ---------------------------------------------------------------------------------------------- fused operator
# The whole operator after ``in_proj`` (short conv, split, long convolutions, gates) as one autograd Function that
# runs one batch element at a time: each element's projections are transposed once to (C, L) (L contiguous, as the
# FFTs want it) into a reused buffer, every FFT reads a reused zero-padded (H, 2L) buffer, and the result is
# transposed back once. Measured on CPU (one thread, B=16, H=256, L=4096): per-element FFTs ~2x faster than one
# batched FFT, whose fresh 134 MB outputs are page-faulted in on every call (so are those of ``out=``, which
# copies); no padded copies, no (B, L, H) <-> (B, H, L) copies per convolution, no autograd graph of ~30 full-size
# ops. Saved for the backward: the projections (transposed again and the short conv recomputed, per element, in
# the backward), the convolution inputs' spectra and the long convolutions' outputs.

def _fir_cl(u: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """Causal depthwise FIR along the last axis of ``u (C, L)``: ``out_t = b + sum_j w[:, K-1-j] u_{t-j}``."""
    L, K = u.shape[-1], w.shape[-1]
    if b is None:
        torch.mul(u, w[:, K - 1:], out=out)
    else:
        torch.addcmul(b[:, None], u, w[:, K - 1:], out=out)
    for s in range(1, min(K, L)):
        out[:, s:].addcmul_(u[:, : L - s], w[:, K - 1 - s:K - s])
    return out


def _fir_cl_backward(g: torch.Tensor, u: torch.Tensor, w: torch.Tensor, du: torch.Tensor, dw: torch.Tensor,
                     tmp: torch.Tensor) -> None:
    """Backward of :func:`_fir_cl` for one element: ``du = sum_j w[:, K-1-j] g_{t+j}`` (written), ``dw[:, K-1-j] +=
    sum_t g_t u_{t-j}`` (accumulated; ``tmp`` a ``(C, L)`` scratch buffer)."""
    L, K = u.shape[-1], w.shape[-1]
    torch.mul(g, w[:, K - 1:], out=du)
    for s in range(1, min(K, L)):
        du[:, : L - s].addcmul_(g[:, s:], w[:, K - 1 - s:K - s])
    for s in range(min(K, L)):
        dw[:, K - 1 - s] += torch.mul(g[:, s:], u[:, : L - s], out=tmp[:, : L - s]).sum(-1)


#: per-FFT tensors of one block of channels stay below this size: glibc serves them from its heap (reused), while
#: larger ones (above its 32 MiB ``mmap`` threshold) are fresh mappings, page-faulted in on every call
_BLOCK_BYTES = 16 << 20


def _channel_blocks(H: int, L: int, dtype: torch.dtype) -> list[slice]:
    """Blocks of the ``H`` channels whose ``(h, L + 1)`` spectra take at most :data:`_BLOCK_BYTES`."""
    item = 16 if dtype == torch.float64 else 8  # complex128 / complex64
    hc = max(1, min(H, _BLOCK_BYTES // ((L + 1) * item)))
    return [slice(c, min(c + hc, H)) for c in range(0, H, hc)]


def _convs_forward(x: torch.Tensor, kf: torch.Tensor, buf: torch.Tensor, z: torch.Tensor, Y: torch.Tensor | None,
                   spectra: list[torch.Tensor] | None, safari: bool) -> None:
    """One element's (block of channels') long convolutions and gates: ``x (N+1, h, L)`` the short-convolved
    projections, ``kf (M, h, L+1)`` the filters' spectra, ``buf (h, 2L)`` with a zero second half; writes
    ``z^{M+1}`` into ``z (h, L)``, the convolutions' outputs into ``Y (M, h, L)`` and appends ``conj(rfft(z^m))``
    to ``spectra`` (both if given)."""
    order, L = x.shape[0] - 1, x.shape[-1]
    M, g0 = kf.shape[0], 1 if safari else 0  # gate of convolution m: x^{m + 1 + g0}
    if safari:
        torch.mul(x[0], x[order], out=buf[:, :L])
    else:
        buf[:, :L].copy_(x[order])
    for m in range(M):
        S = torch.fft.rfft(buf)
        if spectra is not None:
            spectra.append(torch.conj_physical(S))  # conjugated here: the backward multiplies by conj(U)
        y = torch.fft.irfft(S.mul_(kf[m]), n=2 * L)[:, :L]
        if Y is not None:
            Y[m].copy_(y)
        torch.mul(x[m + g0], y, out=buf[:, :L] if m < M - 1 else z)


def _convs_backward(x: torch.Tensor, gz: torch.Tensor, Y: torch.Tensor, spectra: list[torch.Tensor],
                    kfc: torch.Tensor, dK: torch.Tensor, buf: torch.Tensor, dx: torch.Tensor, safari: bool) -> None:
    """Backward of :func:`_convs_forward` for one element (block of channels): ``gz (h, L)`` the gradient of
    ``z^{M+1}``, ``kfc`` the conjugated filter spectra; writes the gradient of ``x`` into ``dx (N+1, h, L)`` and
    adds this element's ``G conj(U)`` (``G`` the spectrum of the gradient of ``k^m * z^m``) into ``dK (M, h, L+1)``,
    whose inverse FFT is the filters' gradient."""
    order, L = x.shape[0] - 1, x.shape[-1]
    M, g0 = kfc.shape[0], 1 if safari else 0
    for m in range(M - 1, -1, -1):
        torch.mul(gz, Y[m], out=dx[m + g0])  # d x^{m + 1 + g0}
        torch.mul(gz, x[m + g0], out=buf[:, :L])  # d (k^m * z^{m + 1})
        S = torch.fft.rfft(buf)
        dK[m].addcmul_(S, spectra[m])
        gz = torch.fft.irfft(S.mul_(kfc[m]), n=2 * L)[:, :L]  # d z^{m + 1}
    if safari:
        torch.mul(gz, x[order], out=dx[0])
        torch.mul(gz, x[0], out=dx[order])
    else:
        dx[order].copy_(gz)


class _HyenaOperator(torch.autograd.Function):
    """:func:`hyena_operator` with the per-element forward and backward described above."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, k: torch.Tensor,  # type: ignore[override]
                order: int, safari: bool, save: bool) -> torch.Tensor:
        Bsz, L, C = p.shape
        H, M = C // (order + 1), k.shape[0]
        kf = torch.fft.rfft(k, n=2 * L)  # (M, H, L + 1)
        blocks = _channel_blocks(H, L, p.dtype)
        spectra: list[torch.Tensor] | None = [] if save else None  # per (element, block): M conj(rfft(z^m))
        Y = p.new_empty(Bsz, M, H, L) if save else None  # the long convolutions' outputs
        out = p.new_empty(Bsz, L, H)
        pT, pc, z = p.new_empty(C, L), p.new_empty(C, L), p.new_empty(H, L)
        buf = p.new_zeros(blocks[0].stop, 2 * L)  # the second half stays zero: the padding of every FFT input
        for i in range(Bsz):
            x = _fir_cl(pT.copy_(p[i].T), w, b, pc).view(order + 1, H, L)  # x^1 .. x^N, v
            for c in blocks:
                _convs_forward(x[:, c], kf[:, c], buf[: c.stop - c.start], z[c], None if Y is None else Y[i, :, c],
                               spectra, safari)
            out[i].copy_(z.T)
        if save:
            ctx.save_for_backward(p, Y, w, b, kf, *spectra)
            ctx.order, ctx.safari = order, safari
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        p, Y, w, b, kf, *spectra = ctx.saved_tensors
        order, safari = ctx.order, ctx.safari
        Bsz, L, C = p.shape
        H, M = C // (order + 1), kf.shape[0]
        blocks = _channel_blocks(H, L, p.dtype)
        kfc = kf.conj().resolve_conj()
        dp = p.new_empty(Bsz, L, C)
        dw = torch.zeros_like(w)
        db = None if b is None else torch.zeros_like(b)
        dK = torch.zeros_like(kf)  # sum over the batch of G conj(U) per convolution (the dk spectrum)
        pT, pc, dpc, du, tmp = (p.new_empty(C, L) for _ in range(5))
        gT, buf = p.new_empty(H, L), p.new_zeros(blocks[0].stop, 2 * L)
        dx = dpc.view(order + 1, H, L)
        for i in range(Bsz):
            x = _fir_cl(pT.copy_(p[i].T), w, b, pc).view(order + 1, H, L)
            gT.copy_(g[i].T)
            for j, c in enumerate(blocks):
                first = (i * len(blocks) + j) * M
                _convs_backward(x[:, c], gT[c], Y[i, :, c], spectra[first:first + M], kfc[:, c], dK[:, c],
                                buf[: c.stop - c.start], dx[:, c], safari)
            _fir_cl_backward(dpc, pT, w, du, dw, tmp)
            if db is not None:
                db += dpc.sum(-1)
            dp[i].copy_(du.T)
        dk = torch.fft.irfft(dK, n=2 * L)[..., :L]
        return dp, dw, db, dk, None, None, None


def hyena_operator(p: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, k: torch.Tensor, *,
                   order: int, safari: bool = False) -> torch.Tensor:
    """The Hyena operator between its projections, fused (same result as :func:`~ptdssm.kernels.shift.causal_conv`,
    the split and :func:`hyena_recurrence`).

    .. math::
        (x^1, \\dots, x^N, v) = \\mathrm{split}_H(\\mathrm{conv}_{short}(p)), \\qquad
        z^1 = v \\ (\\text{safari: } x^1 \\odot v), \\qquad z^{m+1} = x^{m + g} \\odot (k^m * z^m), \\qquad
        y = z^{M+1}

    (``g = 0``, ``M = N`` convolutions; safari: ``g = 1``, ``M = N - 1``), ``*`` the causal convolution by FFTs of
    size ``2L`` (a per-filter skip goes into ``k``'s lag-0 tap).

    Args:
        p: ``(B, L, (N+1) H)`` projected input (``in_proj``'s output).
        w: ``((N+1) H, K)`` short-conv taps (``nn.Conv1d`` orientation: ``w[:, K-1]`` on the newest input).
        b: optional ``((N+1) H,)`` short-conv bias.
        k: ``(M, H, L)`` long filters.
        order: ``N``.
        safari: gate before the first long convolution (module docstring of :mod:`ptdssm.layers.hyena`).

    Returns:
        ``y (B, L, H)``, contiguous.
    """
    Bsz, L, C = p.shape
    if C % (order + 1) or k.shape != (order - (1 if safari else 0), C // (order + 1), L):
        raise ValueError(f"hyena_operator: p {tuple(p.shape)}, k {tuple(k.shape)} do not fit order={order}")
    dt = p.dtype
    w, b, k = w.to(dt), None if b is None else b.to(dt), k.to(dt)
    # what the backward needs is saved only when there will be one (inside a Function's forward, grad mode is off)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (p, w, b, k))
    return _HyenaOperator.apply(p.contiguous(), w, b, k, order, bool(safari), save)
