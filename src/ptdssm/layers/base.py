r"""Shared machinery of the SSM layers (:class:`SSMLayer`).

- **Real parameters.** Complex values are stored as real tensors with a trailing ``(..., 2)`` (real, imag) axis and
  turned complex inside ``forward``; ``Re(Lambda)`` is stored through the stability map below. This keeps AdamW,
  GradScaler, DDP and ``torch.compile`` working.
- **Stability** (``Re Lambda < 0`` throughout training): ``"exp"`` ``Re = -exp(a)``; ``"reflect"`` ``Re = -|a|``;
  ``"clip"`` ``Re = min(a, -1e-4)``.
- **Optimizer hints.** SSM parameters (``Lambda``, ``B``, ``P``, ``dt``) carry ``param._optim = {"lr": lr,
  "weight_decay": 0.0}``; :func:`ptdssm.optim.param_groups` reads them.
- **Freezing.** ``freeze_A``/``freeze_B``/``freeze_dt`` register those tensors as (persistent) buffers, so they stay in
  ``state_dict`` but are not parameters: no optimizer updates and no DDP "unused parameter".
- **Precision.** Kernels run in float32/complex64 with autocast disabled (float64 if the layer was ``.double()``-ed);
  the output has the input's dtype.
- **Padding.** ``lengths (B,)`` marks right-padded sequences; inputs beyond each length are zeroed (so neither the
  causal nor the reverse pass sees them) and outputs there are zero.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.discretize import DISCRETIZATIONS

__all__ = ["SSMLayer", "STABILITY"]

STABILITY = ("exp", "reflect", "clip")
CLIP_MAX = -1e-4


def _all_finite(x: torch.Tensor) -> bool:
    """``isfinite(x).all()`` in one reduction pass: a finite sum means every term is finite (NaN and inf propagate,
    ``inf - inf`` is NaN); only a non-finite sum (a NaN/inf, or an overflow of huge finite values) falls back to the
    elementwise test. ``isfinite(x).all()`` itself makes four full passes (~0.7 FFT floors at L=4096 on CPU)."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if bool(torch.isfinite(x.sum(dtype=acc))):
        return True
    return bool(torch.isfinite(x).all())


