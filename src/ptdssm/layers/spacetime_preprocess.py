r"""SpaceTime's fixed preprocessing kernels (Zhang et al. 2023, section 3.1): per-channel causal FIR filters that
are never trained, run before the first companion SSM so that its channels see trends and seasonal residuals.

- **Differencing** of order ``n`` (an ARIMA "I" term): ``(1 - q)^n u`` with ``q`` the one-step delay, i.e. the
  kernel ``k_j = (-1)^j binom(n, j)``, ``j = 0..n`` (order 0 is the identity, 1 is ``u_t - u_{t-1}``,
  2 is ``u_t - 2 u_{t-1} + u_{t-2}``, ...). Orders ``0 .. max_diff_order`` (the authors' code builds orders
  0..3 for its ``max_diff_order = 4``; here the order-4 kernel is included).
- **Moving-average residual** of window ``w``: ``u_t - (1/w) sum_{j<w} u_{t-j}``, the kernel ``delta_0 - 1_{[0,w)}/w``
  (zeros before the start of the sequence, as the FFT convolution pads). Windows are drawn once, uniformly in
  ``[min_avg_window, max_avg_window]``, and stored with the layer (a buffer, so checkpoints keep them).

Channels are laid out in groups of ``group`` consecutive channels (the authors' 8): in each group the first
``max_diff_order + 1`` channels take the differencing orders, the others moving-average residuals with their own
windows. Everything is one ``(H, P)`` FIR (``P`` = the longest kernel): the forward pass is one FFT convolution, a
step is a dot product with a buffer of the last ``P - 1`` inputs (:func:`~ptdssm.kernels.shift.fir_step`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_positive_int
from ..kernels.fftconv import fft_conv_blh
from ..kernels.shift import fir_step

__all__ = ["ResidualPreprocess", "differencing_kernel", "moving_average_residual_kernel", "preprocess_kernels"]


def differencing_kernel(order: int) -> torch.Tensor:
    """``k_j = (-1)^j binom(order, j)`` for ``j = 0..order`` (float64, ``(order + 1,)``)."""
    order = check_positive_int("order", order, minimum=0)
    return torch.tensor([(-1.0) ** j * math.comb(order, j) for j in range(order + 1)], dtype=torch.float64,
                        device="cpu")


def moving_average_residual_kernel(window: int) -> torch.Tensor:
    """``delta_0 - 1_{[0, window)} / window`` (float64, ``(window,)``): ``u_t`` minus the mean of the last
    ``window`` inputs."""
    window = check_positive_int("window", window)
    k = torch.full((window,), -1.0 / window, dtype=torch.float64, device="cpu")
    k[0] += 1.0
    return k


def preprocess_kernels(d_model: int, *, max_diff_order: int = 4, min_avg_window: int = 4,
                       max_avg_window: int = 720, group: int = 8,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(H, P)`` FIR of every channel (module docstring) and the ``(H,)`` window of each moving-average
    channel (0 for differencing channels)."""
    H = check_positive_int("d_model", d_model)
    max_diff_order = check_positive_int("max_diff_order", max_diff_order, minimum=0)
    lo = check_positive_int("min_avg_window", min_avg_window)
    hi = check_positive_int("max_avg_window", max_avg_window)
    group = check_positive_int("group", group)
    if lo > hi:
        raise ValueError(f"min_avg_window={lo} must be <= max_avg_window={hi}")
    if group < max_diff_order + 1:
        raise ValueError(f"group={group} must hold the {max_diff_order + 1} differencing orders 0..{max_diff_order}")
    slot = torch.arange(H, device="cpu") % group  # on the CPU also inside a meta-device build (config checks)
    if torch.empty(0).device.type == "meta":  # a meta-device build draws nothing (its values are never used)
        windows = torch.full((H,), hi, device="cpu")
    else:
        windows = torch.randint(lo, hi + 1, (H,), generator=generator, device="cpu")
    windows = windows * (slot > max_diff_order)
    P = max(max_diff_order + 1, int(windows.max()) if H else 1)
    out = torch.zeros(H, P, dtype=torch.float64, device="cpu")
    for h in range(H):
        s = int(slot[h])
        k = differencing_kernel(s) if s <= max_diff_order else moving_average_residual_kernel(int(windows[h]))
        out[h, : k.numel()] = k
    return out, windows


class ResidualPreprocess(nn.Module):
    """Fixed differencing / moving-average-residual FIR per channel, ``(B, L, H) -> (B, L, H)`` (module
    docstring). Kernels are buffers (saved, cast with the module, never trained)."""

    def __init__(self, d_model: int, *, max_diff_order: int = 4, min_avg_window: int = 4, max_avg_window: int = 720,
                 group: int = 8) -> None:
        super().__init__()
        kernel, windows = preprocess_kernels(d_model, max_diff_order=max_diff_order, min_avg_window=min_avg_window,
                                             max_avg_window=max_avg_window, group=group)
        self.register_buffer("kernel", kernel.to(torch.get_default_dtype()))
        self.register_buffer("windows", windows)

    @property
    def taps(self) -> int:
        """``P``: the FIR length (the step buffer holds ``P - 1`` inputs)."""
        return self.kernel.shape[-1]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``y_t = sum_j k_j u_{t-j}`` per channel; ``u (B, L, H)``."""
        return fft_conv_blh(u, self.kernel.to(u.dtype))

    def init_buffer(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        """Zero buffer ``(batch, P - 1, H)`` of previous inputs (oldest first)."""
        return torch.zeros(batch, self.taps - 1, self.kernel.shape[0], dtype=dtype, device=self.kernel.device)

    def step(self, u_t: torch.Tensor, buf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One position: ``(y_t (B, H), new buffer)``."""
        return fir_step(u_t, buf.to(u_t.dtype), self.kernel.to(u_t.dtype).flip(-1))
