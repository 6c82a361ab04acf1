r"""State responses and the response-preserving term of the PTD objective.

The state response of ``x' = A x + B u`` to ``u = e^{i w t}`` is

.. math:: x_A(i\omega) = (i\omega I - A)^{-1} B \in \mathbb{C}^n,

the vector every output ``C`` is applied to: ``G(iw) = C x_A(iw)``. PTD replaces ``A`` by ``A + E = V Lambda V^{-1}``;
the response of the perturbed system is computed through its eigendecomposition,

.. math:: x_{A+E}(i\omega) = V \, \operatorname{diag}\big(1/(i\omega - \lambda_k)\big) \, V^{-1} B,

and its relative error on a frequency grid ``w_1..w_m`` is

.. math:: r_j = \frac{\|x_{A+E}(i\omega_j) - x_A(i\omega_j)\|_2}{\|x_A(i\omega_j)\|_2}, \qquad
          R(E) = \Big(\frac{1}{m} \sum_j r_j^{\,p}\Big)^{2/p}.

``p = 2`` is the mean squared relative error; the PTD solver uses ``p = 4`` (:data:`RESPONSE_POWER`), which weighs
the worst frequencies more, as the sup-norm targets do. With ``e_j = x_{A+E} - x_A`` and
``g_j = (i w_j - A - E)^{-H} e_j = V^{-H} \operatorname{diag}(1/\overline{(i w_j - \lambda)}) V^H e_j`` the gradient
with respect to a real ``E`` is (``d x = (i w - A - E)^{-1} dE\, x``)

.. math:: \nabla_E R = \sum_j c_j \, 2 \operatorname{Re}\big(g_j x_{A+E}(i\omega_j)^H\big) / \|x_A(i\omega_j)\|^2,
          \qquad c_j = \frac{1}{m} \Big(\frac{1}{m}\sum_k r_k^p\Big)^{2/p - 1} r_j^{\,p-2},

all of it ``O(m n^2)`` once ``V`` and ``V^{-1}`` are known (:func:`state_response_error`).
The grid (:func:`response_grid`) is ``w = 0`` plus log-spaced frequencies from ``1e-2`` to ``1.25 ||A||_2``, beyond
every ``|Im lambda|`` of ``A + E`` while ``||E||_2 <= ||A||_2 / 4``; the solver adds the current ``|Im lambda_k|``,
where the error peaks.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_finite_array, check_positive_int, check_square_matrix

__all__ = ["RESPONSE_POWER", "response_grid", "state_response", "state_response_error"]

#: ``p`` of the L^p mean over frequencies used by the PTD solver.
RESPONSE_POWER = 4.0
_GRID_LOW = 1e-2
_GRID_TOP = 1.25


def response_grid(A: np.ndarray, points: int = 97) -> np.ndarray:
    """``(points,)`` frequencies: ``0`` and ``points - 1`` log-spaced ones from ``1e-2`` to ``1.25 ||A||_2``."""
    A = check_square_matrix("A", A)
    points = check_positive_int("points", points, minimum=2)
    top = max(_GRID_TOP * float(np.linalg.norm(A, 2)), 10 * _GRID_LOW)
    return np.concatenate([[0.0], np.logspace(math.log10(_GRID_LOW), math.log10(top), points - 1)])


def _is_lower_triangular(A: torch.Tensor) -> bool:
    return bool(torch.count_nonzero(torch.triu(A, 1)) == 0)


def state_response_torch(A: torch.Tensor, B: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``(n, m)`` complex128 columns ``(i w_j I - A)^{-1} B`` by LU (or forward substitution if ``A`` is lower
    triangular, as HiPPO-LegS is); backward stable whatever the conditioning of ``A``'s eigenvectors."""
    n = A.shape[0]
    eye = torch.eye(n, dtype=torch.complex128, device=A.device)
    M = 1j * w.to(torch.complex128)[:, None, None] * eye - A.to(torch.complex128)
    rhs = B.to(torch.complex128).expand(w.shape[0], n)[..., None]
    if _is_lower_triangular(A):
        X = torch.linalg.solve_triangular(M, rhs, upper=False)
    else:
        X = torch.linalg.solve(M, rhs)
    return X[..., 0].T


