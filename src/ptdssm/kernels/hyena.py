r"""Hyena (Poli et al. 2023, "Hyena Hierarchy"): the order-``N`` recurrence and the pieces of its implicit filter.

**Recurrence** (the paper's Definition 3.1, with a bias per filter as in the public code). From ``N + 1``
projections ``(x^1, ..., x^N, v)`` of the input and ``N`` long filters ``h^n``:

.. math::
    z^1 = v, \qquad z^{n+1}_t = x^n_t \odot \Big( \sum_{s=0}^{t} h^n_s \odot z^n_{t-s} + b^n \odot z^n_t \Big)
    \quad (n = 1, \dots, N), \qquad y = z^{N+1},

all per channel. :func:`hyena_recurrence` runs each long convolution through the project's FFT convolution in
``(B, L, H)`` layout (:func:`~ptdssm.kernels.fftconv.fft_conv_blh`, the bias folded into the lag-0 tap), ``O(N L log
L)``; :func:`hyena_recurrence_ref` is the direct ``O(N L^2)`` sum. (The public code applies ``N - 1`` long
convolutions for order ``N``, i.e. ``h^1 = \delta``; the paper's ``N`` are used here.)

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

from .fftconv import fft_conv_blh

__all__ = ["decay_deltas", "exponential_modulation", "hyena_recurrence", "hyena_recurrence_ref",
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
