r"""SpaceTime's closed-loop companion SSM (Zhang et al. 2023, section 3.3): the decoder that forecasts by feeding
its own predicted inputs back.

Per channel ``h`` (``(B, n, H)`` inputs ``u``, the encoder's output over the lag window):

1. **Encode** the window into a state, ``x_{n-1} = sum_{i<n} A^{n-1-i} b u_i = sum_l (A^l b) u_{n-1-l}``: the last
   output of the causal convolution of ``u`` with the *state kernel* ``A^l b``
   (:func:`~ptdssm.kernels.companion.companion_state_kernel`). Only that position is needed, and the companion
   structure gives it from one scalar convolution (the last state entry over time) and two ``d x d`` Toeplitz
   products (:func:`~ptdssm.kernels.companion.companion_final_state`), ``d`` times less kernel work than the
   ``d``-row state kernel (which cost most of a training step when used here).
2. **Roll forward** ``T`` (the horizon) steps in closed loop: the next input is predicted as ``u^ = k^T x`` and fed
   back, ``x <- A x + b u^ = (A + b k^T) x``; the outputs are ``y_h = c^T (A + b k^T)^h x_{n-1}`` and the predicted
   inputs ``u^_h = k^T (A + b k^T)^h x_{n-1}``, ``h < T`` (:func:`~ptdssm.kernels.companion.closed_loop_rollout`;
   ``y_0 = c^T x_{n-1}`` is the prediction of the first horizon step).
3. **Training signals on the lag window** (teacher forcing, the state driven by the real inputs): the outputs
   ``y_t = c^T x_t = (c^T A^l b) * u`` (each predicting step ``t + 1``) and the next-input predictions
   ``u^_{t+1} = k^T x_t = (k^T A^l b) * u``, two companion-kernel FFT convolutions. The forecaster's auxiliary loss
   compares them with the next lag values and the next real inputs (:mod:`ptdssm.models.spacetime`).

``a`` and ``k`` are each L1-normalized (``norm_order = 1``), rows below ``1e-4`` left as they are; ``b`` and ``c``
are used as they are (as the encoder layer, :mod:`~ptdssm.layers.spacetime`: normalizing them leaves the decoder's
outputs ~1e-3 of its inputs at init). ``|k|_1 = 1`` bounds the fed-back input ``|k^T x| <= max_i |x_i|``, keeping
``A + b k^T`` near ``A``'s spectrum (measured at init, d = 64, xavier: spectral radius <= 0.98).
Systems are shared by channels as in :class:`~ptdssm.layers.spacetime.SpaceTime`
(``n_kernels``, ``n_heads``; the paper's decoder: one system per channel).

:class:`ForecasterOptions` are the options of :class:`~ptdssm.models.spacetime.SpaceTimeForecaster` that live in
a config's ``model.layer.forecaster`` mapping (checked here, so a config fails when it is loaded).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.companion import closed_loop_rollout, companion_final_state, companion_kernel, l1_normalize
from ..kernels.fftconv import fft_conv_blh
from .spacetime import KERNEL_INITS, companion_params, head_layout

__all__ = ["ClosedLoopCompanion", "ForecasterOptions"]


@dataclass(frozen=True)
class ForecasterOptions:
    """Options of the SpaceTime forecaster (``model.layer.forecaster`` in a config).

    Attributes:
        criterion_weights: ``(w0, w1, w2)``, the paper's ``--criterion_weights``: horizon MSE, lag-output MSE,
            closed-loop next-input MSE. The training objective adds ``aux_loss = (w1 lag + w2 next) / w0`` to the
            horizon MSE, i.e. the paper's weighted sum divided by ``w0`` (Adam is blind to that constant).
        center: subtract each input channel's lookback mean and add it back to the forecast (the paper's
            ``data_transform: mean``).
        embedding: ``"repeat"`` (the paper's: the ``C_in`` inputs tiled over ``d_model`` channels), ``"linear"``,
            or ``"auto"`` (repeat when ``C_in`` divides ``d_model``).
        first_block: layer options of encoder block 1 over the others (paper: preprocessing, 8 heads).
        decoder_kernels: systems of the closed-loop decoder (``None``: one per channel).
        output_activation: GELU before the output linear map (the paper's output MLP).
    """

    criterion_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    center: bool = True
    embedding: str = "auto"
    first_block: dict[str, Any] = field(default_factory=lambda: {"preprocess": True, "n_heads": 8})
    decoder_kernels: int | None = None
    output_activation: bool = True

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> ForecasterOptions:
        """Checked options from a mapping; ``ValueError`` naming ``forecaster.<key>`` otherwise."""
        options = dict(options or {})
        names = [f.name for f in dataclasses.fields(cls)]
        for key in options:
            if key not in names:
                raise ValueError(f"forecaster.{key} is not an option of the SpaceTime forecaster; valid: "
                                 f"{', '.join(names)}")
        w = options.get("criterion_weights", cls.criterion_weights)
        if not isinstance(w, (list, tuple)) or len(w) != 3:
            raise ValueError(f"forecaster.criterion_weights must be three numbers (w0, w1, w2), got {w!r}")
        w = tuple(check_positive_float(f"forecaster.criterion_weights[{i}]", v, allow_zero=i > 0)
                  for i, v in enumerate(w))
        check_choice("forecaster.embedding", options.get("embedding", "auto"), ("auto", "repeat", "linear"))
        if options.get("decoder_kernels") is not None:
            check_positive_int("forecaster.decoder_kernels", options["decoder_kernels"])
        if not isinstance(options.get("first_block", {}), dict):
            raise ValueError("forecaster.first_block must be a mapping of layer options")
        for key in ("center", "output_activation"):
            if not isinstance(options.get(key, True), bool):
                raise ValueError(f"forecaster.{key} must be true or false, got {options[key]!r}")
        return cls(**{**options, "criterion_weights": w})


class ClosedLoopCompanion(nn.Module):
    """Closed-loop companion SSM decoder (module docstring).

    Args:
        d_model: channels ``H``.
        d_state: state size ``d``.
        n_kernels, n_heads: systems shared by channels (``n_kernels=None``: ``H / n_heads``).
        norm_order: ``1``: L1-normalize ``a`` and ``k`` (``b``, ``c`` never); ``0``: off.
        kernel_init: ``"xavier"`` (default) or ``"normal"``.
        lr: learning-rate hint of the system's parameters.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, n_kernels: int | None = None, n_heads: int = 1,
                 norm_order: int = 1, kernel_init: str = "xavier", lr: float | None = None) -> None:
        super().__init__()
        self.d_model = H = check_positive_int("d_model", d_model)
        self.d_state = d = check_positive_int("d_state", d_state)
        self.n_kernels, self.head_dim = head_layout(H, n_kernels, n_heads, 1)
        self.n_heads = int(n_heads)
        if norm_order not in (0, 1) or isinstance(norm_order, bool):
            raise ValueError(f"norm_order must be 0 (off) or 1 (L1), got {norm_order!r}")
        self.norm_order = int(norm_order)
        init = check_choice("kernel_init", kernel_init, KERNEL_INITS)
        for name in ("a", "b", "c", "k"):
            p = nn.Parameter(companion_params(self.n_kernels, d, init))
            p._optim = {"lr": lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
            setattr(self, name, p)
        self.register_buffer("kernel_index", (torch.arange(H) // (self.n_heads * self.head_dim)) % self.n_kernels,
                             persistent=False)

    def system(self, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """``(a, b, c, k)``, each ``(n_kernels, d)``, ``a`` and ``k`` L1-normalized when ``norm_order == 1``."""
        a, b, c, k = (t.to(dtype) for t in (self.a, self.b, self.c, self.k))
        if self.norm_order == 1:
            a, k = l1_normalize(a), l1_normalize(k)
        return a, b, c, k

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """State after the window: ``x (B, H, d) = sum_l (A^l b) u_{n-1-l}``; ``u (B, n, H)``."""
        a, b, _, _ = self.system(u.dtype)
        return companion_final_state(a[self.kernel_index], b[self.kernel_index], u)

    def rollout(self, x0: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed loop from ``x0 (B, H, d)``: ``(y (B, T, H), predicted inputs (B, T, H))``."""
        a, b, c, k = (t[self.kernel_index] for t in self.system(x0.dtype))
        return closed_loop_rollout(a, b, c, k, x0, T)

    def lag_signals(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced ``(y_t = c^T x_t, u^_{t+1} = k^T x_t)`` over the window, each ``(B, n, H)``."""
        a, b, c, k = self.system(u.dtype)
        kern = companion_kernel(a, b, torch.stack([c, k]), u.shape[1])[:, self.kernel_index]  # (2, H, n)
        return fft_conv_blh(u, kern[0]), fft_conv_blh(u, kern[1])

    def forward(self, u: torch.Tensor, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``u (B, n, H)`` and roll ``horizon`` steps: ``(y (B, horizon, H), predicted inputs)``, computed
        with autocast off in float32 (float64 for a float64 input)."""
        with torch.autocast(device_type=u.device.type, enabled=False):
            return self.rollout(self.encode(_full(u)), horizon)

    def lag_signals_fp32(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`lag_signals` with autocast off in float32 (float64 for a float64 input)."""
        with torch.autocast(device_type=u.device.type, enabled=False):
            return self.lag_signals(_full(u))


def _full(u: torch.Tensor) -> torch.Tensor:
    return u if u.dtype == torch.float64 else u.float()
