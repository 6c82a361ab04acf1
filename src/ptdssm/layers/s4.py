r"""S4: diagonal-plus-low-rank (DPLR) SSM per channel, kernel by Cauchy sums + Woodbury.

Per channel, in the unitary eigenbasis of the HiPPO matrix's normal part (LegS, or LegT/FouT; ``N = 2m`` modes: the
``m`` kept ones and their conjugates, so every signal is real):

.. math:: A = \operatorname{diag}(\Lambda) - \sum_{i<r} p_i p_i^H,\quad
          \bar A = (I - \tfrac{dt}{2}A)^{-1}(I + \tfrac{dt}{2}A),\quad \bar B = (I - \tfrac{dt}{2}A)^{-1} dt\,B,

``K_l = C A_bar^l B_bar`` (``l < L``), ``y = K * u + D u``. At init ``A = V^H A_H V`` exactly (``A_H`` = the
init's HiPPO matrix; LegT's and FouT's skew normal parts have ``Re Lambda = 0``, clipped to ``-1e-4``).
The parameter is ``C`` itself (no ``L``-dependent ``C~``), so step mode uses ``C`` unchanged at any ``L``.
``A_bar``/``B_bar`` come from Woodbury (:func:`~ptdssm.kernels.discretize.discretize_dplr`, no dense solve). Two
kernel algorithms, same result:

- ``kernel="krylov"``: blocked powers of the dense ``A_bar`` written in real coordinates
  (:func:`~ptdssm.kernels.discretize.conj_pair_to_real`, :func:`~ptdssm.kernels.vandermonde.krylov_kernel`),
  ``O(H N^3 log L)`` real GEMM work; exact truncation.
- ``kernel="cauchy"``: Cauchy sums + Woodbury at the roots of unity (:func:`~ptdssm.kernels.cauchy.dplr_kernel`)
  with ``C~ = C (I - A_bar^L)``, ``A_bar^L`` by repeated squaring; ``O(H N L)`` elementwise work.

``kernel="auto"`` leaves the choice to :func:`~ptdssm.kernels.dplr.s4_kernel` (Krylov for ``N <= 128``; the
measurements behind it are in :mod:`ptdssm.kernels.dplr`).
Only the bilinear discretization has the resolvent structure the Cauchy kernel needs; ``disc="zoh"`` is rejected
(use :class:`~ptdssm.layers.s4d.S4D` for ZOH). Both live in :func:`ptdssm.kernels.dplr.s4_kernel`, callable on its
own.

``d_state = N`` is the order of the real state matrix realized per channel (the HiPPO-LegS size); ``n_modes = N/2``
complex modes are stored (conjugate symmetry), as for :class:`~ptdssm.layers.s4d.S4D` with ``s4d-legs``.

Inits (:data:`S4_INITS`, :mod:`ptdssm.theory.init`): ``s4-legs`` (S4), and from *How to Train Your HiPPO* (Gu et al.
2023) ``s4-legt`` (translated Legendre, rank 2) and ``s4-fout`` (translated Fourier, S4-FouT, rank 1), both with a
window of ``2/dt`` steps; ``dt_lengths=[min_len, max_len]`` sets ``dt_min``/``dt_max`` by that rule
(:func:`ptdssm.theory.timescale.dt_range`).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_positive_int
from ..kernels.cauchy import dplr_dense
from ..kernels.discretize import discretize_dplr
from ..kernels.dplr import S4_KERNEL_METHODS, s4_kernel
from ..kernels.fftconv import fft_conv_blh
from ..theory.init import DPLR_INITS, ssm_init
from ..theory.timescale import dt_range, init_window
from .lti import LTISSM

__all__ = ["S4", "S4_INITS"]

#: the inits S4 takes (DPLR: a diagonal part and a low-rank factor)
S4_INITS = DPLR_INITS


class S4(LTISSM):
    """DPLR state-space layer (S4, init ``s4-legs``): ``(B, L, H) -> (B, L, H)``.

    Args:
        d_model: channels ``H``.
        d_state: order ``N`` of each channel's real state matrix (even; ``n_modes = N/2`` stored complex modes).
        rank: rank ``r`` of the low-rank term, a multiple of the init's rank ``r0`` (1; ``s4-legt``: 2); default
            ``r0``. Each of the init's factors is repeated ``r/r0`` times, divided by ``sqrt(r/r0)``: the same ``A``.
        init: one of :data:`S4_INITS`.
        dt_lengths: ``[min_len, max_len]`` in steps: ``dt_min, dt_max = W/max_len, W/min_len`` with the init's
            window ``W`` (2 for ``s4-legt``/``s4-fout``, else 1; :mod:`ptdssm.theory.timescale`); replaces
            ``dt_min``/``dt_max``.
        n_ssm: distinct ``(Lambda, P, B)`` copies, a divisor of ``H`` (default ``H``).
        disc: ``"bilinear"`` only.
        kernel: ``"auto"``, ``"krylov"`` or ``"cauchy"`` (module docstring).
        other arguments: as :class:`~ptdssm.layers.s4d.S4D`; ``freeze_A`` freezes ``Lambda`` and ``P``.

    :meth:`eigenvalues` is the diagonal part ``Lambda (n_ssm, m)`` of the DPLR matrix (the eigenvalues of ``A``
    itself differ; see :meth:`dense_A`).
    """

    def __init__(self, d_model: int, d_state: int = 64, *, rank: int | None = None, init: str = "s4-legs",
                 n_ssm: int | None = None, bidirectional: bool = False, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, disc: str = "bilinear", dropout: float = 0.0, stability: str = "exp",
                 freeze_A: bool = False, freeze_B: bool = False, freeze_dt: bool = False, lr: float | None = None,
                 D: bool = True, kernel: str = "auto", dt_lengths: list[float] | None = None,
                 validate: bool = True) -> None:
        if disc != "bilinear":
            raise ValueError(f"S4 (DPLR) supports disc='bilinear' only, got {disc!r}; use S4D for ZOH")
        init = check_choice("init", init, S4_INITS)
        if dt_lengths is not None:
            dt_min, dt_max = dt_range(dt_lengths, init_window(init))
        super().__init__(d_model, bidirectional=bidirectional, dt_min=dt_min, dt_max=dt_max, disc=disc,
                         dropout=dropout, stability=stability, freeze_A=freeze_A, freeze_B=freeze_B,
                         freeze_dt=freeze_dt, lr=lr, D=D, validate=validate)
        self.dt_lengths = dt_lengths
        self.init = init
        self.kernel_mode = check_choice("kernel", kernel, S4_KERNEL_METHODS)
        self.d_state = check_positive_int("d_state", d_state, minimum=2)
        si = ssm_init(init, self.d_state, conj_sym=True)
        assert si.P is not None
        r0 = si.P.shape[0]
        self.rank = r0 if rank is None else check_positive_int("rank", rank)
        if self.rank % r0:
            raise ValueError(f"rank={self.rank} must be a multiple of the rank {r0} of init {init!r}")
        H = self.d_model
        self.n_ssm = H if n_ssm is None else check_positive_int("n_ssm", n_ssm)
        if H % self.n_ssm:
            raise ValueError(f"n_ssm={self.n_ssm} must divide d_model={H}")
        m = self.n_modes = si.n_modes
        self.conj_sym = True
        self._register_lambda(torch.as_tensor(si.Lambda).expand(self.n_ssm, m))
        rep = self.rank // r0
        P = torch.as_tensor(si.P).repeat(rep, 1) / math.sqrt(rep)
        self._register_complex("P", P.expand(self.n_ssm, self.rank, m), trainable=not freeze_A)
        self._register_channel_io(torch.as_tensor(si.B).expand(self.n_ssm, m))

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rd = self.compute_dtype()
        Lambda = self._channels(self._lambda())
        P = self._channels(self._complex(self.P.to(rd)))
        B = self._channels(self._complex(self.B.to(rd)))
        C = self._complex(self.C.to(rd))
        return Lambda, P, B, C, self.step_sizes()

    def dense_A(self) -> torch.Tensor:
        """Dense continuous state matrix ``(H, N, N)`` in the mode basis (conjugate modes appended)."""
        Lambda, P, _, _, _ = self._params()
        return dplr_dense(Lambda, P).detach()

    def kernel(self, L: int) -> torch.Tensor:
        """Convolution kernel ``(ch, H, L)``: :func:`~ptdssm.kernels.dplr.s4_kernel` of the current parameters."""
        return s4_kernel(*self._params(), L, self.kernel_mode)

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        k = self.kernel(u.shape[1])
        return fft_conv_blh(u, k[0], k[1] if self.bidirectional else None, self._skip(u))

    # step mode: dense x_k = A_bar x_{k-1} + B_bar u_k, y_k = Re(C x_k) (C over both halves) + D u_k
    def _state_shape(self) -> tuple[int, ...]:
        return (self.d_model, 2 * self.n_modes)

    def _step_setup(self) -> dict[str, torch.Tensor]:
        Lambda, P, B, C, dt = self._params()
        Abar, Bbar = discretize_dplr(Lambda, P, B, dt)
        return {"A": Abar, "B": Bbar, "C": torch.cat([C[0], C[0].conj()], dim=-1)}

    def _recur(self, u: torch.Tensor, state: torch.Tensor,
               cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        state = (cache["A"] @ state[..., None])[..., 0] + cache["B"] * u[..., None].to(state.dtype)
        return (cache["C"] * state).sum(-1).real, state
