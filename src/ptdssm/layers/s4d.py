r"""S4D: diagonal SSM per channel, convolution mode via the blocked Vandermonde kernel.

For each channel ``h`` (``H`` channels, ``m`` modes):

.. math:: K_{h,l} = f \operatorname{Re} \sum_n C_{h,n} \gamma_{h,n} B_{h,n} \bar\lambda_{h,n}^{\,l},\qquad
          y = K * u + D u,

with ``(log lambda_bar, gamma)`` from ZOH or bilinear discretization of ``Lambda`` with the channel's ``dt``, and
``f = 2`` with conjugate symmetry (``m = N/2`` modes), else ``1``. Inits: ``s4d-legs``, ``s4d-lin``, ``s4d-inv``,
``s4d-real``, ``s4d-legt`` and ``s4d-fout`` (the diagonal analogues of S4-LegT and S4-FouT, *How to Train Your
HiPPO*; ``dt_lengths`` applies its timescale rule) and the PTD ones (S4-PTD: eigenvalues of the perturbed
HiPPO-LegS, ``B = V^-1 B_H``; ``ptd`` is the default PTD, ``ptd-paper`` the paper's objective, ``ptd-paper-pairs``
and ``ptd-response`` conjugate pairs only, see :mod:`ptdssm.theory.init`).

``d_state = N`` is the order of the real state matrix realized per channel (the HiPPO size), for every init:
``n_modes = N/2`` stored complex modes with conjugate symmetry (``s4d-legs``, ``s4d-lin``, ``s4d-inv``,
``s4d-legt``, ``s4d-fout`` and the
conjugate-pairs PTDs ``ptd-paper-pairs``, ``ptd-response``), ``N`` otherwise (``ptd-paper``, whose eigenvalues are
not all in conjugate pairs, and ``s4d-real``). The kernel is :func:`ptdssm.kernels.vandermonde.s4d_kernel`, callable
on its own.
"""

from __future__ import annotations

from typing import Any

import torch

from .._checks import check_choice, check_positive_int
from ..kernels.fftconv import fft_conv_blh
from ..kernels.vandermonde import diag_ssm_coeffs, s4d_kernel
from ..theory.init import PTD_INITS, ssm_init
from ..theory.timescale import dt_range, init_window
from .lti import LTISSM

__all__ = ["S4D", "S4D_INITS"]

S4D_INITS = ("s4d-legs", "s4d-lin", "s4d-inv", "s4d-real", "s4d-legt", "s4d-fout",
             *(i for i in PTD_INITS if not i.startswith("s5-")))


