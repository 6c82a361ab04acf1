"""Shared helpers of the family tests: a seeded layer factory and float64 NumPy recurrences built from the layers'
public state (``eigenvalues()``, ``step_sizes()``, ``state_dict()``, ``conj_sym``, ``disc``)."""

from __future__ import annotations

import numpy as np
import torch

from ptdssm import S5


def make(cls, H=3, seed=0, perturb=0.0, **kw):
    """``cls(H, **kw)`` with ``d_state`` 8 (S5: 16), ``dt_min`` 1e-2; ``perturb`` adds noise to every parameter
    (random "trained" values; ``Re Lambda < 0`` is kept by the stability map)."""
    torch.manual_seed(seed)
    kw = dict(kw)
    kw.setdefault("d_state", 16 if cls is S5 else 8)
    kw.setdefault("dt_min", 1e-2)
    layer = cls(H, **kw)
    if perturb:
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name != "A_re" or layer.stability == "exp":
                    p.add_(perturb * torch.randn_like(p))
    return layer


def np64(t):
    t = t.detach()
    return t.to(torch.complex128 if t.is_complex() else torch.float64).cpu().numpy()


def param(layer, name):
    """A stored parameter or buffer from ``state_dict`` as a NumPy array (complex if stored as ``(..., 2)``)."""
    t = layer.state_dict()[name]
    return np64(torch.view_as_complex(t.contiguous()) if name in ("B", "C", "P") else t)


def tile(a, H):
    """Per-copy ``(n_ssm, ...)`` parameters -> per channel ``(H, ...)`` (channel ``h`` uses copy ``h % n_ssm``)."""
    return np.tile(a, (H // a.shape[0],) + (1,) * (a.ndim - 1))


def disc(lam, dt, method):
    """Textbook discretization of a diagonal system: ``(Lambda_bar, B_bar / B)``."""
    if method == "zoh":
        return np.exp(dt * lam), (np.exp(dt * lam) - 1) / lam
    return (1 + dt * lam / 2) / (1 - dt * lam / 2), dt / (1 - dt * lam / 2)


def skip(layer, u):
    return u * param(layer, "D") if layer.D is not None else 0.0 * u


def bidir_sum(run, C, u):
    """``run(u, C_d)`` over the directions: causal on ``u``, anti-causal on the time-reversed ``u``."""
    out = 0.0
    for d in range(len(C)):
        ys = run(u if d == 0 else u[:, ::-1], C[d])
        out = out + (ys if d == 0 else ys[:, ::-1])
    return out


def rel(a, b):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    a = np.asarray(a)
    a = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def gradcheck_layer(layer, L=6):
    """``torch.autograd.gradcheck`` of a float64 layer with respect to its input and every parameter."""
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in layer.named_parameters())
    x = torch.randn(1, L, layer.d_model, dtype=torch.float64, requires_grad=True)

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,))
    return torch.autograd.gradcheck(fn, (x, *params), atol=1e-6, rtol=1e-4)