class SSMLayer(nn.Module):
    """Base class: options, parameter registration, validation, masking and the forward/step skeleton.

    Subclasses implement ``_forward(u (B, L, H)) -> (B, L, H)`` in the compute dtype, ``_step_setup() -> dict`` and
    ``_step(u_t (B, H), state, cache) -> (y_t, state)``, and ``_state_shape`` / ``_state_dtype``.
    """

    def __init__(self, d_model: int, *, bidirectional: bool = False, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 disc: str = "zoh", dropout: float = 0.0, stability: str = "exp", freeze_A: bool = False,
                 freeze_B: bool = False, freeze_dt: bool = False, lr: float | None = None, D: bool = True,
                 validate: bool = True) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.dt_min = check_positive_float("dt_min", dt_min)
        self.dt_max = check_positive_float("dt_max", dt_max)
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min={dt_min} must be <= dt_max={dt_max}")
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        self.stability = check_choice("stability", stability, STABILITY)
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if lr is not None:
            check_positive_float("lr", lr)
        self.bidirectional = bool(bidirectional)
        self.freeze_A, self.freeze_B, self.freeze_dt = bool(freeze_A), bool(freeze_B), bool(freeze_dt)
        self.ssm_lr = lr
        self.validate = bool(validate)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.D = nn.Parameter(torch.randn(self.d_model)) if D else None
        self._step_cache: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ parameters
    def _register(self, name: str, value: torch.Tensor, *, trainable: bool = True, ssm: bool = True) -> None:
        """Register ``value`` (real) as a parameter (with an optimizer hint if ``ssm``) or, if frozen, a buffer."""
        value = value.detach().to(torch.get_default_dtype()).contiguous()
        if not trainable:
            self.register_buffer(name, value)
            return
        p = nn.Parameter(value)
        if ssm:
            p._optim = {"lr": self.ssm_lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        self.register_parameter(name, p)

    def _register_complex(self, name: str, value: torch.Tensor, **kw: Any) -> None:
        """Store a complex tensor as a real ``(..., 2)`` tensor."""
        self._register(name, torch.view_as_real(value.to(torch.complex128).resolve_conj()), **kw)

    def _register_lambda(self, Lambda: torch.Tensor) -> None:
        """Register continuous eigenvalues as ``A_re`` (through the stability map) and ``A_im``."""
        re = Lambda.real.to(torch.float64).clamp(max=CLIP_MAX)
        raw = torch.log(-re) if self.stability == "exp" else re
        self._register("A_re", raw, trainable=not self.freeze_A)
        self._register("A_im", Lambda.imag.to(torch.float64), trainable=not self.freeze_A)

    def _register_channel_io(self, B: torch.Tensor) -> None:
        """Single-input-per-channel layers (S4, S4D): ``B (n_ssm, m)`` (an SSM parameter unless ``freeze_B``),
        ``C (ch, H, m)`` complex normal with ``E|C|^2 = 1`` (``ch = 2`` when bidirectional; trained at the global
        rate) and one step size per channel."""
        self._register_complex("B", B, trainable=not self.freeze_B)
        ch = 2 if self.bidirectional else 1
        self._register_complex("C", torch.randn(ch, self.d_model, B.shape[-1], dtype=torch.complex128), ssm=False)
        self._register_log_dt(self.d_model)

    def _register_log_dt(self, n: int) -> None:
        """``n`` step sizes, log-uniform in ``[dt_min, dt_max]``."""
        u = torch.rand(n, dtype=torch.float64)
        log_dt = math.log(self.dt_min) + u * (math.log(self.dt_max) - math.log(self.dt_min))
        self._register("log_dt", log_dt, trainable=not self.freeze_dt)

    @staticmethod
    def _complex(t: torch.Tensor) -> torch.Tensor:
        return torch.complex(t[..., 0], t[..., 1])

    def _real_dtype(self) -> torch.dtype:
        dt = self.A_im.dtype
        return torch.float64 if dt == torch.float64 else torch.float32

    def _lambda(self) -> torch.Tensor:
        """Continuous eigenvalues in the compute dtype, ``Re < 0`` by the stability map."""
        rd = self._real_dtype()
        a = self.A_re.to(rd)
        if self.stability == "exp":
            re = -torch.exp(a)
        elif self.stability == "reflect":
            re = -torch.abs(a)
        else:
            re = a.clamp(max=CLIP_MAX)
        return torch.complex(re, self.A_im.to(rd))

    def _channels(self, t: torch.Tensor) -> torch.Tensor:
        """Tile an ``(n_ssm, ...)`` tensor of per-copy SSM parameters to ``(H, ...)`` (channels share copies)."""
        r = self.d_model // t.shape[0]
        return t if r == 1 else t.repeat(r, *([1] * (t.dim() - 1)))

    def step_sizes(self) -> torch.Tensor:
        """Current step sizes ``dt = exp(log_dt)`` (S4/S4D: ``(H,)`` per channel; S5: ``(m,)`` per state)."""
        return torch.exp(self.log_dt.to(self._real_dtype()))

    def eigenvalues(self) -> torch.Tensor:
        """Continuous eigenvalues currently used (complex; see the subclass for the shape)."""
        return self._lambda().detach()

    # ------------------------------------------------------------------ validation
    def _check_x(self, x: object, ndim: int) -> torch.Tensor:
        shape = "(B, L, H)" if ndim == 3 else "(B, H)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor {shape}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != ndim or x.shape[-1] != self.d_model:
            raise ValueError(f"{type(self).__name__} expects shape {shape} with H={self.d_model}, "
                             f"got {tuple(x.shape)}")
        if ndim == 3 and x.shape[1] < 1:
            raise ValueError("sequence length must be >= 1")
        if self.validate and not torch.compiler.is_compiling() and not _all_finite(x):
            raise ValueError(f"{type(self).__name__} input contains NaN or inf")
        return x

    @staticmethod
    def _mask(lengths: object, B: int, L: int, device: torch.device) -> torch.Tensor:
        """``(B, L, 1)`` boolean mask of real positions from ``lengths (B,)``."""
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

    # ------------------------------------------------------------------ forward / step
    def _forward(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``y = dropout(SSM(u) + D u)``.

        Args:
            x: ``(B, L, H)`` float input.
            lengths: optional ``(B,)`` integer lengths of right-padded sequences.

        Returns:
            ``(B, L, H)`` in ``x``'s dtype (zero beyond each length).
        """
        x = self._check_x(x, 3)
        Bsz, L, _ = x.shape
        mask = None if lengths is None else self._mask(lengths, Bsz, L, x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = x.to(self._real_dtype())
            if mask is not None:
                u = u * mask
            y = self._forward(u)
            if mask is not None:
                y = y * mask
        return self.dropout(y.to(x.dtype))

    def _skip(self, u: torch.Tensor) -> torch.Tensor | None:
        return None if self.D is None else self.D.to(u.dtype)

    def setup_step(self) -> None:
        """Precompute the discrete system for :meth:`step` (called by :meth:`init_state`; call it again after the
        parameters change)."""
        if self.bidirectional:
            raise RuntimeError(f"{type(self).__name__}(bidirectional=True) has no step mode: the reverse pass needs "
                               "future inputs")
        with torch.no_grad(), torch.autocast(device_type=self.A_im.device.type, enabled=False):
            self._step_cache = self._step_setup()

    def init_state(self, batch: int) -> torch.Tensor:
        """Zero state for ``batch`` sequences (complex, O(1) in the sequence length); also runs :meth:`setup_step`."""
        batch = check_positive_int("batch", batch)
        self.setup_step()
        cdt = torch.complex128 if self._real_dtype() == torch.float64 else torch.complex64
        return torch.zeros(batch, *self._state_shape(), dtype=cdt, device=self.A_im.device)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step: ``x_t (B, H) -> (y_t (B, H), new state)``; equals :meth:`forward` position by position
        (up to dropout, which is applied here too)."""
        x_t = self._check_x(x_t, 2)
        if self._step_cache is None:
            self.setup_step()
        assert self._step_cache is not None
        if state.shape[0] != x_t.shape[0] or tuple(state.shape[1:]) != tuple(self._state_shape()):
            raise ValueError(f"state has shape {tuple(state.shape)}, expected ({x_t.shape[0]}, "
                             f"{', '.join(map(str, self._state_shape()))}); use init_state(batch)")
        with torch.autocast(device_type=x_t.device.type, enabled=False):
            u = x_t.to(self._real_dtype())
            y, state = self._step(u, state, self._step_cache)
            if self.D is not None:
                y = y + self.D.to(u.dtype) * u
        return self.dropout(y.to(x_t.dtype)), state

    def _state_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_setup(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, u: torch.Tensor, state: torch.Tensor,
              cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, bidirectional={self.bidirectional}, disc={self.disc!r}, "
                f"stability={self.stability!r}, dt=[{self.dt_min}, {self.dt_max}]")