class S4D(LTISSM):
    """Diagonal state-space layer (S4D / S4-PTD): ``(B, L, H) -> (B, L, H)``.

    Args:
        d_model: channels ``H``.
        d_state: order ``N`` of each channel's real state matrix (``n_modes = N/2`` stored complex modes with
            conjugate symmetry, ``N`` without; module docstring).
        init: one of :data:`S4D_INITS`.
        conj_sym: keep one mode per conjugate pair (default: the init's, ``False`` for ``ptd-paper``/``s4d-real``).
        n_ssm: number of distinct ``(Lambda, B)`` copies, ``1`` (shared) or a divisor of ``H`` (default ``H``).
        bidirectional: add an anti-causal pass with its own ``C``.
        dt_min, dt_max: log-uniform range of the initial per-channel step sizes.
        disc: ``"zoh"`` or ``"bilinear"``.
        dropout: output dropout.
        stability: ``"exp"``, ``"reflect"`` or ``"clip"`` (see :mod:`ptdssm.layers.lti`).
        freeze_A, freeze_B, freeze_dt: register those as buffers (not trained).
        lr: learning-rate hint for the SSM parameters (``None``: the optimizer helper's ``ssm_lr``).
        D: include the skip ``D u``.
        init_kwargs: extra options of the init (e.g. PTD ``gamma``, ``seed``).
        dt_lengths: ``[min_len, max_len]`` in steps: ``dt_min, dt_max = W/max_len, W/min_len`` with the init's
            window ``W`` (2 for ``s4d-legt``/``s4d-fout``/``s4d-lin``, else 1; :mod:`ptdssm.theory.timescale`);
            replaces ``dt_min``/``dt_max``.
        validate: check inputs for NaN/inf (one reduction per call).

    :meth:`eigenvalues` has shape ``(n_ssm, m)``; :meth:`step_sizes` ``(H,)``.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, init: str = "s4d-legs", conj_sym: bool | None = None,
                 n_ssm: int | None = None, bidirectional: bool = False, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 disc: str = "zoh", dropout: float = 0.0, stability: str = "exp", freeze_A: bool = False,
                 freeze_B: bool = False, freeze_dt: bool = False, lr: float | None = None, D: bool = True,
                 init_kwargs: dict[str, Any] | None = None, dt_lengths: list[float] | None = None,
                 validate: bool = True) -> None:
        if dt_lengths is not None:
            dt_min, dt_max = dt_range(dt_lengths, init_window(init if isinstance(init, str) else None))
        super().__init__(d_model, bidirectional=bidirectional, dt_min=dt_min, dt_max=dt_max, disc=disc,
                         dropout=dropout, stability=stability, freeze_A=freeze_A, freeze_B=freeze_B,
                         freeze_dt=freeze_dt, lr=lr, D=D, validate=validate)
        self.dt_lengths = dt_lengths
        self.init = check_choice("init", init, S4D_INITS)
        self.d_state = check_positive_int("d_state", d_state)
        H = self.d_model
        self.n_ssm = H if n_ssm is None else check_positive_int("n_ssm", n_ssm)
        if H % self.n_ssm:
            raise ValueError(f"n_ssm={self.n_ssm} must divide d_model={H}")
        si = ssm_init(init, d_state, conj_sym=conj_sym, **(init_kwargs or {}))
        self.conj_sym = si.conj_sym
        m = self.n_modes = si.n_modes
        Lambda = torch.as_tensor(si.Lambda).expand(self.n_ssm, m)
        self._register_lambda(Lambda)
        self._register_channel_io(torch.as_tensor(si.B).expand(self.n_ssm, m))

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Lambda (H, m), B (H, m), C (ch, H, m), dt (H,))`` in the compute dtype."""
        rd = self.compute_dtype()
        Lambda = self._channels(self._lambda())
        B = self._channels(self._complex(self.B.to(rd)))
        return Lambda, B, self._complex(self.C.to(rd)), self.step_sizes()

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log lambda_bar (H, m), f C gamma B (ch, H, m))``."""
        return diag_ssm_coeffs(*self._params(), self.disc, self.conj_sym)

    def kernel(self, L: int) -> torch.Tensor:
        """Convolution kernel ``(ch, H, L)`` (``ch = 2`` when bidirectional: causal, anti-causal):
        :func:`~ptdssm.kernels.vandermonde.s4d_kernel` of the current parameters."""
        return s4d_kernel(*self._params(), L, self.disc, self.conj_sym)

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        k = self.kernel(u.shape[1])
        return fft_conv_blh(u, k[0], k[1] if self.bidirectional else None, self._skip(u))

    # step mode: x_k = lambda_bar x_{k-1} + gamma B u_k,  y_k = f Re(C x_k) + D u_k
    def _state_shape(self) -> tuple[int, ...]:
        return (self.d_model, self.n_modes)

    def _step_setup(self) -> dict[str, torch.Tensor]:
        log_z, c = self._discrete()
        return {"z": torch.exp(log_z), "c": c[0]}

    def _recur(self, u: torch.Tensor, state: torch.Tensor,
               cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # B gamma is folded into c, so the state here is x / (B gamma): same recurrence, same output.
        state = cache["z"] * state + u[..., None].to(state.dtype)
        return (cache["c"] * state).sum(-1).real, state
