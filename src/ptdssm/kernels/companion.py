r"""Companion-matrix SSM kernels (SpaceTime, Zhang et al. 2023): the convolution kernel, the state kernel, one
recurrent step and the closed-loop rollout.

The companion matrix of the last column ``a`` is ``A = S + a e_d^T`` (``S`` the down-shift, ones on the
sub-diagonal), so ``(A x)_i = x_{i-1} + a_i x_{d-1}`` (``x_{-1} = 0``): one step costs ``O(d)``
(:func:`companion_step`). Identifying ``e_i`` with ``x^i``, ``A`` is multiplication by ``x`` modulo
``chi(x) = x^d - sum_i a_i x^i``. The kernel is

.. math:: k_l = c^\top A^l b, \qquad l = 0, \dots, L-1.

**The fast algorithm** (:func:`companion_kernel`, ``O(d log d + L log L)``). For ``z^L = 1`` and ``I - zA``
invertible, ``sum_{l<L} k_l z^l = c^T (I - z^L A^L)(I - zA)^{-1} b = c~^T (I - zA)^{-1} b`` with
``c~ = c - (A^T)^L c``, so the DFT of ``k`` at ``z_j = exp(-2 pi i j / L)`` is a resolvent. ``I - zA`` is the
unit-triangular ``M = I - zS`` minus the rank one ``z a e_d^T``; Woodbury gives

.. math:: \hat k(z) = q_{c~ b}(z) + \frac{z\, q_{c~ a}(z)\, q_{e b}(z)}{1 - z\, q_{e a}(z)}, \qquad
          q_{uv}(z) = u^\top M^{-1} v = \sum_{m<d} z^m \sum_i u_{i+m} v_i ,

since ``M^{-1} = sum_{m<d} z^m S^m`` (``S`` is nilpotent). Each ``q`` is a polynomial of degree ``< d`` whose
coefficients are a cross-correlation (one FFT of length ``2d``); folded modulo ``L`` and transformed by an FFT of
length ``L`` it gives all ``L`` values at once; ``q_{e v}`` is ``v`` reversed. An inverse FFT returns ``k``.

``c~`` without matrix powers: the rows ``r_t = c^T A^t`` shift left and append ``s_t = r_t . a``, so
``c^T A^L = (s_{L-d}, ..., s_{L-1})`` for the linear recurrence ``s_t = sum_i a_i s_{t-d+i}`` started from
``(s_{-d}, ..., s_{-1}) = c``. Its generating function is ``q_{c a}(z) / (1 - z q_{e a}(z))`` (the same two
polynomials), expanded to ``L`` terms by a Newton power-series inverse (``s <- s (2 - D s)``, doubling; ``O(L log L)``).
SpaceTime's public ``companion_krylov`` takes ``c~`` from ``matrix_power(A, L)`` (``O(d^3 log L)``) and its model
never calls the fast path; here it is the default.

**When it is exact, and the circle it runs on.** With ``a`` L1-normalized (``|a|_1 = 1``) every eigenvalue of ``A``
has ``|lambda| <= 1`` (``|lambda|^d <= sum_i |a_i| |lambda|^i`` forbids ``|lambda| > 1``), so the recurrence never
grows exponentially. On the unit circle the division by ``D(z) = 1 - z q_{ea}(z) = det(I - zA)`` is the weak point:
an eigenvalue *at* an ``L``-th root of unity makes it singular, and this is no corner case: every ``a >= 0`` with
``|a|_1 = 1`` has ``chi(1) = 1 - sum_i a_i = 0`` (eigenvalue 1; with ``d = 1`` every normalized ``a`` is ``+-1``).
So the default evaluates the same identity on the circle ``|z| = rho < 1``: ``sum_l (k_l rho^l) w^l =
(c - rho^L (A^T)^L c)^T (I - rho w A)^{-1} b`` at ``w^L = 1``, each polynomial coefficient ``m`` scaled by
``rho^m``, and the inverse FFT divided by ``rho^l``. With ``rho^L = 1/2`` the resolvent is never singular
(``|1 - rho w lambda| >= 1 - rho ~ ln 2 / L``) and rounding grows at most 2x. ``radius=1.0`` is the plain
roots-of-unity form. Measured against the two references below (``tests/kernels/test_companion.py``): random
normal ``a``, L1-normalized, ``d`` in 1..64, ``L`` in 1..4096 (``L < d`` and ``L`` not a power of two included):
relative error ~1e-15 in float64, ~3e-7 in float32; the worst case ``a >= 0`` (eigenvalue 1): ~5e-14 in float64 and
~2e-5 in float32 (``NaN`` with ``radius=1.0``).

**References in this module.** :func:`companion_kernel_krylov` (repeated squaring: the Krylov block
``[b, A b, ..., A^{t-1} b]`` doubled by ``A^t``, as SpaceTime's model computes it; ``O(d^3 log L + d^2 L)``) and
:func:`companion_kernel_ref` (explicit matrix powers, one tap at a time). :func:`companion_state_kernel` is
``A^l b`` (``(..., d, L)``, the fast algorithm with ``c = e_i`` for every ``i``), for encoding a window into a state.

**Closed loop** (SpaceTime's decoder): with feedback ``u_t = k^T x_{t-1}`` the state follows ``M = A + b k^T``;
from ``x_0`` the outputs are ``y_h = c^T M^h x_0`` and the predicted next inputs ``u_h = k^T M^h x_0`` for
``h < T``. :func:`closed_loop_rollout` builds the rows ``c^T M^h``, ``k^T M^h`` by doubling (``O(d^3 log T + d^2 T)``)
and contracts them with the states; :func:`closed_loop_rollout_ref` is the explicit loop ``x <- A x + b (k^T x)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["closed_loop_rollout", "closed_loop_rollout_ref", "companion_final_state", "companion_kernel",
           "companion_kernel_krylov", "companion_kernel_ref", "companion_matrix", "companion_state_kernel",
           "companion_state_kernel_ref", "companion_step", "l1_normalize"]


def l1_normalize(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``x / |x|_1`` over the last axis, rows whose L1 norm is ``<= eps`` left as they are (SpaceTime's
    ``norm_order = 1``; decided per row with ``torch.where``, no host sync). Shape kept."""
    n = x.abs().sum(-1, keepdim=True)
    return torch.where(n > eps, x / n.clamp_min(eps), x)


