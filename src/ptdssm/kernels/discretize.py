r"""Discretization of continuous-time linear systems ``x' = A x + B u`` with step ``dt``.

Diagonal systems (``A = diag(Lambda)``), elementwise:

- ZOH: ``Lambda_bar = exp(dt Lambda)``, ``B_bar = (exp(dt Lambda) - 1) / Lambda * B``;
- bilinear: ``Lambda_bar = (1 + dt Lambda/2) / (1 - dt Lambda/2)``, ``B_bar = dt / (1 - dt Lambda/2) * B``.

:func:`discretize_diag` returns ``log(Lambda_bar)`` rather than ``Lambda_bar`` because every consumer needs powers
``Lambda_bar^l = exp(l log Lambda_bar)``; for ZOH the log is exactly ``dt Lambda`` (no ``log`` call).
Dense systems (S4's DPLR matrix written out, ``(..., N, N)``) go through :func:`discretize_dense`; DPLR ones through
:func:`discretize_dplr` (Woodbury, no dense solve). :func:`discretize_ref` is the plain definition every one of
them is tested against (augmented matrix exponential for ZOH, explicit inverse for bilinear).
"""

from __future__ import annotations

import torch

__all__ = ["discretize_diag", "discretize_dense", "discretize_dplr", "conj_pair_to_real", "discretize_ref",
           "DISCRETIZATIONS"]

DISCRETIZATIONS = ("zoh", "bilinear")


