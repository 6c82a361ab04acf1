r"""The two PTD solvers behind :func:`~ptdssm.theory.ptd.perturb_then_diagonalize` (float64, CPU, one thread).

**Free solver** (the paper's objective, :func:`optimize_free`): Adam on the entries of ``E``,

.. math:: \Phi(E) = \kappa(V(E)) + \gamma \|E\|_2/\|A\|_2 + \mu \sum_k \max(0, \operatorname{Re}\lambda_k + \delta)^2,

differentiating through ``torch.linalg.eig(A + E)``; the smooth surrogate ``||V^{-1}||_F`` replaces ``kappa`` in the
first half of the iterations. The eigenvalues are whatever ``eig`` gives: some may be real.

**Spectral solver** (:func:`optimize_spectral`): Adam on the decomposition itself. With ``k`` conjugate pairs and
``r`` real eigenvalues,

.. math:: V = [W, \bar W, U], \quad \Lambda = \operatorname{diag}(\mu, \bar\mu, \rho), \quad
          A + E = \operatorname{Re}(V \Lambda V^{-1}),

``W`` complex ``(n, k)``, ``U`` real ``(n, r)`` (columns normalized), and after every step
``Re mu <= -delta``, ``Im mu >= delta_im``, ``rho <= -delta`` are enforced by projection, so the eigenvalue
structure (how many pairs, how many real) is a *constraint* and never changes, and no derivative of ``eig`` (with its
``1/(lambda_i - lambda_j)`` terms) is needed. It minimizes

.. math:: \kappa(V) + \gamma \|E\|_2/\|A\|_2 + \rho\, R(E)
          + 10 \max(0, \kappa - 15)^2 + 10^4 \max(0, \|E\|_2/\|A\|_2 - 0.08)^2,

``R`` the response error of :mod:`ptdssm.theory.response` (``rho = 0`` for the paper's objective), its gradient the
analytic ``grad_E R`` chained through ``E(W, mu, U, rho)``. It starts from the free solution: with ``pairs=True``
its real eigenvalues are merged two by two (sorted, neighbours paired) into ``(r_1 + r_2)/2 +- i delta_im`` with
eigenvectors ``v_1 +- i v_2``, so every eigenvalue of the result is a non-real conjugate pair (for an odd ``n`` all
but one: the leftmost real eigenvalue stays real). The 2-norms are tracked
by warm-started power iterations (exact values are recomputed for the diagnostics), the response's frequency grid is
:func:`~ptdssm.theory.response.response_grid` plus the current ``|Im mu_k|`` (refreshed every 10 steps), ``rho``
ramps up over the first 20% of the steps, and the step size follows a cosine.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch

from .response import RESPONSE_POWER, response_error_torch, response_grid, state_response_torch

__all__ = ["optimize_free", "optimize_spectral", "spectral_start", "torch_single_thread"]

STABILITY_MARGIN = 0.5  # delta: every eigenvalue keeps Re <= -1/2, the real part of the LegS normal part
MIN_IMAG = 0.5  # delta_im: the smallest |Im| of a conjugate pair of the spectral solver
_SURROGATE_FRACTION = 0.5
_STABILITY_WEIGHT = 10.0
_KAPPA_CAP, _SIZE_CAP = 15.0, 0.08
_RAMP_FRACTION = 0.2
_REFRESH = 10
_SPECTRAL_LR = 0.01
_EIGENVALUE_LR = 0.3


@contextlib.contextmanager
def torch_single_thread() -> Iterator[None]:
    """Small dense eig/svd are fastest on one thread, and one thread makes the iterates bitwise reproducible.

    A layer built under ``torch.device("meta")`` or ``"cuda"`` still gets its PTD from this float64 CPU computation:
    the solvers create their tensors on the CPU explicitly, and a ``torch.device("cpu")`` context is entered only
    when the default device is another one (its per-op dispatch costs about 10% here)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = torch.get_default_device().type == "cpu"
    try:
        with contextlib.nullcontext() if cpu else torch.device("cpu"):
            yield
    finally:
        torch.set_num_threads(old)