def companion_matrix(a: torch.Tensor) -> torch.Tensor:
    """``A = S + a e_d^T`` as a dense ``(..., d, d)`` tensor from the last column ``a (..., d)``."""
    d = a.shape[-1]
    S = torch.diag(torch.ones(d - 1, dtype=a.dtype, device=a.device), -1)
    return torch.cat([S[:, :-1].expand(*a.shape[:-1], d, d - 1), a[..., :, None]], dim=-1)


def companion_step(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One step ``x <- A x + b u`` in ``O(d)``: ``(A x)_i = x_{i-1} + a_i x_{d-1}``.

    Args:
        x: ``(..., d)`` state; a, b: ``(..., d)`` (broadcast); u: ``(...)`` scalar input per system.

    Returns:
        ``(..., d)`` new state.
    """
    shifted = torch.cat([torch.zeros_like(x[..., :1]), x[..., :-1]], dim=-1)
    return shifted + a * x[..., -1:] + b * u[..., None]


# ---------------------------------------------------------------------------------------------- fast path
def _cdtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _correlate(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``r_m = sum_i u_{i+m} v_i`` for ``m < d`` (``(..., d)`` each, broadcast), by one FFT of length ``2d``."""
    d = u.shape[-1]
    U, V = torch.fft.rfft(u, n=2 * d), torch.fft.rfft(v, n=2 * d)
    return torch.fft.irfft(U * V.conj(), n=2 * d)[..., :d]


def _mul_trunc(p: torch.Tensor, q: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` coefficients of the product of power series ``p``, ``q`` (last axis), by FFT."""
    m = p.shape[-1] + q.shape[-1] - 1
    size = 1 << max(0, (m - 1).bit_length())
    out = torch.fft.irfft(torch.fft.rfft(p, n=size) * torch.fft.rfft(q, n=size), n=size)[..., :n]
    return torch.nn.functional.pad(out, (0, n - out.shape[-1])) if out.shape[-1] < n else out


def _series_inverse(D: torch.Tensor, n: int) -> torch.Tensor:
    """``1 / D(z) mod z^n`` for ``D_0 = 1``, by Newton's iteration ``g <- g (2 - D g)`` (precision doubles)."""
    g = torch.ones_like(D[..., :1])
    k = 1
    while k < n:
        k = min(2 * k, n)
        e = _mul_trunc(D[..., :k], g, k)  # D g = 1 + O(z^{k/2})
        g = _mul_trunc(g, -e + 2.0 * (torch.arange(k, device=D.device) == 0).to(D.dtype), k)
    return g


def _c_tilde(c: torch.Tensor, L: int, q_ca: torch.Tensor, inv_D: torch.Tensor, rL: float) -> torch.Tensor:
    """``c - rho^L c^T A^L`` from the recurrence ``s = q_{ca} / D`` (module docstring); ``inv_D = 1/D mod z^L``."""
    d = c.shape[-1]
    s = _mul_trunc(q_ca, inv_D, L)  # s_0 .. s_{L-1}
    window = torch.cat([c.expand(*s.shape[:-1], d), s], dim=-1)[..., L:L + d]  # (s_{L-d}, .., s_{L-1}), s_{-d..-1} = c
    return c - rL * window


def _fold_dft(poly: torch.Tensor, L: int, rho: float) -> torch.Tensor:
    """``sum_m poly_m (rho z_j)^m`` at ``z_j = exp(-2 pi i j / L)``, ``j <= L/2``: scale by ``rho^m``, fold modulo
    ``L``, then one rFFT."""
    d = poly.shape[-1]
    n = -(-d // L) * L
    if rho != 1.0:
        poly = poly * rho ** torch.arange(d, device=poly.device, dtype=poly.dtype)
    folded = torch.nn.functional.pad(poly, (0, n - d)).unflatten(-1, (n // L, L)).sum(-2)
    return torch.fft.rfft(folded, n=L)


def companion_kernel(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, L: int,
                     radius: float | None = None) -> torch.Tensor:
    r"""``k_l = c^T A^l b`` for ``l < L`` with ``A = S + a e_d^T``, by the roots-of-unity algorithm (module
    docstring): ``O(d log d + L log L)`` per system.

    Args:
        a: ``(..., d)`` last column of ``A``; b, c: ``(..., d)`` (all three broadcast together).
        L: kernel length ``>= 1``.
        radius: evaluate on the circle ``|z| = rho`` (default ``rho = 2^{-1/L}``, so ``rho^L = 1/2``); ``1.0`` is
            the plain unit circle (singular when ``A`` has an eigenvalue at an ``L``-th root of unity).

    Returns:
        ``(..., L)`` real kernel (float16/bfloat16 inputs are computed in float32).
    """
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"L must be an integer >= 1, got {L!r}")
    rho = 0.5 ** (1.0 / L) if radius is None else float(radius)
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"radius must be in (0, 1], got {radius!r}")
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), c.dtype)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    a, b, c = a.to(work), b.to(work), c.to(work)
    shape = torch.broadcast_shapes(a.shape, b.shape, c.shape)
    # D and its series inverse depend on a alone: computed once per system, broadcast over rows of c (state kernel)
    D = torch.cat([torch.ones_like(a[..., :1]), -a.flip(-1)], dim=-1)  # det(I - zA) = 1 - sum_j a_{d-j} z^j
    ct = _c_tilde(c, L, _correlate(c, a), _series_inverse(D, L), rho ** L).expand(shape)
    a, b = a.expand(shape), b.expand(shape)
    q = _correlate(ct[..., None, :], torch.stack([b, a], dim=-2))  # (..., 2, d): q_{c~ b}, q_{c~ a}
    Q = _fold_dft(torch.cat([q, b.flip(-1)[..., None, :]], dim=-2), L, rho)  # (..., 3, L//2+1): + q_{e b}
    Dz = _fold_dft(D, L, rho)  # D at rho z_j: 1 - z q_{ea}(z)
    j = torch.arange(L // 2 + 1, device=a.device, dtype=work)
    z = torch.polar(torch.full_like(j, rho), -2 * math.pi * j / L).to(_cdtype(work))
    khat = Q[..., 0, :] + z * Q[..., 1, :] * Q[..., 2, :] / Dz
    k = torch.fft.irfft(khat, n=L)
    if rho != 1.0:
        k = k * rho ** -torch.arange(L, device=k.device, dtype=work)
    return k


def companion_state_kernel(a: torch.Tensor, b: torch.Tensor, L: int) -> torch.Tensor:
    """The state kernel ``X[..., i, l] = (A^l b)_i``, ``l < L`` (:func:`companion_kernel` with ``c = e_i`` for each
    ``i``): the state after a window ``u_0 .. u_{n-1}`` is ``sum_l X[..., l] u_{n-1-l}``.

    Args:
        a, b: ``(..., d)``.

    Returns:
        ``(..., d, L)``.
    """
    d = a.shape[-1]
    eye = torch.eye(d, dtype=a.dtype, device=a.device)
    return companion_kernel(a[..., None, :], b[..., None, :], eye, L)


def companion_final_state(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""The state after a window, ``x_{n-1} = sum_l (A^l b) u_{n-1-l}``, from one scalar convolution.

    Unrolling ``x_{t,i} = x_{t-1,i-1} + a_i v_{t-1} + b_i u_t`` (``v_t = x_{t,d-1}``, the last state entry) over
    ``i`` gives ``x_{n-1,i} = sum_{j<=i} a_{i-j} v_{n-2-j} + b_{i-j} u_{n-1-j}``: the last ``d`` values of ``u`` and
    of ``v = (e_d^T A^l b) * u`` (one companion kernel and one FFT convolution per channel) through two ``d x d``
    lower-triangular Toeplitz matrices. Equal to contracting :func:`companion_state_kernel` with the window, at
    ``1/d`` of its kernel work.

    Args:
        a, b: ``(H, d)`` per channel; u: ``(B, n, H)`` window.

    Returns:
        ``(B, H, d)``.
    """
    from .fftconv import fft_conv_blh

    n, d = u.shape[1], a.shape[-1]
    e_d = torch.zeros_like(a)
    e_d[..., -1] = 1.0
    v = fft_conv_blh(u, companion_kernel(a, b, e_d, n).to(u.dtype))  # (B, n, H): x_{t, d-1}
    pad = u.new_zeros(u.shape[0], d, u.shape[2])
    U = torch.cat([pad, u], 1).flip(1)[:, :d]
    V = torch.cat([pad, v[:, :-1]], 1).flip(1)[:, :d]  # V_j = v_{n-2-j}, U_j = u_{n-1-j}, zero before the start
    idx = torch.arange(d, device=a.device)
    lag = idx[:, None] - idx[None, :]  # i - j
    tri = lag >= 0

    def toeplitz(w: torch.Tensor) -> torch.Tensor:  # (H, d, d): w_{i-j} for j <= i
        return torch.where(tri, w[..., lag.clamp(min=0)], torch.zeros((), dtype=w.dtype, device=w.device))

    Ta, Tb = toeplitz(a).to(u.dtype), toeplitz(b).to(u.dtype)
    return torch.einsum("hij,bjh->bhi", Ta, V) + torch.einsum("hij,bjh->bhi", Tb, U)


# ---------------------------------------------------------------------------------------------- closed loop
def closed_loop_rows(a: torch.Tensor, b: torch.Tensor, k: torch.Tensor, rows: torch.Tensor, T: int) -> torch.Tensor:
    """``rows M^h`` for ``h < T``, ``M = A + b k^T``, by doubling: ``[R, R M, ..., R M^{t-1}]`` extended by
    ``M^t``, then ``M^t <- (M^t)^2``.

    Args:
        a, b, k: ``(..., d)``; rows: ``(..., r, d)``.

    Returns:
        ``(..., r, T, d)``.
    """
    M = companion_matrix(a) + b[..., :, None] * k[..., None, :]
    W = rows[..., None, :]  # (..., r, 1, d)
    P = M
    while W.shape[-2] < T:
        W = torch.cat([W, W @ P[..., None, :, :]], dim=-2)
        if W.shape[-2] < T:
            P = P @ P
    return W[..., :T, :]


def closed_loop_rollout(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, k: torch.Tensor, x0: torch.Tensor,
                        T: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Closed-loop outputs ``y_h = c^T M^h x_0`` and predicted inputs ``u_h = k^T M^h x_0`` (``M = A + b k^T``),
    ``h < T``.

    Args:
        a, b, c, k: ``(H, d)`` per channel; x0: ``(B, H, d)`` states.
        T: steps ``>= 1``.

    Returns:
        ``(y (B, T, H), u (B, T, H))``.
    """
    W = closed_loop_rows(a, b, k, torch.stack([c, k], dim=-2), T)  # (H, 2, T, d)
    out = torch.einsum("hrtd,bhd->rbth", W.to(x0.dtype), x0)
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------- references
def companion_kernel_krylov(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, L: int) -> torch.Tensor:
    """:func:`companion_kernel` by repeated squaring: the Krylov block ``K = [b, A b, ..., A^{t-1} b]`` becomes
    ``[K, A^t K]`` and ``A^t`` is squared, ``log2 L`` times; ``k = c^T K``. Shapes as :func:`companion_kernel`."""
    a, b, c = torch.broadcast_tensors(a, b, c)
    A = companion_matrix(a)
    K = b[..., :, None]
    P = A
    while K.shape[-1] < L:
        K = torch.cat([K, P @ K], dim=-1)
        if K.shape[-1] < L:
            P = P @ P
    return (c[..., None, :] @ K[..., :L])[..., 0, :]


def companion_kernel_ref(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, L: int) -> torch.Tensor:
    """Plain definition of :func:`companion_kernel`: the dense ``A``, ``x_0 = b``, ``k_l = c^T x_l``,
    ``x_{l+1} = A x_l`` (one matrix-vector product per tap)."""
    a, b, c = torch.broadcast_tensors(a, b, c)
    A = companion_matrix(a)
    x, out = b, []
    for _ in range(L):
        out.append((c * x).sum(-1))
        x = (A @ x[..., None])[..., 0]
    return torch.stack(out, -1)


def companion_state_kernel_ref(a: torch.Tensor, b: torch.Tensor, L: int) -> torch.Tensor:
    """Plain definition of :func:`companion_state_kernel`: the columns ``A^l b`` by explicit powers."""
    A = companion_matrix(a)
    x, out = b, []
    for _ in range(L):
        out.append(x)
        x = (A @ x[..., None])[..., 0]
    return torch.stack(out, -1)


def closed_loop_rollout_ref(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, k: torch.Tensor, x0: torch.Tensor,
                            T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain definition of :func:`closed_loop_rollout`: the explicit loop ``y = c^T x``, ``u = k^T x``,
    ``x <- A x + b u`` (that is ``x <- (A + b k^T) x``) with the dense ``A``."""
    A = companion_matrix(a)
    x, ys, us = x0, [], []
    for _ in range(T):
        y, u = (c * x).sum(-1), (k * x).sum(-1)
        ys.append(y)
        us.append(u)
        x = (A @ x[..., None])[..., 0] + b * u[..., None]
    return torch.stack(ys, 1), torch.stack(us, 1)
