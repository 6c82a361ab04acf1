r"""SpaceTime forecaster (Zhang, Saab, Poli, Dao, Goel and Ré 2023): lookback ``(B, n, C_in)`` in, horizon
``(B, T, C_out)`` out, with a closed-loop decoder that predicts its own next inputs.

.. code-block:: text

    x (B, n, C_in) -- minus its lookback mean (center) --> embedding (repeat C_in -> H, or linear)
      -> encoder block 1: preprocessing kernels + companion SSM (multi-head) -> z + Linear(GELU(z)), dropout
      -> encoder block 2..N: companion SSM -> z + Linear(GELU(z)), dropout
      -> closed-loop companion SSM (:class:`~ptdssm.layers.spacetime_closed_loop.ClosedLoopCompanion`):
         encode the window into x_{n-1}, roll x <- (A + b k^T) x for T steps, y_h = c^T x
      -> output: Linear(GELU(y)) -> (B, T, C_out), plus the lookback mean of the target channels.

The encoder blocks are :class:`~ptdssm.layers.spacetime.SpaceTime` layers (the family's options, ``model.layer``;
block 1 also takes ``forecaster.first_block``: preprocessing and 8 heads by default, as the paper's
``companion_preprocess`` config of 16 kernels x 8 heads at width 128).

**Loss** (the paper's ``--criterion_weights w0 w1 w2``). After a forward pass in training mode
:attr:`SpaceTimeForecaster.aux_loss` holds ``(w1 * lag + w2 * next) / w0`` (``None`` in eval mode), which the
training loop adds to the horizon MSE:

- ``lag``: MSE of the output map of the teacher-forced lag outputs ``c^T x_t`` (``t < n - 1``) against the next
  lookback values ``x_{t+1}`` of the target channels (centered as the inputs);
- ``next``: MSE of the closed-loop's predicted next inputs ``k^T x_t`` against the decoder's real next inputs
  ``u_{t+1}`` (the encoder's output; not detached, as in the authors' code).

Target channels: all of them when ``C_in == C_out`` (features ``S``, ``M``); otherwise the last ``C_out`` input
channels (TSLib orders ``MS`` inputs with the target last). Windows are full length (``lengths`` must be ``None``
or all equal to the lookback).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ..layers.spacetime import SpaceTime
from ..layers.spacetime_closed_loop import ClosedLoopCompanion, ForecasterOptions

__all__ = ["SpaceTimeForecaster"]

#: SpaceTime layer options the closed-loop decoder shares with the encoder.
_DECODER_KEYS = ("d_state", "norm_order", "kernel_init", "lr")


class SpaceTimeBlock(nn.Module):
    """``z = mixer(u)``, then ``dropout(z + Linear(GELU(z)))`` (the paper's block: SSM, then an MLP with a skip)."""

    def __init__(self, mixer: SpaceTime, dropout: float) -> None:
        super().__init__()
        self.mixer = mixer
        self.linear = nn.Linear(mixer.d_model, mixer.d_model)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = self.mixer(u)
        return self.dropout(z + self.linear(F.gelu(z)))


class SpaceTimeForecaster(nn.Module):
    """SpaceTime for forecasting: ``forward(x (B, n, C_in)) -> (B, T, C_out)`` (module docstring).

    Args:
        d_input: input channels ``C_in``; d_output: forecast channels ``C_out``.
        lookback: ``n``; horizon: ``T``.
        d_model: width ``H``; n_layers: encoder blocks; dropout: after each block's MLP.
        layer: options of the :class:`~ptdssm.layers.spacetime.SpaceTime` encoder layers (``model.layer``),
            including ``forecaster`` (:class:`~ptdssm.layers.spacetime_closed_loop.ForecasterOptions`).
    """

    def __init__(self, d_input: int, d_output: int, lookback: int, horizon: int, *, d_model: int = 128,
                 n_layers: int = 2, dropout: float = 0.0, layer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.d_input = check_positive_int("d_input", d_input)
        self.d_output = check_positive_int("d_output", d_output)
        self.lookback = check_positive_int("lookback", lookback)
        self.horizon = check_positive_int("horizon", horizon)
        self.d_model = H = check_positive_int("d_model", d_model)
        check_positive_int("n_layers", n_layers)
        if self.d_output > self.d_input:
            raise ValueError(f"d_output={d_output} > d_input={d_input}: the forecast channels must be inputs too")
        opts = dict(layer or {})
        self.options = ForecasterOptions.from_dict(opts.pop("forecaster", None))
        opts.pop("dropout", None)
        emb = self.options.embedding
        if emb == "auto":
            emb = "repeat" if H % self.d_input == 0 else "linear"
        if emb == "repeat" and H % self.d_input:
            raise ValueError(f"forecaster.embedding 'repeat' needs d_input={d_input} to divide d_model={H}")
        self.embedding = None if emb == "repeat" else nn.Linear(self.d_input, H)
        blocks = []
        for i in range(n_layers):
            kw = {**opts, **(self.options.first_block if i == 0 else {})}
            blocks.append(SpaceTimeBlock(SpaceTime(H, **kw), float(dropout)))
        self.blocks = nn.ModuleList(blocks)
        self.decoder = ClosedLoopCompanion(H, n_kernels=self.options.decoder_kernels,
                                           **{k: opts[k] for k in _DECODER_KEYS if k in opts})
        self.output = nn.Linear(H, self.d_output)
        self.aux_loss: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return (f"d_input={self.d_input}, d_output={self.d_output}, lookback={self.lookback}, "
                f"horizon={self.horizon}, d_model={self.d_model}")

    def _readout(self, y: torch.Tensor) -> torch.Tensor:
        return self.output(F.gelu(y) if self.options.output_activation else y)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Forecast ``(B, T, C_out)`` from ``x (B, n, C_in)``; sets :attr:`aux_loss` (module docstring)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"x must be (B, L, {self.d_input}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if lengths is not None and bool((lengths != x.shape[1]).any()):
            raise ValueError("lengths: SpaceTime forecasts full-length lookback windows only")
        mean = x.mean(1, keepdim=True) if self.options.center else torch.zeros_like(x[:, :1])
        xc = x - mean
        u = xc.repeat(1, 1, self.d_model // self.d_input) if self.embedding is None else self.embedding(xc)
        for block in self.blocks:
            u = block(u)
        y, _ = self.decoder(u, self.horizon)
        out = self._readout(y) + mean[..., self.d_input - self.d_output:]
        self.aux_loss = self._aux_loss(u, xc) if self.training else None
        return out

    def _aux_loss(self, u: torch.Tensor, xc: torch.Tensor) -> torch.Tensor | None:
        """``(w1 * lag + w2 * next) / w0`` over the lag window (module docstring)."""
        w0, w1, w2 = self.options.criterion_weights
        if (w1 == 0 and w2 == 0) or u.shape[1] < 2:
            return None
        y_lag, u_next = self.decoder.lag_signals_fp32(u)
        lag = F.mse_loss(self._readout(y_lag[:, :-1]), xc[:, 1:, self.d_input - self.d_output:])
        nxt = F.mse_loss(u_next[:, :-1], u[:, 1:].to(u_next.dtype))
        return (w1 * lag + w2 * nxt) / w0