def state_response(A: np.ndarray, B: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x_A(iw) = (iw I - A)^{-1} B`` for real ``A`` ``(n, n)``, ``B`` ``(n,)`` and frequencies ``w`` ``(m,)``:
    ``(n, m)`` complex128 (dense solves)."""
    A = check_square_matrix("A", A)
    B = check_finite_array("B", B, ndim=1)
    if B.shape[0] != A.shape[0]:
        raise ValueError(f"B must have shape ({A.shape[0]},), got {B.shape}")
    w = check_finite_array("w", w, ndim=1).astype(np.float64)
    return state_response_torch(torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(w)).numpy()


def response_error_torch(eigenvalues: torch.Tensor, V: torch.Tensor, V_inv: torch.Tensor, B: torch.Tensor,
                         w: torch.Tensor, X0: torch.Tensor, power: float = RESPONSE_POWER
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R, grad_E R)`` (module docstring) from a decomposition ``A + E = V diag(eigenvalues) V^{-1}``.

    Shapes: ``eigenvalues`` ``(n,)``, ``V``/``V_inv`` ``(n, n)``, ``B`` ``(n,)``, ``w`` ``(m,)``, ``X0`` ``(n, m)`` the
    reference responses ``x_A``. Returns a float64 scalar and an ``(n, n)`` float64 gradient (no autograd).
    """
    D = 1.0 / (1j * w.to(torch.complex128)[None, :] - eigenvalues[:, None])  # (n, m)
    X = V @ (D * (V_inv @ B.to(torch.complex128))[:, None])  # responses of A + E
    err = X - X0
    inv_ref = 1.0 / (X0.abs() ** 2).sum(0)  # 1 / ||x_A||^2
    r2 = (err.abs() ** 2).sum(0) * inv_ref  # r_j^2
    m = r2.shape[0]
    mean_p = (r2 ** (power / 2)).mean()
    value = mean_p ** (2.0 / power)
    coef = mean_p ** (2.0 / power - 1.0) * r2 ** (power / 2 - 1.0) / m  # c_j
    G = V_inv.conj().T @ (D.conj() * (V.conj().T @ (err * (2.0 * coef * inv_ref)[None, :])))
    return value, (G @ X.conj().T).real


def state_response_error(A: np.ndarray, E: np.ndarray, w: np.ndarray, B: np.ndarray | None = None, *,
                         power: float = RESPONSE_POWER) -> tuple[float, np.ndarray]:
    """``R(E)`` and its analytic gradient ``(n, n)`` for a real ``A`` and perturbation ``E`` (module docstring).

    ``A + E`` is diagonalized with ``numpy.linalg.eig`` (it must be diagonalizable); ``B`` defaults to HiPPO-LegS's
    ``B_H = sqrt(2i + 1)``; ``w`` are the frequencies ``(m,)``.
    """
    A = check_square_matrix("A", A)
    E = check_square_matrix("E", E)
    if E.shape != A.shape or np.iscomplexobj(A) or np.iscomplexobj(E):
        raise ValueError(f"E must be a real matrix of A's shape {A.shape}, got {E.shape}")
    n = A.shape[0]
    B = np.sqrt(2.0 * np.arange(n) + 1.0) if B is None else check_finite_array("B", B, ndim=1).astype(np.float64)
    if B.shape != (n,):
        raise ValueError(f"B must have shape ({n},), got {B.shape}")
    w = check_finite_array("w", w, ndim=1).astype(np.float64)
    lam, V = np.linalg.eig(A + E)
    t = torch.from_numpy
    Vt = t(V.astype(np.complex128))
    X0 = state_response_torch(t(A), t(B), t(w))
    value, grad = response_error_torch(t(lam.astype(np.complex128)), Vt, torch.linalg.inv(Vt), t(B), t(w), X0,
                                       power)
    return float(value), grad.numpy()
