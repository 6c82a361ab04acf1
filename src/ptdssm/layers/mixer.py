r"""The family-neutral contract of every sequence layer: :class:`SequenceMixer`, ``(B, L, H) -> (B, L, H)``.

What is written once, here, for every family (S4, S4D, S5, and later Mamba, H3, Hyena, LRU, ...):

- **Validation.** ``x`` must be a floating ``torch.Tensor`` of shape ``(B, L, H)`` with ``L >= 1`` and
  ``H = d_model`` (``(B, H)`` for :meth:`~SequenceMixer.step`); NaN/inf raise
  :class:`~ptdssm.errors.NonFiniteError` (one reduction per call, skipped under ``torch.compile`` and with
  ``validate=False``). Errors are one line and name the argument.
- **Padding.** ``lengths (B,)`` (integers in ``[1, L]``) marks right-padded sequences: inputs at ``t >= lengths[b]``
  are zeroed before :meth:`~SequenceMixer._forward` sees them and outputs there are zero, so nothing in the pads
  reaches a real position (a causal pass never looks ahead; an anti-causal pass sees zeros only).
- **Precision (fp32 island).** The subclass computes with autocast disabled in the *compute dtype*: float64 when the
  module's floating parameters/buffers are float64 (``.double()``), else float32 (also under bf16/fp16 autocast).
  The output is cast back to the input's dtype.
- **Dropout** on the output (``dropout`` in ``[0, 1)``).
- **Empty batches.** ``B = 0`` gives an empty ``(0, L, H)`` output (and an empty state from ``prefill``,
  ``init_state(0)`` and ``step``) for every family, computed as the family's result for one zero sequence cut to
  none, so no kernel ever sees an empty batch.

Subclasses implement ``_forward(u (B, L, H), lengths) -> (B, L, H)`` (``u`` already masked, compute dtype) and, for
recurrent (step) mode, ``_init_state(batch) -> state`` and ``_step(u_t (B, H), state) -> (y_t (B, H), state)``.
A state is any object: a tensor, a tuple such as Mamba's ``(conv_state, ssm_state)``, a dict, a list or a dataclass
whose tensors have the batch as their first axis. :meth:`~SequenceMixer.prefill` runs a whole (padded) sequence and
returns the outputs and the state after each sequence's last real position (the default loops :meth:`_step`;
families with a closed form override :meth:`_prefill`). :meth:`forward` and :meth:`prefill` share one skeleton,
:meth:`_run`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._checks import check_positive_int
from ..errors import NonFiniteError

__all__ = ["SequenceMixer", "all_finite", "lengths_mask", "map_state"]


def all_finite(x: torch.Tensor) -> bool:
    """``isfinite(x).all()`` in one reduction pass: a finite sum means every term is finite (NaN and inf propagate,
    ``inf - inf`` is NaN); only a non-finite sum (a NaN/inf, or an overflow of huge finite values) falls back to the
    elementwise test. ``isfinite(x).all()`` itself makes four full passes (~0.7 FFT floors at L=4096 on CPU)."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if bool(torch.isfinite(x.sum(dtype=acc))):
        return True
    return bool(torch.isfinite(x).all())


