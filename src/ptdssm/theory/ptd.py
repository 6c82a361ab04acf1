r"""Perturb-then-diagonalize (PTD): a well-conditioned eigendecomposition of a nearby matrix.

A non-normal matrix such as HiPPO-LegS ``A_H`` has an exponentially ill-conditioned eigenvector matrix, so its
diagonalization is ill-posed. PTD instead finds a small real perturbation ``E`` such that

.. math:: A + E = \tilde V \tilde\Lambda \tilde V^{-1}, \qquad \kappa(\tilde V) \text{ small},

which makes the decomposition backward stable with backward error ``||E||``. ``E`` is found by minimizing

.. math:: \Phi(E) = \kappa(\tilde V(E)) + \gamma \, \|E\|_2 / \|A\|_2
          + \mu \sum_k \max(0, \operatorname{Re}\lambda_k + \delta)^2

with Adam (cosine-decayed step), differentiating through the eigendecomposition (``torch.linalg.eig``). The norm of
``E`` is taken relative to ``||A||_2`` so that ``gamma`` means the same thing for every ``n``; the last term keeps
the eigenvalues at least ``delta = 1/2`` left of the imaginary axis (the real part of the LegS normal part that
S4D and S5 use; poles closer to the axis make ``G_PTD`` spike). During the first half of the iterations
``kappa`` is replaced by the smooth surrogate ``||V^{-1}||_F``, whose gradient involves every singular pair (that of
``kappa_2`` involves only the extreme two and makes Adam wander); the returned iterate is the best one for the true
objective. The columns of ``V`` have unit 2-norm and
``V^{-1}`` is the true inverse. The best iterate is returned and the final decomposition is recomputed in float64
NumPy, so the result depends only on the inputs (and is cached on disk, keyed by all of them).

Stability is enforced afterwards as well (``stability="reflect"``: ``Re lambda <- -|Re lambda|``; ``"clip"``:
``Re lambda <- min(Re lambda, -1e-4)``). If that moves an eigenvalue, ``E`` is updated to
``Re(V Lambda V^{-1}) - A`` so that ``V Lambda V^{-1} = A + E`` always holds for the returned arrays.

``method="random"`` is the baseline of the paper: a Gaussian ``E`` scaled to ``||E||_2 = epsilon ||A||_2``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_choice, check_positive_float, check_positive_int, check_square_matrix
from .hippo import hippo_legs

__all__ = ["PTDResult", "decomposition_diagnostics", "perturb_then_diagonalize", "ptd_cache_dir", "random_perturbation"]

# Bump when the algorithm changes, so that stale cache entries are never reused.
_ALGORITHM_VERSION = 3
DEFAULT_GAMMA = 100.0
DEFAULT_MAX_ITER = 2000
CLIP_MARGIN = 1e-4
_STABILITY_MARGIN = 0.5
_SURROGATE_FRACTION = 0.5
_STABILITY_WEIGHT = 10.0


@dataclass(frozen=True)
class PTDResult:
    """An eigendecomposition ``A + E = V diag(eigenvalues) V^{-1}`` with its diagnostics.

    Attributes:
        eigenvalues: ``(n,)`` complex128, ``Lambda``; conjugate pairs are adjacent (NumPy's ``eig`` order).
        V: ``(n, n)`` complex128 eigenvectors with unit 2-norm columns.
        V_inv: ``(n, n)`` complex128, the inverse of ``V``.
        E: ``(n, n)`` float64 perturbation.
        A: ``(n, n)`` float64 matrix that was diagonalized.
        diagnostics: ``kappa`` (2-norm condition number of ``V``), ``relative_perturbation``
            (``||E||_2 / ||A||_2``), ``backward_error`` (``||V Lambda V^{-1} - A||_2 / ||A||_2``),
            ``reconstruction_error`` (``||V Lambda V^{-1} - (A + E)||_2 / ||A||_2``), ``max_real`` (max Re lambda),
            ``stability_moved`` (eigenvalues moved by the stability fix), ``iterations``, ``seconds``, ``method``,
            ``gamma``, ``seed``, ``stability``, ``cached``.
    """

    eigenvalues: np.ndarray
    V: np.ndarray
    V_inv: np.ndarray
    E: np.ndarray
    A: np.ndarray
    diagnostics: dict

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    @property
    def kappa(self) -> float:
        return float(self.diagnostics["kappa"])

    @property
    def relative_perturbation(self) -> float:
        return float(self.diagnostics["relative_perturbation"])


def decomposition_diagnostics(A: np.ndarray, E: np.ndarray, eigenvalues: np.ndarray, V: np.ndarray,
                              V_inv: np.ndarray) -> dict:
    """Diagnostics of ``V diag(eigenvalues) V^{-1}`` as a decomposition of ``A + E`` (float64, 2-norms)."""
    norm_A = np.linalg.norm(A, 2)
    recon = (V * eigenvalues) @ V_inv
    s = np.linalg.svd(V, compute_uv=False)
    return {
        "n": int(A.shape[0]),
        "kappa": float(s[0] / s[-1]),
        "relative_perturbation": float(np.linalg.norm(E, 2) / norm_A),
        "backward_error": float(np.linalg.norm(recon - A, 2) / norm_A),
        "reconstruction_error": float(np.linalg.norm(recon - (A + E), 2) / norm_A),
        "max_real": float(np.max(eigenvalues.real)),
    }


def ptd_cache_dir() -> Path:
    """Where decompositions are cached: ``$PTDSSM_CACHE_DIR`` or ``~/.cache/ptdssm``, subfolder ``ptd``."""
    root = os.environ.get("PTDSSM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ptdssm")
    return Path(root) / "ptd"


@contextlib.contextmanager
def _torch_single_thread() -> Iterator[None]:
    # Small dense eig/svd are fastest on one thread, and one thread makes the iterates bitwise reproducible.
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _optimize_perturbation(A: np.ndarray, gamma: float, seed: int, max_iter: int, lr: float,
                           progress: bool) -> tuple[np.ndarray, int]:
    """Adam on ``Phi(E)``; returns the best ``E`` seen (among stable iterates if any) and the iteration count.

    Runs on the CPU whatever the caller's default device is (a layer built under ``torch.device("meta")`` or
    ``"cuda"`` still gets its PTD from this float64 CPU computation)."""
    import torch

    with torch.device("cpu"):
        return _optimize_perturbation_cpu(A, gamma, seed, max_iter, lr, progress)


def _optimize_perturbation_cpu(A: np.ndarray, gamma: float, seed: int, max_iter: int, lr: float,
                               progress: bool) -> tuple[np.ndarray, int]:
    import torch

    n = A.shape[0]
    norm_A = float(np.linalg.norm(A, 2))
    scale = norm_A / n  # typical entry size of a perturbation with ||E|| ~ ||A||
    At = torch.from_numpy(A)
    gen = torch.Generator().manual_seed(seed)
    E = (0.01 * scale * torch.rand(n, n, generator=gen, dtype=torch.float64)).requires_grad_()
    opt = torch.optim.Adam([E], lr=lr * scale)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_iter, eta_min=0.01 * lr * scale)
    best, best_val = E.detach().clone(), float("inf")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc=f"PTD n={n}", leave=False)
    it = 0
    surrogate_iters = int(_SURROGATE_FRACTION * max_iter)
    for it in range(1, max_iter + 1):
        w, V = torch.linalg.eig(At + E)
        V = V / torch.linalg.vector_norm(V, dim=0, keepdim=True)
        s = torch.linalg.svdvals(V)
        kappa = s[0] / s[-1]
        size = torch.linalg.matrix_norm(E, 2) / norm_A
        unstable = torch.relu(w.real + _STABILITY_MARGIN).pow(2).sum()
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
            if it % 50 == 0:
                bar.set_postfix(kappa=f"{float(kappa):.2f}", E=f"{float(size):.3f}")
    if bar is not None:
        bar.close()
    if not np.isfinite(best_val):  # no stable iterate: hand back the last one, the stability fix handles it
        best = E.detach().clone()
    return best.numpy().copy(), it


def random_perturbation(A: np.ndarray, epsilon: float, seed: int) -> np.ndarray:
    """Gaussian ``E`` of the shape of ``A`` scaled to ``||E||_2 = epsilon ||A||_2`` (the paper's random baseline)."""
    G = np.random.default_rng(seed).standard_normal(A.shape)
    return G * (epsilon * np.linalg.norm(A, 2) / np.linalg.norm(G, 2))


def _enforce_stability(eigenvalues: np.ndarray, stability: str) -> np.ndarray:
    re = eigenvalues.real
    if stability == "reflect":
        re = -np.abs(re)
    elif stability == "clip":
        re = np.minimum(re, -CLIP_MARGIN)
    return re + 1j * eigenvalues.imag


def _diagonalize(A: np.ndarray, E: np.ndarray, stability: str) -> tuple[np.ndarray, ...]:
    eigenvalues, V = np.linalg.eig(A + E)
    # NumPy returns real arrays when every eigenvalue is real (e.g. small n): the contract is complex128.
    eigenvalues, V = eigenvalues.astype(np.complex128), V.astype(np.complex128)
    V = V / np.linalg.norm(V, axis=0, keepdims=True)
    V_inv = np.linalg.inv(V)
    fixed = _enforce_stability(eigenvalues, stability)
    moved = int(np.count_nonzero(fixed != eigenvalues))
    if moved:
        # Keep V Lambda V^-1 = A + E exact for the returned arrays. Reflection and clipping keep conjugate pairs,
        # so the imaginary part is rounding only.
        E = ((V * fixed) @ V_inv).real - A
    return fixed, V, V_inv, E, moved


def _cache_key(A: np.ndarray, params: dict) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(A, dtype=np.float64).tobytes())
    h.update(str(A.shape).encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _load_cached(path: Path) -> PTDResult | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            diagnostics = json.loads(str(f["diagnostics"]))
            return PTDResult(f["eigenvalues"], f["V"], f["V_inv"], f["E"], f["A"], {**diagnostics, "cached": True})
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: recompute and overwrite it
        warnings.warn(f"ignoring unreadable PTD cache file {path}: {exc}", stacklevel=3)
        return None


def _save_cached(path: Path, result: PTDResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, eigenvalues=result.eigenvalues, V=result.V, V_inv=result.V_inv, E=result.E, A=result.A,
                     diagnostics=json.dumps(result.diagnostics))
        os.replace(tmp, path)  # atomic: readers never see a half-written file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def perturb_then_diagonalize(
    A: np.ndarray | None = None,
    *,
    n: int | None = None,
    method: str = "optimized",
    gamma: float = DEFAULT_GAMMA,
    epsilon: float = 0.03,
    seed: int = 0,
    stability: str = "reflect",
    max_iter: int = DEFAULT_MAX_ITER,
    lr: float = 0.02,
    cache: bool = True,
    progress: bool = False,
) -> PTDResult:
    r"""Diagonalize ``A + E`` with a well-conditioned eigenvector matrix.

    Args:
        A: ``(n, n)`` real matrix; default HiPPO-LegS of size ``n``.
        n: size of the default HiPPO-LegS matrix (ignored when ``A`` is given, except that it must match).
        method: ``"optimized"`` (minimize ``kappa(V) + gamma ||E||_2 / ||A||_2``) or ``"random"`` (Gaussian ``E``
            with ``||E||_2 = epsilon ||A||_2``, the baseline).
        gamma: weight of the perturbation size in the objective (> 0). Larger gives smaller ``E``, larger kappa.
        epsilon: relative 2-norm of the random perturbation (> 0); used by ``method="random"`` only.
        seed: seeds the initial (optimized) or the whole (random) perturbation.
        stability: ``"reflect"`` or ``"clip"``: how eigenvalues with ``Re >= 0`` are moved into the left half-plane.
        max_iter: Adam iterations.
        lr: Adam step size, relative to the typical entry size ``||A||_2 / n``.
        cache: read and write the on-disk cache (:func:`ptd_cache_dir`).
        progress: show a progress bar while optimizing.

    Returns:
        A :class:`PTDResult`.
    """
    if A is None:
        if n is None:
            raise ValueError("n is required when A is not given")
        A, _ = hippo_legs(check_positive_int("n", n))
    else:
        A = check_square_matrix("A", A)
        if np.iscomplexobj(A):
            raise ValueError("A must be real (PTD keeps conjugate pairs with a real perturbation)")
        if n is not None and check_positive_int("n", n) != A.shape[0]:
            raise ValueError(f"n={n} does not match A of shape {A.shape}")
    check_choice("method", method, ("optimized", "random"))
    check_choice("stability", stability, ("reflect", "clip"))
    gamma = check_positive_float("gamma", gamma)
    epsilon = check_positive_float("epsilon", epsilon)
    lr = check_positive_float("lr", lr)
    max_iter = check_positive_int("max_iter", max_iter)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)

    params = {"version": _ALGORITHM_VERSION, "method": method, "seed": seed, "stability": stability}
    if method == "optimized":
        params.update(gamma=gamma, max_iter=max_iter, lr=lr)
    else:
        params.update(epsilon=epsilon)
    path = ptd_cache_dir() / f"{_cache_key(A, params)}.npz"
    if cache:
        hit = _load_cached(path)
        if hit is not None:
            return hit

    t0 = time.perf_counter()
    if method == "optimized":
        with _torch_single_thread():
            E, iterations = _optimize_perturbation(A, gamma, seed, max_iter, lr, progress)
    else:
        E, iterations = random_perturbation(A, epsilon, seed), 0
    eigenvalues, V, V_inv, E, moved = _diagonalize(A, E, stability)
    diagnostics = decomposition_diagnostics(A, E, eigenvalues, V, V_inv)
    diagnostics.update(params, stability_moved=moved, iterations=iterations,
                       seconds=time.perf_counter() - t0, cached=False)
    result = PTDResult(eigenvalues, V, V_inv, E, A, diagnostics)
    if cache:
        try:
            _save_cached(path, result)
        except OSError as exc:  # a read-only home must not stop the computation
            warnings.warn(f"could not write PTD cache {path}: {exc}", stacklevel=2)
    return result