def _bar(progress: bool, total: int, desc: str):  # noqa: ANN202 - tqdm or None
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def optimize_free(A: np.ndarray, gamma: float, seed: int, max_iter: int, lr: float,
                  progress: bool) -> tuple[np.ndarray, int]:
    """Adam on the entries of ``E`` for the paper's objective; the best ``E`` seen (among stable iterates if any)
    and the iteration count. ``lr`` is relative to the typical entry size ``||A||_2 / n``."""
    n = A.shape[0]
    norm_A = float(np.linalg.norm(A, 2))
    scale = norm_A / n  # typical entry size of a perturbation with ||E|| ~ ||A||
    At = torch.from_numpy(A)
    gen = torch.Generator().manual_seed(seed)
    E = (0.01 * scale * torch.rand(n, n, generator=gen, dtype=torch.float64, device="cpu")).requires_grad_()
    opt = torch.optim.Adam([E], lr=lr * scale)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_iter, eta_min=0.01 * lr * scale)
    best, best_val = E.detach().clone(), float("inf")
    bar = _bar(progress, max_iter, f"PTD n={n}")
    it = 0
    surrogate_iters = int(_SURROGATE_FRACTION * max_iter)
    for it in range(1, max_iter + 1):
        w, V = torch.linalg.eig(At + E)
        V = V / torch.linalg.vector_norm(V, dim=0, keepdim=True)
        kappa = (lambda s: s[0] / s[-1])(torch.linalg.svdvals(V))
        size = torch.linalg.matrix_norm(E, 2) / norm_A
        unstable = torch.relu(w.real + STABILITY_MARGIN).pow(2).sum()
        # First phase: the smooth surrogate ||V^-1||_F (>= kappa_2 / sqrt(n) for unit columns) gives steady
        # gradients far from the optimum; second phase: kappa_2 itself, whose gradient is only one singular pair.
        cond = torch.linalg.matrix_norm(torch.linalg.inv(V), "fro") if it <= surrogate_iters else kappa
        loss = cond + gamma * size + _STABILITY_WEIGHT * unstable
        val = float(kappa.detach() + gamma * size.detach()) if float(w.real.max().detach()) < 0 else float("inf")
        if val < best_val:
            best_val, best = val, E.detach().clone()
        if not np.isfinite(float(loss.detach())):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not np.isfinite(best_val):  # no stable iterate: hand back the last one, the stability fix handles it
        best = E.detach().clone()
    return best.numpy().copy(), it