def lengths_mask(lengths: object, B: int, L: int, device: torch.device) -> torch.Tensor:
    """``(B, L, 1)`` boolean mask of real positions (``t < lengths[b]``) from integer ``lengths (B,)`` in
    ``[1, L]``."""
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be an integer torch.Tensor of shape (B,), got {type(lengths).__name__}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must have an integer dtype, got {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
    lengths = lengths.to(device)
    if not torch.compiler.is_compiling() and bool(((lengths < 1) | (lengths > L)).any()):
        raise ValueError(f"lengths must lie in [1, {L}], got {lengths.tolist()}")
    return (torch.arange(L, device=device)[None, :] < lengths[:, None])[..., None]


def map_state(fn: Callable[..., torch.Tensor], *states: Any) -> Any:
    """Apply ``fn`` to the tensors of one or more states of the same structure (tensor, tuple, list, dict or
    dataclass, nested); other leaves are taken from the first state unchanged."""
    s0 = states[0]
    if isinstance(s0, torch.Tensor):
        return fn(*states)
    if isinstance(s0, (tuple, list)):
        out = [map_state(fn, *parts) for parts in zip(*states, strict=True)]
        return type(s0)(*out) if hasattr(s0, "_fields") else type(s0)(out)
    if isinstance(s0, dict):
        return {k: map_state(fn, *(s[k] for s in states)) for k in s0}
    if dataclasses.is_dataclass(s0) and not isinstance(s0, type):
        return dataclasses.replace(s0, **{f.name: map_state(fn, *(getattr(s, f.name) for s in states))
                                          for f in dataclasses.fields(s0) if f.init})
    return s0


class SequenceMixer(nn.Module):
    """Base class of every sequence layer: ``(B, L, H) -> (B, L, H)`` (module docstring).

    Args:
        d_model: channels ``H``.
        dropout: output dropout probability in ``[0, 1)``.
        validate: check inputs for NaN/inf (one reduction per call).
    """

    def __init__(self, d_model: int, *, dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.validate = bool(validate)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    # ------------------------------------------------------------------ hooks
    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _init_state(self, batch: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no step mode")

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no step mode")

    def compute_dtype(self) -> torch.dtype:
        """float64 if the module's first floating parameter (or buffer) is float64/complex128, else float32."""
        for t in itertools.chain(self.parameters(), self.buffers()):
            if t.is_floating_point() or t.is_complex():
                return torch.float64 if t.dtype in (torch.float64, torch.complex128) else torch.float32
        return torch.float32

    # ------------------------------------------------------------------ validation
    def _check_input(self, x: object, ndim: int) -> torch.Tensor:
        shape = "(B, L, H)" if ndim == 3 else "(B, H)"
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor {shape}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != ndim or x.shape[-1] != self.d_model:
            raise ValueError(f"{name} expects shape {shape} with H={self.d_model}, got {tuple(x.shape)}")
        if ndim == 3 and x.shape[1] < 1:
            raise ValueError("sequence length must be >= 1")
        if self.validate and not torch.compiler.is_compiling() and not all_finite(x):
            raise NonFiniteError(f"{name} input contains NaN or inf")
        return x

    # ------------------------------------------------------------------ public API
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Mix along time.

        Args:
            x: ``(B, L, H)`` float input.
            lengths: optional ``(B,)`` integer lengths of right-padded sequences.

        Returns:
            ``(B, L, H)`` in ``x``'s dtype, zero beyond each length.
        """
        return self._run(x, lengths, lambda u, n: (self._forward(u, n), None))[0]

    def _run(self, x: torch.Tensor, lengths: torch.Tensor | None,
             fn: Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
        """The skeleton of :meth:`forward` and :meth:`prefill`, written once: validate ``x``, zero the pads, run
        ``fn(u, lengths) -> (y (B, L, H), extra)`` in the compute dtype with autocast off, zero ``y`` at the pads,
        cast back and apply dropout. Returns ``(y, extra)``."""
        x = self._check_input(x, 3)
        Bsz, L, _ = x.shape
        mask = None if lengths is None else lengths_mask(lengths, Bsz, L, x.device)
        if Bsz == 0:  # empty batch: the layer's own result for one zero sequence, cut to none (every family alike)
            y, extra = self._run(x.new_zeros(1, L, x.shape[2]), None, fn)
            return y[:0] + 0 * x.sum(), map_state(lambda t: t[:0], extra)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = x.to(self.compute_dtype())
            if mask is not None:
                u = u * mask
            y, extra = fn(u, lengths)
            if mask is not None:
                y = y * mask
        return self.dropout(y.to(x.dtype)), extra

    def init_state(self, batch: int) -> Any:
        """Initial (zero) recurrent state for ``batch`` sequences; its size does not grow with the length."""
        batch = check_positive_int("batch", batch, minimum=0)
        if batch == 0:  # a state holding no sequence, with the structure, dtypes and devices of a real one
            return map_state(lambda t: t[:0], self.init_state(1))
        with torch.autocast(device_type=self._device().type, enabled=False):
            return self._init_state(batch)

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One recurrent step ``x_t (B, H) -> (y_t (B, H), new state)``; equals :meth:`forward` position by
        position (dropout is applied here too)."""
        x_t = self._check_input(x_t, 2)
        if x_t.shape[0] == 0:  # empty batch (the state holds no sequence): one zero step, cut to none
            y, new = self.step(x_t.new_zeros(1, x_t.shape[1]), self.init_state(1))
            return y[:0] + 0 * x_t.sum(), map_state(lambda t: t[:0], new)
        with torch.autocast(device_type=x_t.device.type, enabled=False):
            y, state = self._step(x_t.to(self.compute_dtype()), state)
        return self.dropout(y.to(x_t.dtype)), state

    def prefill(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        """``(forward(x, lengths), state after position lengths[b] - 1 of each sequence)``, ready for :meth:`step`
        (families with a closed form override :meth:`_prefill`)."""
        return self._run(x, lengths, self._prefill)

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """Default: :meth:`_forward` for the outputs, then :meth:`_step` over the sequence, each sequence's state
        frozen from its length on, so the pads change neither the outputs nor the state."""
        Bsz, L, _ = u.shape
        mask = None if lengths is None else lengths_mask(lengths, Bsz, L, u.device)
        state = self.init_state(Bsz)
        for t in range(L):
            _, new = self._step(u[:, t], state)
            if mask is None:
                state = new
            else:
                keep = mask[:, t, 0]
                state = map_state(lambda n, o, k=keep: torch.where(k.view(-1, *[1] * (n.dim() - 1)), n, o),
                                  new, state)
        return self._forward(u, lengths), state

    def _device(self) -> torch.device:
        for t in itertools.chain(self.parameters(), self.buffers()):
            return t.device
        return torch.device("cpu")
