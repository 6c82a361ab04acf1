r"""Named initializations of diagonal and DPLR state matrices (plain NumPy arrays).

Every initialization returns an :class:`SSMInit`: the continuous-time eigenvalues ``Lambda`` and what the layers
need to build ``B~`` (and ``P~`` for S4). Conventions:

- ``n`` is the size of the underlying state matrix (``d_state`` of the layers).
- ``conj_sym=True`` keeps one eigenvalue of each conjugate pair (``n/2`` modes, those with ``Im > 0``); a layer then
  takes ``2 Re(.)`` of its output, which equals the full complex sum because the dropped modes are the conjugates.
  ``conj_sym=False`` keeps all ``n`` modes and the layer takes ``Re(.)``.
- ``V`` has the kept eigenvectors as columns, ``(n, m)``; ``V_inv`` is ``(m, n)`` with ``V_inv @ V = I`` on the
  kept modes, so ``B~ = V_inv @ B`` for any real input matrix ``B`` of shape ``(n, H)``.

| name | Lambda | B~ |
|---|---|---|
| ``s4d-legs`` | eigenvalues of the LegS normal part ``A_N`` (``-1/2 + i w_k``) | ``V^H B_H`` (``V`` unitary) |
| ``s4d-lin`` | ``-1/2 + i pi k`` | ``1`` |
| ``s4d-inv`` | ``-1/2 + i (n/pi)(n/(2k+1) - 1)`` | ``1`` |
| ``s4d-real`` | ``-(k+1)``, all ``n`` real modes | ``1`` |
| ``s4-legs`` | as ``s4d-legs``, plus ``P~ = V^H P`` so that ``A = Lambda - P~ P~^H`` (DPLR) | ``V^H B_H`` |
| ``s4-legt`` | LegT (window 2, s4's): eigenvalues of the skew normal part (``Re = 0``), rank-2 ``P~`` | ``V^H B`` |
| ``s4-fout`` | FouT (window 2, s4's; S4-FouT): skew normal part (``Re = 0``), rank-1 ``P~ = V^H B`` | ``V^H B`` |
| ``s4d-legt`` | ``-1/2 + i w_k``, ``i w_k`` the eigenvalues of LegT's skew normal part | ``V^H B`` |
| ``s4d-fout`` | ``-1/2 + i pi k`` (FouT's skew part, shifted): S4D-Lin, but ``|B~_0| = 1/sqrt2`` | ``V^H B`` |
| ``s5-legs`` | ``s4d-legs`` eigenvalues of size ``n/J`` repeated on ``J`` diagonal blocks | ``V^{-1} B`` |
| ``ptd-paper`` | the ``n`` eigenvalues of ``A_H + E``, paper's objective (S4-PTD); some may be real | ``V^{-1} B_H`` |
| ``ptd-paper-pairs`` | as ``ptd-paper``, every eigenvalue a non-real conjugate pair (``n/2`` modes) | ``V^{-1} B_H`` |
| ``ptd-response`` | response-preserving objective, conjugate pairs only (``n/2`` modes) | ``V^{-1} B_H`` |
| ``ptd`` | the default PTD, :data:`DEFAULT_PTD` | ``V^{-1} B_H`` |
| ``s5-ptd``, ``s5-ptd-paper``, ... | that PTD of LegS of size ``n/J`` on ``J`` diagonal blocks (S5-PTD) | ``V^{-1}B`` |

The LegT and FouT inits (*How to Train Your HiPPO*, Gu et al. 2023) use s4's normalisation
(:func:`~ptdssm.theory.hippo.hippo_nplr`, window :data:`~ptdssm.theory.hippo.S4_WINDOW` = 2 time units, so
``2/dt`` steps). Their normal parts are skew-symmetric (``Re = 0``: all the dissipation is in the low-rank term); the
layers clip ``Re`` to ``-1e-4``, which changes ``A`` by ``1e-4 I``. The S4D variants drop the low-rank term, which
would leave undamped oscillators, so they take S4D-LegS's real part ``-1/2`` (S4D-Lin is FouT's diagonal analogue in
exactly this sense; ``s4d-fout`` differs from it only in the ``k = 0`` mode's ``B~``). FouT's skew part has the
eigenvalue 0 twice (the constant and the dead state): with conjugate symmetry those two are kept as one complex mode
with eigenvector ``(e_0 + i e_1)/sqrt2``, whose conjugate is the other.

The PTD inits are presets of :func:`~ptdssm.theory.ptd.perturb_then_diagonalize`'s ``objective`` and ``pairs``
(:data:`PTD_PRESETS`); options given to :func:`ssm_init` override them. With ``pairs`` the default is
``conj_sym=True`` (``n/2`` modes, like S4D and S5), without it ``conj_sym=False`` (all ``n``, as the paper's S4-PTD
and S5-PTD). Blocks smaller than :data:`MIN_PAIRS_SIZE` (S5-PTD with ``P/J = 2``) keep their real eigenvalues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from .._checks import check_choice, check_positive_int
from .hippo import hippo_legs, hippo_legs_nplr, hippo_nplr
from .ptd import check_ptd_options, perturb_then_diagonalize

__all__ = ["DEFAULT_PTD", "DPLR_INITS", "INITS", "MEASURE_OF_INIT", "MIN_PAIRS_SIZE", "PTD_INITS", "PTD_PRESETS",
           "SSMInit", "ptd_options", "ssm_init"]

#: Smallest (block) size at which the pairs-only presets ask for pairs: at n = 2 the two real eigenvalues -1, -2 of
#: HiPPO-LegS (kappa 3.7 with E = 0) become a conjugate pair only for ||E|| = 0.76 ||A|| (0.27 at n = 3, 0.03 at
#: n = 4), so smaller blocks keep their real eigenvalues unless ``pairs=True`` is given explicitly.
MIN_PAIRS_SIZE = 4

#: What ``ptd`` (and ``s5-ptd``) means: one of the named PTD presets below.
DEFAULT_PTD = "ptd-response"

#: ``perturb_then_diagonalize`` options of each named PTD (``ptd`` is :data:`DEFAULT_PTD`).
PTD_PRESETS: dict[str, dict[str, object]] = {
    "ptd-paper": {"objective": "paper", "pairs": False},
    "ptd-paper-pairs": {"objective": "paper", "pairs": True},
    "ptd-response": {"objective": "response", "pairs": True},
}


@dataclass(frozen=True)
class SSMInit:
    """Arrays that initialize an SSM layer (all complex128 unless noted).

    Attributes:
        name: the initialization's registry name.
        Lambda: ``(m,)`` continuous-time eigenvalues, ``Re < 0``.
        B: ``(m,)`` input vector in the eigenbasis for single-input layers (``V^{-1} B_H`` or ones).
        V: ``(n, m)`` eigenvectors (columns), or ``None`` for inits that are not a basis change (lin, inv, real).
        V_inv: ``(m, n)`` left inverse of ``V`` on the kept modes, or ``None``.
        P: ``(r, m)`` low-rank factor for DPLR inits (``A = diag(Lambda) - P^T conj(P)``), else ``None``.
        conj_sym: whether ``Lambda`` keeps one of each conjugate pair (layers then take ``2 Re``).
        blocks: number of diagonal blocks (S5's ``J``).
        diagnostics: PTD diagnostics where relevant.
    """

    name: str
    Lambda: np.ndarray
    B: np.ndarray
    V: np.ndarray | None = None
    V_inv: np.ndarray | None = None
    P: np.ndarray | None = None
    conj_sym: bool = True
    blocks: int = 1
    diagnostics: dict = field(default_factory=dict)

    @property
    def n_modes(self) -> int:
        return int(self.Lambda.shape[0])


def _normal_eig(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the LegS normal part ``A_N = -I/2 + S`` through the Hermitian ``-i S`` (unitary ``V``)."""
    A_N, _, _ = hippo_legs_nplr(n)
    mu, V = np.linalg.eigh(-1j * (A_N + 0.5 * np.eye(n)))
    return -0.5 + 1j * mu, V


def _keep_upper(Lambda: np.ndarray, conj_sym: bool, n: int) -> np.ndarray:
    """Indices of the modes to keep: all, or the ``n/2`` with ``Im > 0`` (sorted by frequency)."""
    if not conj_sym:
        return np.argsort(Lambda.imag, kind="stable")
    if n % 2:
        raise ValueError(f"n must be even with conj_sym=True, got n={n}")
    order = np.argsort(-Lambda.imag, kind="stable")[: n // 2]
    if np.any(Lambda.imag[order] <= 0):
        raise ValueError("conj_sym=True needs complex-conjugate eigenvalue pairs; this matrix has real eigenvalues")
    return order[::-1]


def _s4d_legs(n: int, conj_sym: bool) -> SSMInit:
    Lambda, V = _normal_eig(n)
    keep = _keep_upper(Lambda, conj_sym, n)
    V = V[:, keep]
    _, _, B_H = hippo_legs_nplr(n)
    return SSMInit("s4d-legs", Lambda[keep], V.conj().T @ B_H, V, V.conj().T, conj_sym=conj_sym)


def _s4_legs(n: int, conj_sym: bool) -> SSMInit:
    Lambda, V = _normal_eig(n)
    keep = _keep_upper(Lambda, conj_sym, n)
    V = V[:, keep]
    _, P, B_H = hippo_legs_nplr(n)
    Vh = V.conj().T
    return SSMInit("s4-legs", Lambda[keep], Vh @ B_H, V, Vh, P=(Vh @ P)[None, :], conj_sym=conj_sym)


def _skew_eig(S: np.ndarray, conj_sym: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs ``(i mu, V)`` of a real skew-symmetric ``S`` with unitary ``V``, the kept modes only.

    With ``conj_sym`` the ``n/2`` modes with ``mu > 0`` are kept; the null space (even dimension) is paired into
    complex vectors ``(u + i w)/sqrt2`` of real orthonormal ``u, w``, each standing for itself and its conjugate.
    """
    n = S.shape[0]
    mu, V = np.linalg.eigh(-1j * S)
    tol = 1e-9 * max(1.0, float(np.abs(mu).max(initial=0.0)))
    if not conj_sym:
        order = np.argsort(mu, kind="stable")
        return 1j * mu[order], V[:, order]
    if n % 2:
        raise ValueError(f"n must be even with conj_sym=True, got n={n}")
    pos = np.flatnonzero(mu > tol)
    null = scipy.linalg.null_space(S, rcond=tol / max(1.0, float(np.abs(S).max())))
    if null.shape[1] % 2 or pos.size + null.shape[1] // 2 != n // 2:
        raise ValueError("conj_sym=True needs the eigenvalues of the skew part in conjugate pairs")
    Z = (null[:, 0::2] + 1j * null[:, 1::2]) / np.sqrt(2.0)
    pos = pos[np.argsort(mu[pos], kind="stable")]
    return np.concatenate([np.zeros(Z.shape[1]), 1j * mu[pos]]), np.concatenate([Z, V[:, pos]], axis=1)


def _nplr_modes(measure: str, n: int, conj_sym: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Lambda (m,), V (n, m), P (r, n), B (n,))`` of the measure's NPLR form (s4's normalisation)."""
    A_N, P, B = hippo_nplr(measure, n)
    shift = float(np.mean(np.diag(A_N)))
    mu, V = _skew_eig(A_N - shift * np.eye(n), conj_sym)
    return shift + mu, V, P, B


def _s4_nplr(measure: str) -> Callable[[int, bool], SSMInit]:
    def init(n: int, conj_sym: bool) -> SSMInit:
        Lambda, V, P, B = _nplr_modes(measure, n, conj_sym)
        Vh = V.conj().T
        return SSMInit(f"s4-{measure}", Lambda, Vh @ B, V, Vh, P=P @ Vh.T, conj_sym=conj_sym)

    return init


def _s4d_nplr(measure: str) -> Callable[[int, bool], SSMInit]:
    def init(n: int, conj_sym: bool) -> SSMInit:
        Lambda, V, _, B = _nplr_modes(measure, n, conj_sym)
        Vh = V.conj().T
        return SSMInit(f"s4d-{measure}", -0.5 + 1j * Lambda.imag, Vh @ B, V, Vh, conj_sym=conj_sym)

    return init


def _s4d_lin(n: int, conj_sym: bool) -> SSMInit:
    m = n // 2 if conj_sym else n
    k = np.arange(m)
    return SSMInit("s4d-lin", -0.5 + 1j * np.pi * k, np.ones(m, complex), conj_sym=conj_sym)


def _s4d_inv(n: int, conj_sym: bool) -> SSMInit:
    m = n // 2 if conj_sym else n
    k = np.arange(m)
    return SSMInit("s4d-inv", -0.5 + 1j * (n / np.pi) * (n / (2 * k + 1) - 1), np.ones(m, complex),
                   conj_sym=conj_sym)


def _s4d_real(n: int, conj_sym: bool) -> SSMInit:
    # Real modes have no conjugate partner: all n are kept whatever conj_sym says.
    return SSMInit("s4d-real", -(np.arange(n) + 1.0) + 0j, np.ones(n, complex), conj_sym=False)


def _ptd(n: int, conj_sym: bool, name: str = "ptd", **ptd_kwargs: object) -> SSMInit:
    if _shapes_only():
        return _ptd_shapes(n, conj_sym, name, ptd_kwargs)
    res = perturb_then_diagonalize(n=n, **ptd_kwargs)  # type: ignore[arg-type]
    keep = _keep_upper(res.eigenvalues, conj_sym, n)
    _, B_H = hippo_legs(n)
    V, V_inv = res.V[:, keep], res.V_inv[keep, :]
    return SSMInit(name, res.eigenvalues[keep], V_inv @ B_H, V, V_inv, conj_sym=conj_sym,
                   diagnostics=dict(res.diagnostics))


def _shapes_only() -> bool:
    """A build on the ``meta`` device (config validation) needs the shapes, never the values."""
    import torch

    return torch.get_default_device().type == "meta"


def _ptd_shapes(n: int, conj_sym: bool, name: str, ptd_kwargs: dict) -> SSMInit:
    """What :func:`_ptd` returns, with the right shapes and dtypes but placeholder values: the options are checked,
    nothing is solved (a PTD solve costs up to minutes; a ``meta`` build has no data to put it in)."""
    check_ptd_options(n, **ptd_kwargs)
    if conj_sym and n % 2:  # the real build also refuses conj_sym=True where the solution has real eigenvalues
        raise ValueError(f"n must be even with conj_sym=True, got n={n}")
    m = n // 2 if conj_sym else n
    eye = np.eye(n, dtype=np.complex128)
    return SSMInit(name, -0.5 + 1j * np.arange(1.0, m + 1.0), np.ones(m, complex), eye[:, :m], eye[:m],
                   conj_sym=conj_sym, diagnostics={"shapes_only": True, **ptd_kwargs})


def _block(base: SSMInit, name: str, blocks: int) -> SSMInit:
    """``J`` copies of ``base`` on the diagonal: eigenvalues tiled, ``V`` and ``V^{-1}`` block diagonal."""
    assert base.V is not None and base.V_inv is not None
    return SSMInit(name, np.tile(base.Lambda, blocks), np.tile(base.B, blocks),
                   scipy.linalg.block_diag(*([base.V] * blocks)), scipy.linalg.block_diag(*([base.V_inv] * blocks)),
                   conj_sym=base.conj_sym, blocks=blocks, diagnostics=base.diagnostics)


def _block_size(n: int, blocks: int) -> int:
    blocks = check_positive_int("blocks", blocks)
    if n % blocks:
        raise ValueError(f"n={n} is not divisible by blocks={blocks}")
    return n // blocks


def _s5_legs(n: int, conj_sym: bool, blocks: int = 1) -> SSMInit:
    return _block(_s4d_legs(_block_size(n, blocks), conj_sym), "s5-legs", blocks)


def _s5_ptd(n: int, conj_sym: bool, blocks: int = 1, name: str = "s5-ptd", **ptd_kwargs: object) -> SSMInit:
    return _block(_ptd(_block_size(n, blocks), conj_sym, **ptd_kwargs), name, blocks)


INITS: dict[str, Callable[..., SSMInit]] = {
    "s4d-legs": _s4d_legs,
    "s4d-lin": _s4d_lin,
    "s4d-inv": _s4d_inv,
    "s4d-real": _s4d_real,
    "s4-legs": _s4_legs,
    "s4-legt": _s4_nplr("legt"),
    "s4-fout": _s4_nplr("fout"),
    "s4d-legt": _s4d_nplr("legt"),
    "s4d-fout": _s4d_nplr("fout"),
    "s5-legs": _s5_legs,
    "ptd": _ptd,
    **{name: _ptd for name in PTD_PRESETS},
    "s5-ptd": _s5_ptd,
    **{f"s5-{name}": _s5_ptd for name in PTD_PRESETS},
}

#: The DPLR (S4) inits: a low-rank factor ``P`` (``A = diag(Lambda) - P^T conj(P)`` in the mode basis).
DPLR_INITS = ("s4-legs", "s4-legt", "s4-fout")

#: The HiPPO measure an init comes from (its timescale: :mod:`ptdssm.theory.timescale`).
MEASURE_OF_INIT = {"s4d-legs": "legs", "s4-legs": "legs", "s5-legs": "legs", "s4-legt": "legt", "s4d-legt": "legt",
                   "s4-fout": "fout", "s4d-fout": "fout", "s4d-lin": "fout"}

#: The PTD inits (single block and S5 block-diagonal).
PTD_INITS = tuple(name for name, f in INITS.items() if f in (_ptd, _s5_ptd))


def ptd_options(name: str = "ptd", overrides: dict | None = None) -> dict:
    """``perturb_then_diagonalize`` options of the PTD init ``name`` (``ptd``/``s5-ptd``: :data:`DEFAULT_PTD`'s
    preset; the ``s5-`` prefix is ignored), with ``overrides`` on top, e.g. ``{"objective": "response",
    "pairs": True}`` for ``ptd-response``."""
    check_choice("init", name, PTD_INITS)
    base = name.removeprefix("s5-")
    return {**PTD_PRESETS[DEFAULT_PTD if base == "ptd" else base], **(overrides or {})}


def ssm_init(name: str, n: int, *, conj_sym: bool | None = None, blocks: int = 1, **ptd_kwargs: object) -> SSMInit:
    """Build the named initialization of state size ``n``.

    Args:
        name: one of :data:`INITS`.
        n: state size (size of the underlying HiPPO matrix; for S5 the total ``P`` over all blocks).
        conj_sym: keep one of each conjugate pair. Default ``True``, except for ``s4d-real`` and the PTD inits
            without ``pairs`` (``ptd-paper``, ``s5-ptd-paper``), which keep all ``n`` modes as the paper's
            S4-PTD and S5-PTD do, and the pairs-only PTDs of an odd size (one eigenvalue is real).
        blocks: diagonal blocks ``J`` for the S5 inits (``n`` must be divisible by it).
        **ptd_kwargs: passed to :func:`~ptdssm.theory.ptd.perturb_then_diagonalize` (``gamma``, ``seed``,
            ``stability``, ``objective``, ``pairs``, ...) for the PTD inits, over the init's preset.
    """
    check_choice("init", name, INITS)
    n = check_positive_int("n", n)
    kwargs: dict = {}
    if name in PTD_INITS:
        kwargs.update(ptd_options(name, ptd_kwargs), name=name)
        block = n // blocks if name.startswith("s5-") and blocks > 0 and n % blocks == 0 else n
        if block < MIN_PAIRS_SIZE and "pairs" not in ptd_kwargs:
            kwargs["pairs"] = False  # a pair would cost ||E|| ~ 0.76 ||A|| at n = 2 (the preset yields)
        default_cs = bool(kwargs["pairs"]) and block % 2 == 0  # an odd size keeps one real eigenvalue
    elif ptd_kwargs:
        raise ValueError(f"PTD options {sorted(ptd_kwargs)} only apply to the PTD inits, not {name!r}")
    else:
        default_cs = name != "s4d-real"
    cs = default_cs if conj_sym is None else bool(conj_sym)
    if cs and n % 2 and name != "s4d-real":
        raise ValueError(f"n must be even with conj_sym=True, got n={n}")
    if name.startswith("s5-"):
        kwargs["blocks"] = blocks
    elif blocks != 1:
        raise ValueError(f"blocks={blocks} only applies to the S5 inits, not {name!r}")
    return INITS[name](n, cs, **kwargs)
