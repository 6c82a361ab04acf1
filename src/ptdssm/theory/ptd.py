r"""Perturb-then-diagonalize (PTD): a well-conditioned eigendecomposition of a nearby matrix.

A non-normal matrix such as HiPPO-LegS ``A_H`` has an exponentially ill-conditioned eigenvector matrix, so its
diagonalization is ill-posed. PTD instead finds a small real perturbation ``E`` such that

.. math:: A + E = \tilde V \tilde\Lambda \tilde V^{-1}, \qquad \kappa(\tilde V) \text{ small},

which makes the decomposition backward stable with backward error ``||E||``. Two objectives are offered
(``objective=``), both minimized by Adam (:mod:`ptdssm.theory.ptd_solvers`):

- ``"paper"``: the paper's

  .. math:: \Phi(E) = \kappa(\tilde V(E)) + \gamma \, \|E\|_2 / \|A\|_2
            + \mu \sum_k \max(0, \operatorname{Re}\lambda_k + \delta)^2,

  ``||E||`` relative to ``||A||_2`` so that ``gamma`` means the same for every ``n``; the last term keeps the
  eigenvalues at least ``delta = 1/2`` left of the imaginary axis (the real part of the LegS normal part that S4D
  and S5 use; poles closer to the axis make ``G_PTD`` spike).
- ``"response"``: the paper's terms plus ``rho R(E)``, the relative error of the state response
  ``x(iw) = (iw - A - E)^{-1} B`` against ``(iw - A)^{-1} B`` on a frequency grid from ``w = 0`` to beyond the
  largest ``|Im lambda|`` (:mod:`ptdssm.theory.response`; ``rho = response_weight``, default
  :data:`DEFAULT_RESPONSE_WEIGHT`). Every trained output ``C`` sees ``G(iw) = C x(iw)``: the paper's objective asks
  for a small ``||E||`` but not for a small change of ``x``, and its ``G_PTD`` is off by ``O(||E||)`` at low
  frequency. This one is solved in the eigen-coordinates ``(V, Lambda)``, warm-started from the paper's solution.

``pairs=True`` constrains every eigenvalue to be a non-real conjugate pair (``Im lambda >= 1/2``; for an odd ``n`` one
is necessarily real), so that layers keep ``n/2`` modes with conjugate symmetry as S4D and S5 do (with
``pairs=False`` some eigenvalues may be real and layers keep all ``n``). The columns of ``V`` have unit 2-norm and
``V^{-1}`` is the true inverse. The final decomposition is recomputed from ``A + E`` in float64 NumPy, so the result
depends only on the inputs (and is cached on disk, keyed by all of them: :func:`ptd_cache_dir`).

Stability is enforced afterwards as well (``stability="reflect"``: ``Re lambda <- -|Re lambda|``; ``"clip"``:
``Re lambda <- min(Re lambda, -1e-4)``). If that moves an eigenvalue, ``E`` is updated to
``Re(V Lambda V^{-1}) - A`` so that ``V Lambda V^{-1} = A + E`` always holds for the returned arrays.

``method="random"`` is the baseline of the paper: a Gaussian ``E`` scaled to ``||E||_2 = epsilon ||A||_2``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_choice, check_finite_array, check_positive_float, check_positive_int, check_square_matrix
from .hippo import hippo_legs

__all__ = ["DEFAULT_RESPONSE_WEIGHT", "OBJECTIVES", "PTDResult", "check_ptd_options", "decomposition_diagnostics",
           "perturb_then_diagonalize", "ptd_cache_dir", "random_perturbation"]

# Bump when the algorithm changes, so that stale cache entries are never reused.
_ALGORITHM_VERSION = 4
OBJECTIVES = ("paper", "response")
DEFAULT_GAMMA = 100.0
DEFAULT_MAX_ITER = 2000  # the paper's objective (free solver)
DEFAULT_SPECTRAL_ITER = 8000  # the response objective and pairs=True (spectral solver)
DEFAULT_RESPONSE_WEIGHT = 1000.0
CLIP_MARGIN = 1e-4


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
            ``real_eigenvalues`` (how many are real), ``response_error`` (``R(E)`` of :mod:`ptdssm.theory.response` on
            its fixed grid with ``B`` the response input), ``stability_moved`` (eigenvalues moved by the stability
            fix), ``iterations``, ``seconds`` (CPU seconds of this process), ``method``, ``objective``, ``pairs``,
            ``gamma``, ``response_weight`` (response objective), ``seed``, ``stability``, ``version``, ``cached``.
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
        "real_eigenvalues": int(np.count_nonzero(eigenvalues.imag == 0)),
    }


def ptd_cache_dir() -> Path:
    """Where decompositions are cached: ``$PTDSSM_CACHE_DIR`` or ``~/.cache/ptdssm``, subfolder ``ptd``."""
    root = os.environ.get("PTDSSM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ptdssm")
    return Path(root) / "ptd"


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


def _check_inputs(A: np.ndarray | None, n: int | None, B: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)``: HiPPO-LegS of size ``n`` by default, else the given real square ``A`` (and ``B``, default
    ``sqrt(2i + 1)``, HiPPO-LegS's ``B_H``)."""
    if A is None:
        if n is None:
            raise ValueError("n is required when A is not given")
        A, B_H = hippo_legs(check_positive_int("n", n))
    else:
        A = check_square_matrix("A", A)
        if np.iscomplexobj(A):
            raise ValueError("A must be real (PTD keeps conjugate pairs with a real perturbation)")
        if n is not None and check_positive_int("n", n) != A.shape[0]:
            raise ValueError(f"n={n} does not match A of shape {A.shape}")
        B_H = np.sqrt(2.0 * np.arange(A.shape[0]) + 1.0)
    if B is None:
        return A, B_H
    B = check_finite_array("B", B, ndim=1)
    if B.shape != (A.shape[0],) or np.iscomplexobj(B):
        raise ValueError(f"B must be a real vector of shape ({A.shape[0]},), got {B.dtype} {B.shape}")
    return A, B.astype(np.float64)