def discretize_diag(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Discretize a diagonal system.

    Args:
        Lambda: ``(..., m)`` complex continuous eigenvalues (``Re < 0``).
        dt: real step sizes broadcastable against ``Lambda`` (e.g. ``(H, 1)`` per channel or ``(m,)`` per state).
        method: ``"zoh"`` or ``"bilinear"``.

    Returns:
        ``(log_Lambda_bar, gamma)``, both complex and broadcast to ``Lambda``'s shape, with
        ``Lambda_bar = exp(log_Lambda_bar)`` and ``B_bar = gamma * B``.
    """
    dtL = Lambda * dt
    if method == "zoh":
        return dtL, _expm1(dtL) / Lambda
    if method == "bilinear":
        den = 1.0 - dtL / 2.0
        return torch.log((1.0 + dtL / 2.0) / den), dt / den
    raise ValueError(f"unknown disc {method!r}; expected one of: {', '.join(DISCRETIZATIONS)}")


def _expm1(z: torch.Tensor) -> torch.Tensor:
    """``exp(z) - 1`` for complex ``z`` without cancellation at small ``|z|`` (torch has no complex ``expm1``).

    ``exp(a + ib) - 1 = expm1(a) cos b - 2 sin^2(b/2) + i e^a sin b``; the naive form loses ``eps/|z|`` relative,
    i.e. 1e-4 at ``dt Lambda ~ 5e-4`` in fp32, which is inside the usual ``dt`` range.
    """
    if not z.is_complex():
        return torch.expm1(z)
    a, b = z.real, z.imag
    re = torch.expm1(a) * torch.cos(b) - 2.0 * torch.sin(b / 2.0) ** 2
    return torch.complex(re, torch.exp(a) * torch.sin(b))


def discretize_dense(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor,
                     method: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Discretize a dense system.

    Args:
        A: ``(..., N, N)`` state matrices (real or complex).
        B: ``(..., N)`` input vectors.
        dt: ``(...)`` real step sizes.
        method: ``"bilinear"`` (``A_bar = (I - dt A/2)^-1 (I + dt A/2)``, ``B_bar = (I - dt A/2)^-1 dt B``) or
            ``"zoh"`` (``A_bar = expm(dt A)``, ``B_bar = A^-1 (A_bar - I) B``).

    Returns:
        ``(A_bar (..., N, N), B_bar (..., N))``.
    """
    n = A.shape[-1]
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    dtA = A * dt[..., None, None]
    if method == "bilinear":
        lhs = eye - dtA / 2.0
        rhs = torch.cat([eye + dtA / 2.0, (B * dt[..., None])[..., None].to(A.dtype)], dim=-1)
        sol = torch.linalg.solve(lhs, rhs)
        return sol[..., :n], sol[..., n]
    if method == "zoh":
        Abar = torch.linalg.matrix_exp(dtA)
        Bbar = torch.linalg.solve(A, ((Abar - eye) @ B[..., None].to(A.dtype)))[..., 0]
        return Abar, Bbar
    raise ValueError(f"unknown disc {method!r}; expected one of: {', '.join(DISCRETIZATIONS)}")


def discretize_dplr(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor,
                    conj_sym: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Bilinear discretization of ``A = diag(Lambda) - U U^H`` (``U = P^T``, rank ``r``) without a dense solve.

    ``M = I - dt A/2 = diag(1 - dt Lambda/2) + (dt/2) U U^H`` is inverted by Woodbury,
    ``M^-1 = D^-1 - D^-1 U (2/dt I + U^H D^-1 U)^-1 U^H D^-1``, then ``A_bar = 2 M^-1 - I`` and
    ``B_bar = dt M^-1 B``: ``O(H N^2 r)`` work instead of a batched LU (which costs ~0.5 s at H=256, N=64 on CPU).

    Args:
        Lambda: ``(H, m)`` complex; P: ``(H, r, m)`` complex; B: ``(H, m)`` complex; dt: ``(H,)`` real.
        conj_sym: append the conjugate modes (``N = 2m``).

    Returns:
        ``(A_bar (H, N, N), B_bar (H, N))`` complex.
    """
    if conj_sym:
        Lambda = torch.cat([Lambda, Lambda.conj()], dim=-1)
        P = torch.cat([P, P.conj()], dim=-1)
        B = torch.cat([B, B.conj()], dim=-1)
    dt_ = dt[:, None]
    dinv = 1.0 / (1.0 - dt_ * Lambda / 2.0)  # (H, N)
    U = P.transpose(-1, -2)  # (H, N, r)
    DU = dinv[..., None] * U  # D^-1 U
    r = U.shape[-1]
    small = (2.0 / dt)[:, None, None] * torch.eye(r, dtype=U.dtype, device=U.device) + U.conj().transpose(-1, -2) @ DU
    if r == 1:
        sinv = 1.0 / small
    elif r == 2:  # explicit 2x2 inverse: batched LU on tiny matrices is slow on CPU
        a, b, c, d = small[:, 0, 0], small[:, 0, 1], small[:, 1, 0], small[:, 1, 1]
        det = a * d - b * c
        sinv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det[:, None, None]
    else:
        sinv = torch.linalg.inv(small)
    UhD = U.conj().transpose(-1, -2) * dinv[..., None, :]  # U^H D^-1 (D is complex, not Hermitian)
    Minv = torch.diag_embed(dinv) - DU @ sinv @ UhD
    eye = torch.eye(Minv.shape[-1], dtype=Minv.dtype, device=Minv.device)
    return 2.0 * Minv - eye, dt_ * (Minv @ B[..., None])[..., 0]


def conj_pair_to_real(Abar: torch.Tensor, Bbar: torch.Tensor,
                      C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Rewrite a conjugate-symmetric system on ``[x; conj(x)]`` (``m`` kept modes) in coordinates ``[Re x; Im x]``.

    With ``A_bar = [[A11, A12], [conj(A12), conj(A11)]]``, ``S = A11 + A12`` and ``D = A11 - A12``:
    ``A_r = [[Re S, -Im D], [Im S, Re D]]``, ``B_r = [Re b; Im b]`` and ``C_r = [2 Re c, -2 Im c]`` give the same
    (real) output ``C_full x_full = 2 Re(c x)``. Real GEMMs need a quarter of the flops of complex ones and no
    conjugate copies in backward.

    Args:
        Abar: ``(H, 2m, 2m)`` complex; Bbar: ``(H, 2m)`` complex; C: ``(S, H, m)`` complex (kept modes).

    Returns:
        ``(A_r (H, 2m, 2m), B_r (H, 2m), C_r (S, H, 2m))`` real.
    """
    m = Abar.shape[-1] // 2
    A11, A12 = Abar[..., :m, :m], Abar[..., :m, m:]
    S, D = A11 + A12, A11 - A12
    A_r = torch.cat([torch.cat([S.real, -D.imag], -1), torch.cat([S.imag, D.real], -1)], -2)
    b = Bbar[..., :m]
    return A_r, torch.cat([b.real, b.imag], -1), torch.cat([2.0 * C.real, -2.0 * C.imag], -1)


def discretize_ref(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor,
                   method: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Plain definition of every discretization here, on dense matrices.

    ZOH from one matrix exponential of the augmented system (no ``A^-1``, valid for singular ``A``):

    .. math:: \exp\left(dt \begin{bmatrix} A & B \\ 0 & 0 \end{bmatrix}\right)
              = \begin{bmatrix} \bar A & \bar B \\ 0 & 1 \end{bmatrix},\qquad
              \bar A = e^{dt A},\ \bar B = \int_0^{dt} e^{sA} ds\, B.

    Bilinear with an explicit inverse: ``A_bar = inv(I - dt A/2) (I + dt A/2)``, ``B_bar = inv(I - dt A/2) dt B``.
    A diagonal system is ``A = diag(Lambda)``; a DPLR one is :func:`~ptdssm.kernels.cauchy.dplr_dense`.

    Args:
        A: ``(..., N, N)``; B: ``(..., N)``; dt: ``(...)`` real.

    Returns:
        ``(A_bar (..., N, N), B_bar (..., N))``.
    """
    n = A.shape[-1]
    cdt = torch.promote_types(A.dtype, B.dtype)
    A, B = A.to(cdt), B.to(cdt)
    dt_ = dt.to(cdt)[..., None, None]
    if method == "zoh":
        aug = torch.zeros(*A.shape[:-2], n + 1, n + 1, dtype=cdt, device=A.device)
        aug[..., :n, :n] = A
        aug[..., :n, n] = B
        E = torch.linalg.matrix_exp(dt_ * aug)
        return E[..., :n, :n], E[..., :n, n]
    if method == "bilinear":
        eye = torch.eye(n, dtype=cdt, device=A.device)
        Minv = torch.linalg.inv(eye - dt_ * A / 2.0)
        return Minv @ (eye + dt_ * A / 2.0), (Minv @ (dt_[..., 0] * B)[..., None])[..., 0]
    raise ValueError(f"unknown disc {method!r}; expected one of: {', '.join(DISCRETIZATIONS)}")
