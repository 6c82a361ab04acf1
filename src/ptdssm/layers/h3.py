r"""H3 (Fu, Dao et al. 2023, "Hungry Hungry Hippos: Towards Language Modeling with State Space Models"):
``(B, L, H) -> (B, L, H)``.

With ``h`` heads of ``d = H / h`` channels (``n_heads``; the default ``h = H``, ``d = 1``, is the paper's
experiments' and safari's default), per position ``t``:

.. math::
    q, k, v &= W_q u + b_q,\; W_k u + b_k,\; W_v u + b_v \qquad (\text{one } \texttt{in\_proj},\ H \to 3H),\\
    \tilde k &= \mathrm{SSM}_{shift}(k) + D_k \odot k, \qquad
        \mathrm{SSM}_{shift}(k)_t = \sum_{l=0}^{N-1} C^{shift}_l\, k_{t-l},\\
    S^{(i)}_t &= \tilde k^{(i)}_t \, (v^{(i)}_t)^\top \in \mathbb{R}^{d \times d}
        \quad\text{(per head } i\text{; } d = 1 \text{: } \tilde k \odot v),\\
    Y^{(i)} &= \mathrm{SSM}_{diag}^{(i)}(S^{(i)}) + D_i\, S^{(i)}
        \quad\text{(one diagonal SSM per head, on each of the } d^2 \text{ entries)},\\
    o^{(i)}_t &= (q^{(i)}_t)^\top Y^{(i)}_t \in \mathbb{R}^{d}, \qquad \text{out}_t = W_o\, o_t + b_o.

So the state of head ``i`` is ``sum_s K_{t-s} k_s v_s^T``, the outer-product ("linear attention") form of the paper.

- **Shift SSM**: ``A`` the shift matrix, ``B = e_1``, ``C^{shift} (H, N)`` learned (kaiming-uniform): its kernel *is*
  ``C^{shift}``, a causal FIR of length ``N = d_state`` (:func:`ptdssm.kernels.shift.shift_ssm_kernel`); step mode
  is an exact shift register of the last ``N`` keys.
- **Diagonal SSM**: :class:`~ptdssm.layers.ssm_kernel.DiagSSMKernel` (``n_heads`` channels, the S4D kernel
  :func:`~ptdssm.kernels.vandermonde.s4d_kernel`), any init of the registry: ``s4d-lin`` by default (safari's H3
  config: S4D-Lin), ``s4d-legs``, ``s4d-inv``, ``s4d-real`` or ``ptd`` (S4-PTD). Its ``Lambda``, ``B``, ``dt`` carry
  the SSM optimizer hint (``lr``; safari trains them at ``min(1e-3, lr)``).
- **Forward**: two causal FFT convolutions in ``(B, L, H)`` layout
  (:func:`~ptdssm.kernels.fftconv.fft_conv_blh`, each ``D`` folded into the lag-0 tap); with ``d > 1`` the second
  one runs on ``h d^2`` channels.
- **Step mode** (exact): the state is ``(shift register (B, H, N) real, diagonal state (B, h, d, d, m) complex)``;
  one step shifts the register, reads ``C^{shift}`` off it, forms ``k~ v^T`` and advances the diagonal recurrence
  ``x <- lambda_bar x + S``, ``Y = Re(c x) + D S``. The discrete system is rebuilt from the parameters at every step
  (``h m`` exponentials), so nothing goes stale after an optimizer step or a cast. :meth:`prefill` runs the steps.
- **Padding**: all maps are causal, so pads (zeroed by :class:`~ptdssm.layers.mixer.SequenceMixer`) never reach a
  real position.

Parameters: ``in_proj (3H, H)`` (rows ``[W_q; W_k; W_v]``: safari's ``q_proj``, ``k_proj``, ``v_proj`` stacked),
``shift_C (H, N)``, ``shift_D (H,)``, ``ssm.*`` (the diagonal kernel), ``D (h,)``, ``out_proj (H, H)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_positive_int
from ..kernels.fftconv import fft_conv_blh
from ..kernels.shift import shift_ssm_kernel
from ._proj import linear as _linear
from .mixer import SequenceMixer
from .ssm_kernel import DiagSSMKernel

__all__ = ["H3"]


class H3(SequenceMixer):
    """H3 mixer: ``(B, L, H) -> (B, L, H)`` (module docstring for the maths).

    Args:
        d_model: channels ``H``.
        d_state: order ``N`` of the diagonal SSM (its ``N/2`` complex modes with conjugate symmetry) and the
            length of the shift SSM's FIR.
        n_heads: heads ``h`` (must divide ``d_model``); ``None``: ``d_model`` heads of dimension 1.
        init: the diagonal SSM's init (``s4d-lin``, ``s4d-legs``, ``s4d-inv``, ``s4d-real``, ``ptd``).
        conj_sym: keep one mode per conjugate pair (default: the init's).
        dt_min, dt_max: log-uniform range of the diagonal SSM's initial step sizes.
        disc: ``"zoh"`` or ``"bilinear"``.
        lr: learning-rate hint of the diagonal SSM's ``Lambda``, ``B``, ``dt`` (``None``: the helper's ``ssm_lr``).
        init_kwargs: extra options of the init (e.g. PTD ``gamma``).
        bias: biases in ``in_proj`` and ``out_proj``.
        dropout: output dropout.
        validate: check inputs for NaN/inf.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, n_heads: int | None = None, init: str = "s4d-lin",
                 conj_sym: bool | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1, disc: str = "zoh",
                 lr: float | None = None, init_kwargs: dict[str, Any] | None = None, bias: bool = True,
                 dropout: float = 0.0, validate: bool = True) -> None:
        super().__init__(d_model, dropout=dropout, validate=validate)
        H = self.d_model
        self.d_state = N = check_positive_int("d_state", d_state)
        self.n_heads = H if n_heads is None else check_positive_int("n_heads", n_heads)
        if H % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={H}")
        self.head_dim = H // self.n_heads
        self.in_proj = nn.Linear(H, 3 * H, bias=bool(bias))
        bound = 1.0 / math.sqrt(N)  # kaiming-uniform (a = sqrt 5) of an (H, N) matrix, as safari's shift C
        self.shift_C = nn.Parameter(torch.empty(H, N).uniform_(-bound, bound))
        self.shift_D = nn.Parameter(torch.randn(H))
        self.ssm = DiagSSMKernel(self.n_heads, N, init=init, conj_sym=conj_sym, dt_min=dt_min, dt_max=dt_max,
                                 disc=disc, lr=lr, init_kwargs=init_kwargs)
        self.D = nn.Parameter(torch.randn(self.n_heads))
        self.out_proj = nn.Linear(H, H, bias=bool(bias))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, n_heads={self.n_heads}, head_dim={self.head_dim}"

    # ------------------------------------------------------------------ parallel mode
    def _forward(self, u: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        Bsz, L, H = u.shape
        h, d = self.n_heads, self.head_dim
        q, k, v = _linear(u, self.in_proj).split(H, dim=-1)
        k = fft_conv_blh(k, shift_ssm_kernel(self.shift_C.to(u.dtype)), D=self.shift_D.to(u.dtype))
        K, D = self.ssm(L).to(u.dtype), self.D.to(u.dtype)
        if d == 1:
            o = q * fft_conv_blh(k * v, K, D=D)
        else:  # per head the d x d outer products k~ v^T, each entry filtered by the head's SSM
            S = (k.view(Bsz, L, h, d, 1) * v.view(Bsz, L, h, 1, d)).reshape(Bsz, L, h * d * d)
            Y = fft_conv_blh(S, K.repeat_interleave(d * d, 0), D=D.repeat_interleave(d * d))
            # o_j = sum_i q_i Y_ij (a multiply-reduce: einsum's batched 1 x d matmuls were ~1.5x slower on CPU)
            o = (q.view(Bsz, L, h, d, 1) * Y.view(Bsz, L, h, d, d)).sum(-2).reshape(Bsz, L, H)
        return _linear(o, self.out_proj)

    # ------------------------------------------------------------------ step mode
    def _state_shapes(self, batch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return ((batch, self.d_model, self.d_state),
                (batch, self.n_heads, self.head_dim, self.head_dim, self.ssm.n_modes))

    def _init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        dt = self.compute_dtype()
        cdt = torch.complex128 if dt == torch.float64 else torch.complex64
        s1, s2 = self._state_shapes(batch)
        dev = self.shift_C.device
        return torch.zeros(s1, dtype=dt, device=dev), torch.zeros(s2, dtype=cdt, device=dev)

    def _step(self, u_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        Bsz, H = u_t.shape
        h, d = self.n_heads, self.head_dim
        shapes = self._state_shapes(Bsz)
        if not (isinstance(state, (tuple, list)) and len(state) == 2 and all(isinstance(s, torch.Tensor) for s in state)
                and tuple(state[0].shape) == shapes[0] and tuple(state[1].shape) == shapes[1]):
            raise ValueError(f"state must be (shift register {shapes[0]}, diagonal state {shapes[1]}); "
                             "use init_state(batch)")
        dtype = u_t.dtype
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        reg, x = state[0].to(dtype), state[1].to(cdt)  # a state made before .double() too
        q, k, v = _linear(u_t, self.in_proj).split(H, dim=-1)
        reg = torch.cat([k[..., None], reg[..., :-1]], dim=-1)  # reg[..., l] = k_{t-l}
        k = (reg * self.shift_C.to(dtype)).sum(-1) + self.shift_D.to(dtype) * k
        S = k.view(Bsz, h, d, 1) * v.view(Bsz, h, 1, d)
        z, c = self.ssm.discrete()
        z, c = z.to(cdt).view(h, 1, 1, -1), c.to(cdt).view(h, 1, 1, -1)
        x = z * x + S[..., None].to(cdt)
        Y = (c * x).sum(-1).real + self.D.to(dtype).view(h, 1, 1) * S
        o = torch.einsum("bhi,bhij->bhj", q.view(Bsz, h, d), Y).reshape(Bsz, H)
        return _linear(o, self.out_proj), (reg, x)