def _solve(A: np.ndarray, B: np.ndarray, params: dict, cache: bool, progress: bool) -> tuple[np.ndarray, int]:
    """``(E, iterations)`` for the checked ``params`` (see :func:`perturb_then_diagonalize`)."""
    from .ptd_solvers import optimize_free, optimize_spectral, torch_single_thread

    if params["method"] == "random":
        return random_perturbation(A, params["epsilon"], params["seed"]), 0
    with torch_single_thread():
        if params["objective"] == "paper" and not params["pairs"]:
            return optimize_free(A, params["gamma"], params["seed"], params["max_iter"], params["lr"], progress)
        start = perturb_then_diagonalize(A, gamma=params["gamma"], seed=params["seed"], lr=params["lr"],
                                         stability=params["stability"], cache=cache, progress=progress)
        weight = params.get("response_weight", 0.0)
        E, iterations, _ = optimize_spectral(A, B, start.E, gamma=params["gamma"], weight=weight,
                                             pairs=params["pairs"], max_iter=params["max_iter"], progress=progress)
        return E, iterations + start.diagnostics["iterations"]


def _params(A: np.ndarray, B: np.ndarray, method: str, objective: str, pairs: bool, response_weight: float,
            gamma: float, epsilon: float, seed: int, stability: str, max_iter: int | None, lr: float) -> dict:
    """The checked options as the JSON-ready dict that keys the cache (every input that changes the result)."""
    check_choice("method", method, ("optimized", "random"))
    check_choice("objective", objective, OBJECTIVES)
    check_choice("stability", stability, ("reflect", "clip"))
    if not isinstance(pairs, (bool, np.bool_)):
        raise ValueError(f"pairs must be True or False, got {pairs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    params: dict = {"version": _ALGORITHM_VERSION, "method": method, "seed": int(seed), "stability": stability}
    if method == "random":
        if objective != "paper" or pairs:
            raise ValueError("objective='response' and pairs=True need method='optimized'")
        return {**params, "epsilon": check_positive_float("epsilon", epsilon)}
    spectral = objective == "response" or bool(pairs)
    default_iter = DEFAULT_SPECTRAL_ITER if spectral else DEFAULT_MAX_ITER
    params.update(objective=objective, pairs=bool(pairs), gamma=check_positive_float("gamma", gamma),
                  lr=check_positive_float("lr", lr),
                  max_iter=default_iter if max_iter is None else check_positive_int("max_iter", max_iter))
    if objective == "response":
        params["response_weight"] = check_positive_float("response_weight", response_weight)
        params["B"] = hashlib.sha256(np.ascontiguousarray(B).tobytes()).hexdigest()[:16]
    return params


def check_ptd_options(n: int, **kwargs: object) -> dict:
    """Check the options of :func:`perturb_then_diagonalize` for HiPPO-LegS of size ``n`` without solving anything
    (``ValueError`` naming the bad one); returns them as the cache-key dict."""
    names = ("method", "objective", "pairs", "response_weight", "gamma", "epsilon", "seed", "stability", "max_iter",
             "lr")
    extra = sorted(set(kwargs) - set(names) - {"B", "cache", "progress"})
    if extra:
        raise ValueError(f"unknown PTD option(s) {', '.join(extra)}; expected some of {', '.join(names)}")
    A, B = _check_inputs(None, n, kwargs.get("B"))  # type: ignore[arg-type]
    defaults = {k: p.default for k, p in inspect.signature(perturb_then_diagonalize).parameters.items()}
    return _params(A, B, *({**defaults, **kwargs}[k] for k in names))


def perturb_then_diagonalize(
    A: np.ndarray | None = None,
    *,
    n: int | None = None,
    method: str = "optimized",
    objective: str = "paper",
    pairs: bool = False,
    response_weight: float = DEFAULT_RESPONSE_WEIGHT,
    B: np.ndarray | None = None,
    gamma: float = DEFAULT_GAMMA,
    epsilon: float = 0.03,
    seed: int = 0,
    stability: str = "reflect",
    max_iter: int | None = None,
    lr: float = 0.02,
    cache: bool = True,
    progress: bool = False,
) -> PTDResult:
    r"""Diagonalize ``A + E`` with a well-conditioned eigenvector matrix.

    Args:
        A: ``(n, n)`` real matrix; default HiPPO-LegS of size ``n``.
        n: size of the default HiPPO-LegS matrix (ignored when ``A`` is given, except that it must match).
        method: ``"optimized"`` (minimize the objective) or ``"random"`` (Gaussian ``E`` with
            ``||E||_2 = epsilon ||A||_2``, the baseline).
        objective: ``"paper"`` (``kappa(V) + gamma ||E||_2 / ||A||_2``) or ``"response"`` (plus
            ``response_weight * R(E)``, the relative state-response error; module docstring).
        pairs: constrain every eigenvalue to a non-real conjugate pair (for an odd ``n``, all but one real one).
        response_weight: ``rho``, weight of ``R(E)`` with ``objective="response"`` (> 0).
        B: ``(n,)`` input vector of the response term; default ``sqrt(2i + 1)`` (HiPPO-LegS's ``B_H``).
        gamma: weight of the perturbation size in the objective (> 0). Larger gives smaller ``E``, larger kappa.
        epsilon: relative 2-norm of the random perturbation (> 0); used by ``method="random"`` only.
        seed: seeds the initial (optimized) or the whole (random) perturbation.
        stability: ``"reflect"`` or ``"clip"``: how eigenvalues with ``Re >= 0`` are moved into the left half-plane.
        max_iter: Adam iterations; default 2000 for the paper's objective without ``pairs``, else 8000 (of the
            spectral solver, which starts from the cached paper solution).
        lr: Adam step size of the paper-objective solver, relative to the typical entry size ``||A||_2 / n``.
        cache: read and write the on-disk cache (:func:`ptd_cache_dir`).
        progress: show a progress bar while optimizing.

    Returns:
        A :class:`PTDResult`.
    """
    A, B = _check_inputs(A, n, B)
    params = _params(A, B, method, objective, pairs, response_weight, gamma, epsilon, seed, stability, max_iter, lr)
    path = ptd_cache_dir() / f"{_cache_key(A, params)}.npz"
    if cache:
        hit = _load_cached(path)
        if hit is not None:
            return hit

    t0 = time.process_time()
    E, iterations = _solve(A, B, params, cache, progress)
    eigenvalues, V, V_inv, E, moved = _diagonalize(A, E, stability)
    diagnostics = decomposition_diagnostics(A, E, eigenvalues, V, V_inv)
    diagnostics.update(params, response_error=_response_error(A, B, eigenvalues, V, V_inv),
                       stability_moved=moved, iterations=iterations, seconds=time.process_time() - t0,
                       cached=False)
    result = PTDResult(eigenvalues, V, V_inv, E, A, diagnostics)
    if cache:
        try:
            _save_cached(path, result)
        except OSError as exc:  # a read-only home must not stop the computation
            warnings.warn(f"could not write PTD cache {path}: {exc}", stacklevel=2)
    return result


def _response_error(A: np.ndarray, B: np.ndarray, eigenvalues: np.ndarray, V: np.ndarray, V_inv: np.ndarray) -> float:
    """``R(E)`` of the decomposition on :func:`~ptdssm.theory.response.response_grid` (``p`` = RESPONSE_POWER)."""
    import torch

    from .response import response_error_torch, response_grid, state_response_torch

    t = torch.from_numpy
    w = t(response_grid(A))
    value, _ = response_error_torch(t(eigenvalues), t(V), t(V_inv), t(B), w, state_response_torch(t(A), t(B), w))
    return float(value)
