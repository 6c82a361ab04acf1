r"""LRU, the Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu and De 2023, "Resurrecting
Recurrent Neural Networks for Long Sequences"): a complex diagonal linear recurrence, run by a parallel scan.

.. math:: x_k = \operatorname{diag}(\lambda)\, x_{k-1} + \gamma \odot (B u_k),\qquad
          y_k = \operatorname{Re}(C x_k) + D \odot u_k,\qquad
          \lambda_j = \exp(-e^{\nu_j} + i\, e^{\theta_j}),

with ``m`` complex states, ``B (m, H)`` and ``C (H, m)`` complex, ``D (H,)`` real, and the parameters stored as the
paper's: ``nu_log``, ``theta_log`` (the exponential parameterization keeps ``|lambda| < 1`` for any value),
``gamma_log`` (``gamma = exp(gamma_log)``), ``B`` and ``C`` (real ``(..., 2)`` tensors: real, imaginary).

**Init** (the paper's):

- *Ring*: ``|lambda|`` uniform on the area of the ring ``r_min <= |lambda| <= r_max`` of the complex plane, i.e.
  ``|lambda|^2 ~ U(r_min^2, r_max^2)``: ``nu_log = log(-1/2 log(u (r_max^2 - r_min^2) + r_min^2))``, ``u ~ U(0, 1)``;
  phase ``arg lambda ~ U(0, max_phase)``: ``theta_log = log(max_phase u')``.
- *Normalization*: ``gamma = sqrt(1 - |lambda|^2)``, so that white noise in gives states of the input's variance
  (``E|x|^2 = gamma^2 / (1 - |lambda|^2) E|Bu|^2``); ``gamma_log`` is then trained.
- *Glorot-like*: ``Re B, Im B ~ N(0, 1/(2H))``, ``Re C, Im C ~ N(0, 1/m)``; ``D ~ N(0, 1)``.

**State size.** As for every :class:`~ptdssm.layers.lti.LTISSM`, ``d_state`` is the order of the real state matrix:
the ``m = d_state / 2`` complex states with a real readout ``Re(C x)`` are a real system of order ``2m`` (the
paper's ``N`` is ``m``). ``d_state`` must be even.

**As an LTI layer.** ``lambda = exp(dt Lambda)`` with ``dt = 1`` and ``Lambda = -e^nu + i e^theta``: the LRU is the
zero-order-hold discretization, at unit step (the sequence index is the time unit), of the continuous diagonal system
with eigenvalues ``Lambda``. So :meth:`LRU.eigenvalues` returns ``Lambda = log lambda`` (the continuous eigenvalues,
as for S4D/S5; ``exp`` of them gives :meth:`LRU.discrete_eigenvalues`), and :meth:`LRU.step_sizes` returns ones: there
is no learned step, the layer's time unit is one sample. The noise hooks and transfer plots then place
frequencies in radians per sample.

**Optimizer hints**: ``nu_log``, ``theta_log``, ``gamma_log`` and ``B`` carry ``{"lr": lr, "weight_decay": 0}``
(the paper trains the recurrent parameters at a reduced rate, without weight decay); ``C`` and ``D`` are ordinary.

**Parallel form**: :func:`ptdssm.kernels.lru.lru_forward` (one real GEMM in, the project's chunked diagonal scan,
one real GEMM out), tested against the step-by-step :func:`~ptdssm.kernels.lru.lru_forward_ref`.
``bidirectional=True`` adds a reverse-time recurrence with the same ``lambda``, ``gamma B`` and its own ``C`` (no step
mode). Step mode: the state is ``(B, m)`` complex; :meth:`~LRU.prefill` is closed form (the scan's state at
``lengths - 1``).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_positive_int
from ..kernels.lru import lru_forward
from .lti import MIMODiagonalSSM

__all__ = ["LRU"]


def _check_radii(r_min: float, r_max: float, max_phase: float) -> tuple[float, float, float]:
    r_min, r_max, max_phase = float(r_min), float(r_max), float(max_phase)
    if not 0.0 <= r_min < 1.0:
        raise ValueError(f"r_min must be in [0, 1), got {r_min}")
    if not 0.0 < r_max < 1.0:
        raise ValueError(f"r_max must be in (0, 1) (|lambda| < 1 for a stable recurrence), got {r_max}")
    if r_min >= r_max:
        raise ValueError(f"r_min={r_min} must be < r_max={r_max}")
    if not 0.0 < max_phase <= 2 * math.pi:
        raise ValueError(f"max_phase must be in (0, 2 pi], got {max_phase}")
    return r_min, r_max, max_phase


class LRU(MIMODiagonalSSM):
    """Linear Recurrent Unit: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths, init and conventions).

    Args:
        d_model: channels ``H``.
        d_state: order of the real state matrix, even (``m = d_state / 2`` complex states).
        r_min, r_max: radii of the init ring, ``0 <= r_min < r_max < 1``.
        max_phase: largest initial phase ``arg lambda``, in ``(0, 2 pi]``.
        bidirectional: add a reverse-time recurrence with its own ``C``; no step mode.
        dropout: output dropout.
        freeze_A: register ``nu_log``/``theta_log`` as buffers (not trained).
        freeze_B: register ``B``/``gamma_log`` as buffers.
        lr: learning-rate hint for ``nu_log``, ``theta_log``, ``gamma_log``, ``B`` (``None``: ``ssm_lr``).
        D: include the skip ``D u``.
        scan: ``"chunked"`` (default) or ``"fft"`` (see :mod:`ptdssm.kernels.scan`).
        validate: check inputs for NaN/inf.

    :meth:`eigenvalues` has shape ``(m,)``; :meth:`step_sizes` is ones ``(H,)``.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, r_min: float = 0.9, r_max: float = 0.999,
                 max_phase: float = 2 * math.pi, bidirectional: bool = False, dropout: float = 0.0,
                 freeze_A: bool = False, freeze_B: bool = False, lr: float | None = None, D: bool = True,
                 scan: str = "chunked", validate: bool = True) -> None:
        super().__init__(d_model, bidirectional=bidirectional, dropout=dropout, freeze_A=freeze_A,
                         freeze_B=freeze_B, lr=lr, D=D, validate=validate)
        self.d_state = check_positive_int("d_state", d_state, minimum=2)
        if self.d_state % 2:
            raise ValueError(f"d_state must be even (two real dimensions per complex state), got {d_state}")
        self.r_min, self.r_max, self.max_phase = _check_radii(r_min, r_max, max_phase)
        self.scan = check_choice("scan", scan, ("chunked", "fft"))
        m = self.n_modes = self.d_state // 2
        H = self.d_model
        f64 = torch.float64
        u1, u2 = torch.rand(m, dtype=f64), torch.rand(m, dtype=f64)
        r2 = u1 * (self.r_max ** 2 - self.r_min ** 2) + self.r_min ** 2  # |lambda|^2, uniform on the ring's area
        r2 = r2.clamp(min=1e-12)  # r_min = 0 and u1 = 0: keep nu finite
        nu_log = torch.log(-0.5 * torch.log(r2))
        theta_log = torch.log(self.max_phase * u2.clamp(min=1e-12))
        self._register("nu_log", nu_log, trainable=not freeze_A)
        self._register("theta_log", theta_log, trainable=not freeze_A)
        self._register("gamma_log", 0.5 * torch.log1p(-r2), trainable=not freeze_B)  # log sqrt(1 - |lambda|^2)
        B = torch.complex(torch.randn(m, H, dtype=f64), torch.randn(m, H, dtype=f64)) / math.sqrt(2 * H)
        self._register_complex("B", B, trainable=not freeze_B)
        ch = 2 if self.bidirectional else 1
        C = torch.complex(torch.randn(ch, H, m, dtype=f64), torch.randn(ch, H, m, dtype=f64)) / math.sqrt(m)
        self._register_complex("C", C, ssm=False)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, n_modes={self.n_modes}, r=[{self.r_min}, "
                f"{self.r_max}], max_phase={self.max_phase:.4g}, bidirectional={self.bidirectional}")

    # ------------------------------------------------------------------ LTI view
    def compute_dtype(self) -> torch.dtype:
        return torch.float64 if self.nu_log.dtype == torch.float64 else torch.float32

    def _lambda(self) -> torch.Tensor:
        """``Lambda = log lambda = -exp(nu_log) + i exp(theta_log)`` ``(m,)`` in the compute dtype."""
        rd = self.compute_dtype()
        return torch.complex(-torch.exp(self.nu_log.to(rd)), torch.exp(self.theta_log.to(rd)))

    def discrete_eigenvalues(self) -> torch.Tensor:
        """``lambda = exp(-exp(nu_log) + i exp(theta_log))`` ``(m,)``, complex, detached."""
        return torch.exp(self._lambda()).detach()

    def step_sizes(self) -> torch.Tensor:
        """Ones ``(H,)``: the LRU has no step size; its time unit is one sample (module docstring)."""
        return torch.ones(self.d_model, dtype=self.compute_dtype(), device=self._device())

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log lambda (m,), gamma B (m, H), C (ch, H, m))`` in the compute dtype."""
        rd = self.compute_dtype()
        Bn = torch.exp(self.gamma_log.to(rd))[:, None] * self._complex(self.B.to(rd))
        return self._lambda(), Bn, self._complex(self.C.to(rd))

    # ------------------------------------------------------------------ parallel mode
    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return lru_forward(u, *self._discrete(), self._skip(u), self.bidirectional, self.scan)  # type: ignore[return-value]

    def _prefill(self, u: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One parallel pass; the state is the scan's state at ``lengths - 1`` (inputs are zero at the pads)."""
        self.setup_step()  # refuses bidirectional; the cache serves the steps that follow
        y, x = lru_forward(u, *self._discrete(), self._skip(u), False, self.scan, return_states=True)
        Bsz, L = u.shape[:2]
        last = torch.full((Bsz,), L - 1, device=u.device) if lengths is None else lengths.to(u.device).long() - 1
        return y, x[torch.arange(Bsz, device=u.device), last]

