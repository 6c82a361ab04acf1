r"""SpaceTime's open-loop SSM layer (Zhang, Saab, Poli, Dao, Goel and Ré 2023, "Effectively Modeling Time Series
with Simple Discrete State Spaces"): ``(B, L, H) -> (B, L, H)``.

Per channel ``h`` a discrete single-input single-output SSM of state size ``d`` (``d_state``, the paper's
``kernel_dim``) with a **companion** state matrix:

.. math:: x_t = A x_{t-1} + b\, z_t, \quad y_t = c^\top x_t + D_h z_t, \qquad A = S + a e_d^\top,

``S`` the down-shift and ``a`` a learned last column, i.e. ``y = k * z + D z`` with ``k_l = c^T A^l b``
(:func:`~ptdssm.kernels.companion.companion_kernel`, the ``O(d log d + L log L)`` roots-of-unity algorithm, or
``kernel_method="squaring"``: repeated squaring as the authors' model). The companion form holds any AR(d) /
ARIMA recurrence exactly (``a`` the AR coefficients). ``a`` is divided by its L1 norm (``norm_order=1``, as the
authors' ``CompanionSSM``; a row whose norm is ``<= 1e-4`` is left as is, decided on the device, no host sync): then
every eigenvalue of ``A`` lies in the closed unit disk. ``b`` and ``c`` are used as they are: normalizing them too
bounds every tap by ``|k_l| <= 1`` and leaves the kernel's total gain ``sum_l |k_l|`` near ``0.1`` at init (d = 64),
so the SSM path starts (and, at lr 1e-3, stays for hundreds of steps) negligible next to the skip ``D``. With
``b``, ``c`` free their scale is the init's: ``"xavier"`` (the default, ``U(-1/sqrt(d), 1/sqrt(d))``) gives a total
gain near 1.5; the authors' ``"normal"`` gives about 300 (activations grow ~30x per layer).

- **Shift SSM** (``kind="shift"``): ``a = 0`` and ``b = e_1`` frozen, ``c`` learned: the kernel is ``c`` itself, a
  causal FIR of ``d`` taps (as H3's shift SSM).
- **Multi-head kernels** (the authors' layout): ``H = kernel_repeat * n_kernels * n_heads * head_dim``; the
  ``n_kernels`` distinct systems each serve ``n_heads * head_dim`` consecutive channels, and that block of channels
  is repeated ``kernel_repeat`` times (channel ``h`` uses system ``(h // (n_heads * head_dim)) % n_kernels``).
  ``n_kernels=None``: one system per channel (``H / (kernel_repeat * n_heads)``).
- **Preprocessing** (``preprocess=True``, the first encoder block of the paper): fixed differencing and
  moving-average-residual kernels :class:`~ptdssm.layers.spacetime_preprocess.ResidualPreprocess` give ``z``;
  otherwise ``z = u``.
- **Skip**: ``D`` per channel (ones at init, as the authors), ``skip=False`` drops it.
- **Step mode** (exact, ``O(d)`` per channel and step): the state is ``x (B, H, d)`` (plus the preprocessing FIR's
  buffer of the last ``P - 1`` inputs when ``preprocess``); one step shifts ``x`` and adds ``a x_{d-1} + b z_t``
  (:func:`~ptdssm.kernels.companion.companion_step`). The system is rebuilt from the parameters at every step.
- **Padding**: causal, so pads (zeroed by :class:`~ptdssm.layers.mixer.SequenceMixer`) never reach a real position.

``a``, ``b``, ``c`` carry the optimizer hint ``{"lr": lr, "weight_decay": 0}`` (``lr=None``: ``ssm_lr``).
The closed-loop decoder and the forecaster are :mod:`ptdssm.models.spacetime`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.companion import companion_kernel, companion_kernel_krylov, companion_step, l1_normalize
from ..kernels.fftconv import fft_conv_blh
from .mixer import SequenceMixer
from .spacetime_preprocess import ResidualPreprocess

__all__ = ["KERNEL_INITS", "SpaceTime", "companion_params", "head_layout"]

KERNEL_INITS = ("normal", "xavier")
KINDS = ("companion", "shift")
KERNEL_METHODS = ("fast", "squaring")


def head_layout(d_model: int, n_kernels: int | None, n_heads: int, kernel_repeat: int) -> tuple[int, int]:
    """``(n_kernels, head_dim)`` with ``d_model = kernel_repeat * n_kernels * n_heads * head_dim`` (module
    docstring); ``ValueError`` naming the options unless they divide ``d_model``."""
    n_heads = check_positive_int("n_heads", n_heads)
    kernel_repeat = check_positive_int("kernel_repeat", kernel_repeat)
    if n_kernels is None:
        if d_model % (kernel_repeat * n_heads):
            raise ValueError(f"kernel_repeat * n_heads = {kernel_repeat * n_heads} must divide d_model={d_model}")
        return d_model // (kernel_repeat * n_heads), 1
    n_kernels = check_positive_int("n_kernels", n_kernels)
    per = kernel_repeat * n_kernels * n_heads
    if d_model % per:
        raise ValueError(f"kernel_repeat * n_kernels * n_heads = {per} must divide d_model={d_model}")
    return n_kernels, d_model // per


def companion_params(n: int, d: int, init: str) -> torch.Tensor:
    """Initial ``(n, d)`` rows of ``a``, ``b``, ``c`` or ``k``: ``"normal"`` ``N(0, 1)`` (the authors' default) or
    ``"xavier"`` ``U(-1/sqrt(d), 1/sqrt(d))``."""
    if init == "normal":
        return torch.randn(n, d)
    bound = 1.0 / math.sqrt(d)
    return torch.empty(n, d).uniform_(-bound, bound)


class SpaceTime(SequenceMixer):
    """SpaceTime companion (or shift) SSM layer: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths).

    Args:
        d_model: channels ``H``.
        d_state: state size ``d`` (the paper's ``kernel_dim``; 64 in its recipes).
        n_kernels, n_heads, kernel_repeat: the multi-head layout (module docstring).
        kind: ``"companion"`` (learned ``a``, ``b``, ``c``) or ``"shift"`` (``a = 0``, ``b = e_1``).
        norm_order: ``1``: L1-normalize ``a`` (``b``, ``c`` are never normalized); ``0``: use it as it is.
        preprocess: run the fixed differencing / moving-average-residual kernels first.
        max_diff_order, min_avg_window, max_avg_window, preprocess_group: the preprocessing kernels
            (:mod:`~ptdssm.layers.spacetime_preprocess`).
        skip: per-channel skip ``D``.
        kernel_init: ``"xavier"`` (default) or ``"normal"`` (the authors'; too large with ``b``, ``c`` free).
        kernel_method: ``"fast"`` (roots of unity) or ``"squaring"`` (repeated squaring).
        lr: learning-rate hint of ``a``, ``b``, ``c`` (``None``: the optimizer's ``ssm_lr``).
        forecaster: options of :class:`~ptdssm.models.spacetime.SpaceTimeForecaster` (a forecasting task's
            model; :class:`~ptdssm.layers.spacetime_closed_loop.ForecasterOptions`), checked and otherwise unused by
            the layer.
        dropout: output dropout.
        validate: check inputs for NaN/inf.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, n_kernels: int | None = None, n_heads: int = 1,
                 kernel_repeat: int = 1, kind: str = "companion", norm_order: int = 1, preprocess: bool = False,
                 max_diff_order: int = 4, min_avg_window: int = 4, max_avg_window: int = 720,
                 preprocess_group: int = 8, skip: bool = True, kernel_init: str = "xavier",
                 kernel_method: str = "fast", lr: float | None = None, forecaster: dict[str, Any] | None = None,
                 dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        from .spacetime_closed_loop import ForecasterOptions

        self.forecaster = ForecasterOptions.from_dict(forecaster)  # checked here; used by the forecaster only
        H = self.d_model
        self.d_state = d = check_positive_int("d_state", d_state)
        self.n_kernels, self.head_dim = head_layout(H, n_kernels, n_heads, kernel_repeat)
        self.n_heads, self.kernel_repeat = int(n_heads), int(kernel_repeat)
        self.kind = check_choice("kind", kind, KINDS)
        if norm_order not in (0, 1) or isinstance(norm_order, bool):
            raise ValueError(f"norm_order must be 0 (off) or 1 (L1), got {norm_order!r}")
        self.norm_order = int(norm_order)
        self.kernel_method = check_choice("kernel_method", kernel_method, KERNEL_METHODS)
        init = check_choice("kernel_init", kernel_init, KERNEL_INITS)
        if lr is not None:
            check_positive_float("lr", lr)
        nk = self.n_kernels
        self.c = nn.Parameter(companion_params(nk, d, init))
        if self.kind == "companion":
            self.a = nn.Parameter(companion_params(nk, d, init))
            self.b = nn.Parameter(companion_params(nk, d, init))
        else:
            self.register_buffer("a", torch.zeros(nk, d))
            self.register_buffer("b", torch.zeros(nk, d).index_fill_(1, torch.tensor([0]), 1.0))
        for p in self.parameters():
            p._optim = {"lr": lr, "weight_decay": 0.0}  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.ones(H)) if skip else None
        # channel h -> its system (the authors' '(kr nk nh hd)' repeat)
        self.register_buffer("kernel_index", (torch.arange(H) // (self.n_heads * self.head_dim)) % nk,
                             persistent=False)
        self.pre = (ResidualPreprocess(H, max_diff_order=max_diff_order, min_avg_window=min_avg_window,
                                       max_avg_window=max_avg_window, group=preprocess_group)
                    if preprocess else None)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, kind={self.kind}, n_kernels={self.n_kernels}, "
                f"n_heads={self.n_heads}, head_dim={self.head_dim}, kernel_repeat={self.kernel_repeat}")

    # ------------------------------------------------------------------ the system
    def system(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, b, c)``, each ``(n_kernels, d)``, ``a`` L1-normalized when ``norm_order == 1`` (in ``dtype`` if
        given)."""
        a, b, c = (t if dtype is None else t.to(dtype) for t in (self.a, self.b, self.c))
        if self.norm_order == 1 and self.kind == "companion":
            a = l1_normalize(a)
        return a, b, c

    def kernel(self, L: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(H, L)`` per-channel kernel ``k_l = c^T A^l b`` (the ``n_kernels`` systems repeated over the
        channels)."""
        a, b, c = self.system(dtype)
        if self.kind == "shift":  # k = c, d taps
            k = c[:, :L] if self.d_state >= L else torch.nn.functional.pad(c, (0, L - self.d_state))
        elif self.kernel_method == "fast":
            k = companion_kernel(a, b, c, L)
        else:
            k = companion_kernel_krylov(a, b, c, L)
        return k[self.kernel_index]

    # ------------------------------------------------------------------ parallel mode
    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        z = u if self.pre is None else self.pre(u)
        D = None if self.D is None else self.D.to(u.dtype)
        return fft_conv_blh(z, self.kernel(u.shape[1], u.dtype), D=D)

    # ------------------------------------------------------------------ step mode
    def _init_state(self, batch: int) -> Any:
        dtype = self.compute_dtype()
        x = torch.zeros(batch, self.d_model, self.d_state, dtype=dtype, device=self.c.device)
        return x if self.pre is None else (x, self.pre.init_buffer(batch, dtype))

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        x, buf = self._unpack(state, u_t.shape[0])
        z = u_t
        if self.pre is not None:
            z, buf = self.pre.step(u_t, buf)
        a, b, c = (t[self.kernel_index] for t in self.system(u_t.dtype))
        x = companion_step(x.to(u_t.dtype), a, b, z)
        y = (c * x).sum(-1)
        if self.D is not None:
            y = y + self.D.to(u_t.dtype) * z
        return y, (x if self.pre is None else (x, buf))

    def _unpack(self, state: Any, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x, preprocessing buffer or None)`` of a state from :meth:`init_state`; ``ValueError`` otherwise."""
        shape = (batch, self.d_model, self.d_state)
        if self.pre is None:
            x, buf = state, None
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            x, buf = state
        else:
            x = buf = None
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape:
            what = "x" if self.pre is None else "(x, preprocessing buffer)"
            raise ValueError(f"state must be {what} with x of shape {shape}; use init_state(batch)")
        return x, buf
