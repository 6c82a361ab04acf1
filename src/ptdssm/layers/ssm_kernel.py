r"""Reusable SSM kernel generators: modules that hold an SSM's parameters and return its convolution kernel.

As in safari (``SSKernel``), a layer that needs an SSM as a *filter* (H3's diagonal SSM, and later any gated or
hybrid layer) composes one of these instead of a whole sequence layer: ``kernel = gen(L)`` is a ``(C, L)`` tensor
for :func:`~ptdssm.kernels.fftconv.fft_conv_blh`, and :meth:`DiagSSMKernel.discrete` gives the same system for step
mode.

:class:`DiagSSMKernel`, per channel ``c`` (``m`` stored complex modes, ``f = 2`` with conjugate symmetry, else 1):

.. math:: K_{c,l} = f \operatorname{Re} \sum_n C_{c,n} \bar B_{c,n} \bar\lambda_{c,n}^{\,l}, \qquad
          x_k = \bar\lambda\, x_{k-1} + u_k, \quad y_k = \operatorname{Re}(f C \bar B\, x_k),

with ``(lambda_bar, B_bar)`` the ZOH or bilinear discretization of ``(Lambda, B)`` with the channel's ``dt``: the
S4D layer's system, evaluated by the same :func:`~ptdssm.kernels.vandermonde.s4d_kernel` and initialized from the
same registry (:func:`ptdssm.theory.init.ssm_init`: ``s4d-legs``, ``s4d-lin``, ``s4d-inv``, ``s4d-real``, ``ptd``).
Parameters are stored as :class:`~ptdssm.layers.lti.LTISSM` stores them (real tensors; ``Re Lambda = -exp(A_re)``;
complex ``B``, ``C`` as ``(..., 2)``); ``A_re``, ``A_im``, ``B`` and ``log_dt`` carry the optimizer hint
``{"lr": lr, "weight_decay": 0}`` (``C`` trains at the global rate, as in S4D).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_choice, check_positive_float, check_positive_int
from ..kernels.discretize import DISCRETIZATIONS
from ..kernels.vandermonde import diag_ssm_coeffs, s4d_kernel
from ..theory.init import ssm_init

__all__ = ["DIAG_INITS", "DiagSSMKernel"]

#: the inits a diagonal kernel takes (the S4D layer's)
DIAG_INITS = ("s4d-legs", "s4d-lin", "s4d-inv", "s4d-real", "ptd")


class DiagSSMKernel(nn.Module):
    """Diagonal SSM kernel generator: ``forward(L) -> (channels, L)`` (module docstring).

    Args:
        channels: number of independent SSMs ``C``.
        d_state: order ``N`` of each real state matrix (``N/2`` stored modes with conjugate symmetry, else ``N``).
        init: one of :data:`DIAG_INITS`.
        conj_sym: keep one mode per conjugate pair (default: the init's).
        dt_min, dt_max: log-uniform range of the initial step sizes.
        disc: ``"zoh"`` or ``"bilinear"``.
        lr: learning-rate hint of ``Lambda``, ``B`` and ``dt`` (``None``: the optimizer helper's ``ssm_lr``).
        init_kwargs: extra options of the init (e.g. PTD ``gamma``).
    """

    def __init__(self, channels: int, d_state: int = 64, *, init: str = "s4d-lin", conj_sym: bool | None = None,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, disc: str = "zoh", lr: float | None = None,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.d_state = check_positive_int("d_state", d_state)
        self.init = check_choice("init", init, DIAG_INITS)
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        dt_min, dt_max = check_positive_float("dt_min", dt_min), check_positive_float("dt_max", dt_max)
        if dt_min > dt_max:
            raise ValueError(f"dt_min={dt_min} must be <= dt_max={dt_max}")
        if lr is not None:
            check_positive_float("lr", lr)
        self.dt_min, self.dt_max = dt_min, dt_max
        try:
            si = ssm_init(init, self.d_state, conj_sym=conj_sym, **(init_kwargs or {}))
        except ValueError as exc:  # name the layer's argument (d_state), not the init's (n)
            raise ValueError(f"d_state={self.d_state} with init {init!r}: {exc}") from None
        self.conj_sym, self.n_modes = si.conj_sym, si.n_modes
        Lam = torch.as_tensor(si.Lambda).expand(self.channels, -1)
        hint = {"lr": lr, "weight_decay": 0.0}
        self._param("A_re", torch.log(-Lam.real.clamp(max=-1e-4)), hint)
        self._param("A_im", Lam.imag, hint)
        self._param("B", torch.view_as_real(torch.as_tensor(si.B).expand(self.channels, -1).resolve_conj()), hint)
        C = torch.randn(self.channels, self.n_modes, dtype=torch.complex128)  # E|C|^2 = 1
        self._param("C", torch.view_as_real(C), None)
        u = torch.rand(self.channels, dtype=torch.float64)
        self._param("log_dt", math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min)), hint)

    def _param(self, name: str, value: torch.Tensor, hint: dict[str, Any] | None) -> None:
        p = nn.Parameter(value.detach().to(torch.get_default_dtype()).contiguous())
        if hint is not None:
            p._optim = dict(hint)  # type: ignore[attr-defined]
        self.register_parameter(name, p)

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Lambda (C, m), B (C, m), C (1, C, m), dt (C,))``, complex in the parameters' precision."""
        Lam = torch.complex(-torch.exp(self.A_re), self.A_im)
        return (Lam, torch.view_as_complex(self.B), torch.view_as_complex(self.C)[None],
                torch.exp(self.log_dt))

    def eigenvalues(self) -> torch.Tensor:
        """Continuous eigenvalues ``(C, m)`` (complex, detached)."""
        return self._params()[0].detach()

    def step_sizes(self) -> torch.Tensor:
        """Step sizes ``(C,)``."""
        return torch.exp(self.log_dt).detach()

    def forward(self, L: int) -> torch.Tensor:
        """Kernel ``(C, L)`` (:func:`~ptdssm.kernels.vandermonde.s4d_kernel`)."""
        return s4d_kernel(*self._params(), L, self.disc, self.conj_sym)[0]

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lambda_bar (C, m), c (C, m))``: step mode is ``x_k = lambda_bar x_{k-1} + u_k``, ``y_k = Re sum_n
        c_n x_{k,n}`` (module docstring)."""
        log_z, c = diag_ssm_coeffs(*self._params(), self.disc, self.conj_sym)
        return torch.exp(log_z), c[0]

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, d_state={self.d_state}, n_modes={self.n_modes}, init={self.init!r}, "
                f"disc={self.disc!r}, dt=[{self.dt_min}, {self.dt_max}]")