def spectral_start(A: np.ndarray, E: np.ndarray, pairs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """``(W (n, k), mu (k,), U (n, r), rho (r,))`` of ``A + E``: one eigenvector per conjugate pair (``Im > 0``) and
    the real ones; with ``pairs`` the real eigenpairs are merged two by two, all but one for an odd count (module
    docstring)."""
    lam, V = np.linalg.eig(A + E)
    lam, V = lam.astype(np.complex128), V.astype(np.complex128)
    tol = 1e-9 * max(1.0, float(np.abs(lam).max()))
    real = np.flatnonzero(np.abs(lam.imag) <= tol)
    real = real[np.argsort(lam.real[real], kind="stable")]
    upper = np.flatnonzero(lam.imag > tol)
    W, mu = [V[:, upper]], [lam[upper]]
    U, rho = V[:, real].real, lam.real[real]
    if pairs:  # with an odd n one real eigenvalue must stay: the leftmost (least seen by the response)
        keep = real.size % 2
        v1, v2 = U[:, keep::2], U[:, keep + 1::2]
        W.append(v1 + 1j * v2)
        mu.append(0.5 * (rho[keep::2] + rho[keep + 1::2]) + 1j * MIN_IMAG)
        U, rho = U[:, :keep], rho[:keep]
    W_all = np.concatenate(W, axis=1)
    return W_all / np.linalg.norm(W_all, axis=0), np.concatenate(mu), U / np.linalg.norm(U, axis=0), rho


class _SpectralNorm:
    """``||X||_2`` by power iteration warm-started from the previous call's vector; differentiable in ``X``
    (``u^H X v`` with the singular vectors held fixed)."""

    def __init__(self, steps: int = 2) -> None:
        self.steps, self.v = steps, None

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        Xd = X.detach()
        v = torch.ones(X.shape[1], dtype=X.dtype, device=X.device) if self.v is None else self.v
        for _ in range(self.steps if self.v is not None else 30):
            u = Xd @ v
            u = u / torch.linalg.vector_norm(u)
            v = Xd.conj().T @ u
            v = v / torch.linalg.vector_norm(v)
        self.v = v
        u = Xd @ v
        u = u / torch.linalg.vector_norm(u)
        return (u.conj() @ X @ v).real


def _assemble(W: torch.Tensor, mu: torch.Tensor, U: torch.Tensor, rho: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(eigenvalues, V (unit columns), V^{-1}, A + E = Re(V Lambda V^{-1}))``."""
    V = torch.cat([W, W.conj(), U.to(W.dtype)], dim=1)
    V = V / torch.linalg.vector_norm(V, dim=0, keepdim=True)
    lam = torch.cat([mu, mu.conj(), rho.to(mu.dtype)])
    V_inv = torch.linalg.inv(V)
    return lam, V, V_inv, ((V * lam) @ V_inv).real


def _project(mu: torch.Tensor, rho: torch.Tensor) -> None:
    with torch.no_grad():
        mu.copy_(torch.complex(mu.real.clamp(max=-STABILITY_MARGIN), mu.imag.clamp(min=MIN_IMAG)))
        rho.clamp_(max=-STABILITY_MARGIN)


class _ResponseTerm:
    """``R(E)`` and ``grad_E R`` on the fixed grid plus the pole frequencies ``|Im mu_k|`` (refreshed every
    :data:`_REFRESH` calls; the references ``x_A`` there come from triangular or LU solves)."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor) -> None:
        self.A, self.B = A, B
        self.w_fixed = torch.from_numpy(response_grid(A.numpy()))
        self.X_fixed = state_response_torch(A, B, self.w_fixed)
        self.calls, self.w, self.X0 = 0, self.w_fixed, self.X_fixed

    def __call__(self, lam: torch.Tensor, V: torch.Tensor, V_inv: torch.Tensor, k: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.calls % _REFRESH == 0 and k:
            w_poles = lam[:k].imag.detach().abs()
            self.w = torch.cat([self.w_fixed, w_poles])
            self.X0 = torch.cat([self.X_fixed, state_response_torch(self.A, self.B, w_poles)], dim=1)
        self.calls += 1
        return response_error_torch(lam.detach(), V.detach(), V_inv.detach(), self.B, self.w, self.X0,
                                    RESPONSE_POWER)


def optimize_spectral(A: np.ndarray, B: np.ndarray, E0: np.ndarray, *, gamma: float, weight: float, pairs: bool,
                      max_iter: int, progress: bool) -> tuple[np.ndarray, int, dict]:
    """Adam on ``(W, mu, U, rho)`` from the decomposition of ``A + E0`` (module docstring): the ``E`` of the best
    iterate for ``kappa + gamma ||E||/||A|| + weight R``, the iteration count and the best iterate's
    ``{"kappa", "relative_perturbation", "response_error"}`` (power-iteration estimates)."""
    n = A.shape[0]
    At, Bt = torch.from_numpy(A), torch.from_numpy(B)
    norm_A = float(np.linalg.norm(A, 2))
    W0, mu0, U0, rho0 = spectral_start(A, E0, pairs)
    W, mu = torch.from_numpy(W0).requires_grad_(), torch.from_numpy(mu0).requires_grad_()
    U, rho = torch.from_numpy(U0).requires_grad_(), torch.from_numpy(rho0).requires_grad_()
    _project(mu, rho)
    lr = _SPECTRAL_LR
    opt = torch.optim.Adam([{"params": [W, U], "lr": lr / math.sqrt(n)},
                            {"params": [mu, rho], "lr": _EIGENVALUE_LR * lr * norm_A / n}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_iter, eta_min=0.0)
    response = _ResponseTerm(At, Bt) if weight > 0 else None
    norm_V, norm_V_inv, norm_E = _SpectralNorm(), _SpectralNorm(), _SpectralNorm()
    best_E, best_val, best = E0, float("inf"), {}
    bar = _bar(progress, max_iter, f"PTD spectral n={n}")
    for it in range(1, max_iter + 1):
        lam, V, V_inv, M = _assemble(W, mu, U, rho)
        kappa = norm_V(V) * norm_V_inv(V_inv)
        size = norm_E(M - At) / norm_A
        loss = kappa + gamma * size + 10.0 * torch.relu(kappa - _KAPPA_CAP) ** 2 \
            + 1e4 * torch.relu(size - _SIZE_CAP) ** 2
        R = torch.zeros((), dtype=torch.float64, device="cpu")
        if response is not None:
            R, grad_R = response(lam, V, V_inv, W.shape[1])
            loss = loss + weight * min(1.0, it / max(1.0, _RAMP_FRACTION * max_iter)) * (grad_R * M).sum()
        val = float(kappa.detach()) + gamma * float(size.detach()) + weight * float(R)
        if val < best_val:
            best_val, best_E = val, (M.detach() - At).numpy().copy()
            best = {"kappa": float(kappa.detach()), "relative_perturbation": float(size.detach()),
                    "response_error": float(R), "iteration": it}
        if not math.isfinite(val):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        _project(mu, rho)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return best_E, it, best
