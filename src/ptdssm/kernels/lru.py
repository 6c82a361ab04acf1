r"""The Linear Recurrent Unit's sequence map (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"): a complex diagonal recurrence with normalized complex input and output matrices.

.. math:: x_k = \lambda \odot x_{k-1} + \gamma \odot (B u_k),\qquad y_k = \operatorname{Re}(C x_k) + D \odot u_k,
          \qquad x_{-1} = 0,

with ``m`` complex states, ``lambda = exp(log_lambda) (m,)``, ``gamma (m,)``, ``B (m, H)``, ``C (H, m)`` complex and
``D (H,)`` real; here ``Bn = gamma * B`` is passed already normalized. Bidirectional: a second recurrence over the
time-reversed input with its own ``C_b``, ``y += Re(C_b x^b)`` with
``x^b_k = lambda x^b_{k+1} + Bn u_k`` (same ``lambda`` and ``Bn``).

:func:`lru_forward` is the parallel form: the input projection as one real GEMM with ``(Re, Im)`` interleaved along
the state axis (the complex view is then free), :func:`ptdssm.kernels.scan.diag_scan` over time (chunked cumulative
sums, ``O(B L m)``), and the readout as one real GEMM, ``Re(C x) = [Re x, Im x] . [Re C, -Im C]``.
:func:`lru_forward_ref` is the plain definition, one step at a time, that it is tested against.
"""

from __future__ import annotations

import torch

from .scan import diag_scan

__all__ = ["lru_forward", "lru_forward_ref", "lru_input", "lru_readout"]


def _check(u: torch.Tensor, log_lambda: torch.Tensor, Bn: torch.Tensor, C: torch.Tensor) -> None:
    m, H = Bn.shape
    if u.dim() != 3 or u.shape[-1] != H or log_lambda.shape != (m,) or C.dim() != 3 or C.shape[1:] != (H, m):
        raise ValueError(f"expected u (B, L, H), log_lambda (m,), Bn (m, H), C (ch, H, m); got {tuple(u.shape)}, "
                         f"{tuple(log_lambda.shape)}, {tuple(Bn.shape)}, {tuple(C.shape)}")


def lru_input(u: torch.Tensor, Bn: torch.Tensor) -> torch.Tensor:
    """``v = u Bn^T``: real ``u (B, L, H)``, complex ``Bn (m, H)`` -> complex ``(B, L, m)`` by one real GEMM."""
    m = Bn.shape[0]
    W = torch.stack([Bn.real, Bn.imag], dim=1).reshape(2 * m, -1)  # rows Re b_0, Im b_0, Re b_1, ...
    return torch.view_as_complex((u @ W.T.to(u.dtype)).view(*u.shape[:-1], m, 2))


def lru_readout(xs: list[torch.Tensor], C: torch.Tensor) -> torch.Tensor:
    """``sum_d Re(C_d x_d)`` for complex states ``xs[d] (B, L, m)`` and ``C (ch, H, m)``, by one real GEMM."""
    m = C.shape[-1]
    x = torch.cat([torch.view_as_real(t).reshape(*t.shape[:-1], 2 * m) for t in xs], dim=-1)
    Cw = torch.cat([torch.stack([c.real, -c.imag], dim=-1).reshape(c.shape[0], 2 * m) for c in C[: len(xs)]], -1)
    return x @ Cw.T


def lru_forward(u: torch.Tensor, log_lambda: torch.Tensor, Bn: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor | None = None, bidirectional: bool = False, scan: str = "chunked",
                return_states: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The LRU map (module docstring), parallel over time.

    Args:
        u: ``(B, L, H)`` real input (zeros at right pads make the reverse pass exact per sequence).
        log_lambda: ``(m,)`` complex, ``Re < 0``.
        Bn: ``(m, H)`` complex, ``gamma`` folded in.
        C: ``(ch, H, m)`` complex; ``ch = 2`` (causal, anti-causal) when ``bidirectional``.
        D: optional ``(H,)`` real skip.
        scan: ``"chunked"`` or ``"fft"`` (:func:`~ptdssm.kernels.scan.diag_scan`).
        return_states: also return the causal states ``x (B, L, m)``.

    Returns:
        ``y (B, L, H)`` (and ``x`` with ``return_states``).
    """
    _check(u, log_lambda, Bn, C)
    v = lru_input(u, Bn)
    xs = [diag_scan(log_lambda, v, scan)]
    if bidirectional:
        xs.append(diag_scan(log_lambda, v.flip(1), scan).flip(1))
    y = lru_readout(xs, C)
    if D is not None:
        y = y.addcmul_(u, D.to(u.dtype))
    return (y, xs[0]) if return_states else y


def lru_forward_ref(u: torch.Tensor, log_lambda: torch.Tensor, Bn: torch.Tensor, C: torch.Tensor,
                    D: torch.Tensor | None = None, bidirectional: bool = False) -> torch.Tensor:
    """Plain definition of :func:`lru_forward`: ``x_k = lambda x_{k-1} + Bn u_k`` one step at a time (and the
    reverse recurrence when ``bidirectional``), ``y_k = Re(C x_k) (+ Re(C_b x^b_k)) + D u_k``."""
    _check(u, log_lambda, Bn, C)
    lam = torch.exp(log_lambda)
    cdt = lam.dtype
    L = u.shape[1]

    def run(order: range, c: torch.Tensor) -> list[torch.Tensor]:
        x = torch.zeros(u.shape[0], lam.shape[0], dtype=cdt, device=u.device)
        ys: list[torch.Tensor] = [torch.empty(0)] * L
        for k in order:
            x = lam * x + u[:, k].to(cdt) @ Bn.T
            ys[k] = (x @ c.T).real
        return ys

    out = run(range(L), C[0])
    if bidirectional:
        back = run(range(L - 1, -1, -1), C[1])
        out = [a + b for a, b in zip(out, back, strict=True)]
    y = torch.stack(out, 1)
    return y if D is None else y + D * u
