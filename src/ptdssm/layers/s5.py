r"""S5: one MIMO diagonal SSM shared by the ``H`` channels, run by a chunked parallel scan.

.. math:: x_k = \bar\Lambda x_{k-1} + \bar B u_k,\qquad y_k = f \operatorname{Re}(\tilde C x_k) + D u_k,

with ``m`` complex states (``m = P/2`` with conjugate symmetry and ``f = 2``, else ``m = P`` and ``f = 1``), one step
size per state, ``Lambda_bar``/``B_bar = gamma B~`` from ZOH or bilinear, ``B~ = V^-1 B`` (``B`` lecun-normal,
``P x H``) and ``C~ = C V``. ``A`` is ``J`` diagonal blocks of the size-``P/J`` LegS normal part (``s5-legs``) or of
its PTD (S5-PTD: ``ptd``/``s5-ptd`` the default PTD, ``ptd-paper``, ``ptd-paper-pairs``, ``ptd-response`` or their
``s5-`` names, see :mod:`ptdssm.theory.init`). Bidirectional: a second scan over the time-reversed projected input
with its own ``C~``.

``d_state = P`` is the order of the real state matrix realized (the HiPPO size, shared by the ``H`` channels);
``n_modes = P/2`` stored complex states with conjugate symmetry (``s5-legs`` and the conjugate-pairs PTDs
``ptd-paper-pairs``, ``ptd-response``), ``P`` otherwise (``ptd-paper``, whose eigenvalues may be real).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._checks import check_choice, check_positive_int
from ..kernels.discretize import discretize_diag
from ..kernels.scan import decay_order, diag_scan, diag_scan_split
from ..theory.init import PTD_INITS, ssm_init
from .lti import MIMODiagonalSSM

__all__ = ["S5", "S5_INITS", "C_INITS"]

#: init name -> the block-diagonal init it builds (``ptd-response`` and ``s5-ptd-response`` are the same).
S5_INITS = {"s5-legs": "s5-legs", **{i: i if i.startswith("s5-") else f"s5-{i}" for i in PTD_INITS}}
C_INITS = ("trunc_normal", "lecun_normal", "complex_normal")


def _trunc_normal(*shape: int, std: float = 1.0) -> torch.Tensor:
    t = torch.empty(*shape, dtype=torch.float64)
    torch.nn.init.trunc_normal_(t, std=std, a=-2.0 * std, b=2.0 * std)
    return t


class S5(MIMODiagonalSSM):
    """Simplified state-space layer (S5 / S5-PTD): ``(B, L, H) -> (B, L, H)``.

    Args:
        d_model: channels ``H``.
        d_state: order ``P`` of the real state matrix (``n_modes = P/2`` stored complex states with conjugate
            symmetry, ``P`` without).
        blocks: diagonal blocks ``J`` of the initial ``A`` (``P`` divisible by ``J``).
        init: ``"s5-legs"`` or a PTD init of :data:`S5_INITS` (``"ptd"``, ``"ptd-response"``, ...).
        conj_sym: keep one state per conjugate pair (default: ``False`` for ``ptd-paper``, else ``True``).
        C_init: ``"trunc_normal"`` (``C`` real and imaginary parts truncated N(0, 1), ``C~ = C V``),
            ``"lecun_normal"`` (std ``1/sqrt(P)``, ``C~ = C V``) or ``"complex_normal"`` (``C~`` directly,
            ``E|C~|^2 = 1``).
        scan: ``"chunked"`` (default) or ``"fft"`` (see :mod:`ptdssm.kernels.scan`).
        other arguments: as :class:`~ptdssm.layers.s4d.S4D` (``dt`` is per state here).

    :meth:`eigenvalues` has shape ``(m,)`` (shared by the channels); :meth:`step_sizes` ``(m,)``.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, blocks: int = 1, init: str = "s5-legs",
                 conj_sym: bool | None = None, C_init: str = "trunc_normal", bidirectional: bool = False,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, disc: str = "zoh", dropout: float = 0.0,
                 stability: str = "exp", freeze_A: bool = False, freeze_B: bool = False, freeze_dt: bool = False,
                 lr: float | None = None, D: bool = True, scan: str = "chunked",
                 init_kwargs: dict[str, Any] | None = None, validate: bool = True) -> None:
        super().__init__(d_model, bidirectional=bidirectional, dt_min=dt_min, dt_max=dt_max, disc=disc,
                         dropout=dropout, stability=stability, freeze_A=freeze_A, freeze_B=freeze_B,
                         freeze_dt=freeze_dt, lr=lr, D=D, validate=validate)
        check_choice("init", init, S5_INITS)
        self.init = init
        self.C_init = check_choice("C_init", C_init, C_INITS)
        self.scan = check_choice("scan", scan, ("chunked", "fft"))
        self.d_state = P = check_positive_int("d_state", d_state)
        self.blocks = check_positive_int("blocks", blocks)
        H = self.d_model
        si = ssm_init(S5_INITS[init], P, conj_sym=conj_sym, blocks=blocks, **(init_kwargs or {}))
        assert si.V is not None and si.V_inv is not None
        self.conj_sym = si.conj_sym
        m = self.n_modes = si.n_modes
        V = torch.as_tensor(si.V)  # (P, m)
        V_inv = torch.as_tensor(si.V_inv)  # (m, P)
        self._register_lambda(torch.as_tensor(si.Lambda))
        B = torch.randn(P, H, dtype=torch.float64) / math.sqrt(H)  # lecun normal, fan_in = H
        self._register_complex("B", V_inv @ B.to(V_inv.dtype), trainable=not freeze_B)  # (m, H)
        ch = 2 if self.bidirectional else 1
        if C_init == "complex_normal":
            C_t = torch.randn(ch, H, m, dtype=torch.complex128)
        else:
            std = 1.0 if C_init == "trunc_normal" else 1.0 / math.sqrt(P)
            C = torch.complex(_trunc_normal(ch, H, P, std=std), _trunc_normal(ch, H, P, std=std))
            C_t = C @ V
        self._register_complex("C", C_t, ssm=False)  # (ch, H, m)
        self._register_log_dt(m)

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log lambda_bar (m,), B_bar (m, H), f C~ (ch, H, m))``."""
        rd = self.compute_dtype()
        log_z, gamma = discretize_diag(self._lambda(), self.step_sizes(), self.disc)
        Bbar = gamma[:, None] * self._complex(self.B.to(rd))
        C = self._complex(self.C.to(rd)) * (2.0 if self.conj_sym else 1.0)
        return log_z, Bbar, C

    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        log_z, Bbar, C = self._discrete()
        m = self.n_modes
        order = decay_order(log_z, u.shape[-2]) if self.scan == "chunked" else None
        if order is not None:  # fast-decaying modes last: the scan slices them off (no gather of the states)
            log_z, Bbar, C = log_z[order], Bbar[order], C[..., order]
        # Real GEMMs for the projections, with (Re, Im) interleaved along the state axis so that the complex views
        # are free (no strided complex(), no cat of real/imag halves): v = [Re, Im](B_bar) u viewed as complex
        # (B, L, m); y = Re(C x) = sum_n C_re x_re - C_im x_im over the interleaved real view of x.
        W = torch.stack([Bbar.real, Bbar.imag], dim=1).reshape(2 * m, -1)  # (2m, H)
        v = torch.view_as_complex((u @ W.T).view(*u.shape[:-1], m, 2))  # (B, L, m)
        xs = self._scan(log_z, v)
        if self.bidirectional:
            # Inputs beyond each length are zero, so a full flip reverses every sequence within its own length.
            xs += [t.flip(1) for t in self._scan(log_z, v.flip(1))]
        # The scan's groups of modes (slow, fast) in order: their cat is the (B, L, 2m ch) real view of the states.
        x = torch.cat([torch.view_as_real(t).reshape(*t.shape[:-1], 2 * t.shape[-1]) for t in xs], dim=-1)
        Cw = torch.cat([torch.stack([c.real, -c.imag], dim=-1).reshape(c.shape[0], 2 * m) for c in C], dim=-1)
        y = x @ Cw.T
        if self.D is not None:
            y = y.addcmul_(u, self.D.to(u.dtype))  # one pass instead of u * D then y + (...)
        return y

    def _scan(self, log_z: torch.Tensor, v: torch.Tensor) -> list[torch.Tensor]:
        """States ``(B, L, m)`` of ``v (B, L, m)``, as :func:`~ptdssm.kernels.scan.diag_scan_split`'s groups."""
        return diag_scan_split(log_z, v) if self.scan == "chunked" else [diag_scan(log_z, v, self.scan)]
