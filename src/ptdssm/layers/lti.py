r"""Linear time-invariant SSM layers (:class:`LTISSM`): the shared machinery of S4, S4D and S5 (and later LRU, ...).

Every LTI layer realizes, per channel (S4, S4D) or shared by the channels (S5), a continuous system
``x' = A x + B u``, ``y = C x + D u`` discretized with step ``dt`` and run as a convolution or a scan.

- **State size (one meaning for every family).** ``d_state = N`` is the order of the *real* state matrix the layer
  realizes (the HiPPO size ``N``: ``A_H`` is ``N x N``). ``n_modes`` is the number of complex modes stored: ``N/2``
  with conjugate symmetry (each stored mode stands for itself and its conjugate; outputs take ``2 Re``), ``N``
  otherwise (e.g. PTD, whose ``N`` eigenvalues are not all in conjugate pairs, or ``s4d-real``). So ``s4d`` and
  ``s4-ptd`` at the same ``d_state`` realize state matrices of the same order (``N/2`` and ``N`` stored modes).
- **Real parameters.** Complex values are stored as real tensors with a trailing ``(..., 2)`` (real, imag) axis and
  turned complex inside ``forward``; ``Re(Lambda)`` is stored through the stability map below. This keeps AdamW,
  GradScaler, DDP and ``torch.compile`` working.
- **Stability** (``Re Lambda < 0`` throughout training): ``"exp"`` ``Re = -exp(a)``; ``"reflect"`` ``Re = -|a|``;
  ``"clip"`` ``Re = min(a, -1e-4)``.
- **Optimizer hints.** SSM parameters (``Lambda``, ``B``, ``P``, ``dt``) carry ``param._optim = {"lr": lr,
  "weight_decay": 0.0}``; :func:`ptdssm.optim.param_groups` reads them.
- **Freezing.** ``freeze_A``/``freeze_B``/``freeze_dt`` register those tensors as (persistent) buffers, so they stay in
  ``state_dict`` but are not parameters: no optimizer updates and no DDP "unused parameter".
- **Skip and direction.** ``y += D u`` (``D (H,)``, optional); ``bidirectional`` adds an anti-causal pass with its own
  ``C`` (``C`` then has a leading axis of 2) and has no step mode.
- **Step mode.** :meth:`LTISSM.setup_step` caches the discrete system; :meth:`~SequenceMixer.init_state` calls it.
  The cache is dropped when the module is moved or cast (``.to(device)``, ``.double()``, ``.float()``, which all go
  through ``nn.Module._apply``) and rebuilt on the next step, in the new device and dtype. It is *not* refreshed
  when the parameters change in place: after an optimizer step call ``init_state`` (or ``setup_step``) again. The
  state is a complex tensor ``(B, *state_shape)``.

Validation, masking, the fp32 island and dropout come from :class:`~ptdssm.layers.mixer.SequenceMixer`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float
from ..kernels.discretize import DISCRETIZATIONS
from .mixer import SequenceMixer

__all__ = ["LTISSM", "MIMODiagonalSSM", "STABILITY"]

STABILITY = ("exp", "reflect", "clip")
CLIP_MAX = -1e-4


class LTISSM(SequenceMixer):
    """Base class of the LTI SSM layers: options, parameter registration, eigenvalues, step sizes, step cache.

    Subclasses set ``d_state`` (``N``) and ``n_modes``, register ``A_re``/``A_im`` (:meth:`_register_lambda`),
    ``B``, ``C``, ``log_dt``, and implement ``_forward(u (B, L, H), lengths) -> (B, L, H)`` (the ``D`` skip included),
    ``_state_shape()``, ``_step_setup() -> dict`` and ``_recur(u_t (B, H), state, cache) -> (y_t, state)`` (without
    ``D``).

    Args:
        d_model: channels ``H``.
        bidirectional: add an anti-causal pass with its own ``C``.
        dt_min, dt_max: log-uniform range of the initial step sizes.
        disc: ``"zoh"`` or ``"bilinear"``.
        dropout: output dropout.
        stability: ``"exp"``, ``"reflect"`` or ``"clip"`` (module docstring).
        freeze_A, freeze_B, freeze_dt: register those as buffers (not trained).
        lr: learning-rate hint for the SSM parameters (``None``: the optimizer helper's ``ssm_lr``).
        D: include the skip ``D u``.
        validate: check inputs for NaN/inf.
    """

    d_state: int
    n_modes: int

    def __init__(self, d_model: int, *, bidirectional: bool = False, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 disc: str = "zoh", dropout: float = 0.0, stability: str = "exp", freeze_A: bool = False,
                 freeze_B: bool = False, freeze_dt: bool = False, lr: float | None = None, D: bool = True,
                 validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        self.dt_min = check_positive_float("dt_min", dt_min)
        self.dt_max = check_positive_float("dt_max", dt_max)
        if self.dt_min > self.dt_max:
            raise ValueError(f"dt_min={dt_min} must be <= dt_max={dt_max}")
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        self.stability = check_choice("stability", stability, STABILITY)
        if lr is not None:
            check_positive_float("lr", lr)
        self.bidirectional = bool(bidirectional)
        self.freeze_A, self.freeze_B, self.freeze_dt = bool(freeze_A), bool(freeze_B), bool(freeze_dt)
        self.ssm_lr = lr
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

    def compute_dtype(self) -> torch.dtype:
        """float64 if the layer was ``.double()``-ed, else float32 (complex math in complex128 / complex64)."""
        return torch.float64 if self.A_im.dtype == torch.float64 else torch.float32

    def _apply(self, fn: Any, recurse: bool = True) -> LTISSM:
        # .to(device) / .double() / .float() / .cuda(): the cached discrete system is in the old device and dtype
        self._step_cache = None
        return super()._apply(fn, recurse)

    def _lambda(self) -> torch.Tensor:
        """Continuous eigenvalues in the compute dtype, ``Re < 0`` by the stability map."""
        rd = self.compute_dtype()
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
        """Current step sizes ``dt = exp(log_dt)`` (S4/S4D: ``(H,)`` per channel; S5: ``(n_modes,)`` per state)."""
        return torch.exp(self.log_dt.to(self.compute_dtype()))

    def eigenvalues(self) -> torch.Tensor:
        """Continuous eigenvalues currently used (complex, detached; the subclass docstring gives the shape)."""
        return self._lambda().detach()

    def _skip(self, u: torch.Tensor) -> torch.Tensor | None:
        return None if self.D is None else self.D.to(u.dtype)

    # ------------------------------------------------------------------ step mode
    def setup_step(self) -> None:
        """Precompute the discrete system for :meth:`step` (called by :meth:`init_state`; call it again after the
        parameters change, e.g. after an optimizer step; a move or cast of the module drops it by itself)."""
        if self.bidirectional:
            raise RuntimeError(f"{type(self).__name__}(bidirectional=True) has no step mode: the reverse pass needs "
                               "future inputs")
        with torch.no_grad(), torch.autocast(device_type=self._device().type, enabled=False):
            self._step_cache = self._step_setup()

    def _init_state(self, batch: int) -> torch.Tensor:
        """Zero complex state ``(batch, *state_shape)``; also runs :meth:`setup_step`."""
        self.setup_step()
        cdt = torch.complex128 if self.compute_dtype() == torch.float64 else torch.complex64
        return torch.zeros(batch, *self._state_shape(), dtype=cdt, device=self._device())

    def _step(self, u: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._step_cache is None:
            self.setup_step()
        assert self._step_cache is not None
        shape = tuple(self._state_shape())
        if not isinstance(state, torch.Tensor) or state.shape[0] != u.shape[0] or tuple(state.shape[1:]) != shape:
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(f"state has shape {got}, expected ({u.shape[0]}, {', '.join(map(str, shape))}); "
                             "use init_state(batch)")
        cdt = torch.complex128 if u.dtype == torch.float64 else torch.complex64
        y, state = self._recur(u, state.to(cdt), self._step_cache)  # a state made before .double()/.float() too
        if self.D is not None:
            y = y + self.D.to(u.dtype) * u
        return y, state

    def _state_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_setup(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _recur(self, u: torch.Tensor, state: torch.Tensor,
               cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={getattr(self, 'd_state', '?')}, "
                f"n_modes={getattr(self, 'n_modes', '?')}, bidirectional={self.bidirectional}, disc={self.disc!r}, "
                f"stability={self.stability!r}, dt=[{self.dt_min}, {self.dt_max}]")


class MIMODiagonalSSM(LTISSM):
    r"""An :class:`LTISSM` whose ``m`` complex modes are shared by the ``H`` channels (S5, LRU): step mode
    ``x_t = z * x_{t-1} + B u_t``, ``y_t = Re(C x_t)`` (+ ``D u_t`` by :meth:`LTISSM.step`), state ``(B, m)``.

    Subclasses give ``_discrete() -> (log z (m,), B (m, H), C (ch, H, m))`` (``C`` with any conjugate-symmetry
    factor applied; the step uses the forward direction ``C[0]``) and ``n_modes``.
    """

    n_modes: int

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state_shape(self) -> tuple[int, ...]:
        return (self.n_modes,)

    def _step_setup(self) -> dict[str, torch.Tensor]:
        log_z, B, C = self._discrete()
        return {"z": torch.exp(log_z), "B": B, "C": C[0]}

    def _recur(self, u: torch.Tensor, state: torch.Tensor,
               cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        state = cache["z"] * state + u.to(state.dtype) @ cache["B"].T
        return (state @ cache["C"].T).real, state
