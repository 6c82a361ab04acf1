"""Shared helpers of the kernel tests: random stable eigenvalues and a fast-vs-reference gradient comparison."""

from __future__ import annotations

from collections.abc import Callable

import torch

f64, c128 = torch.float64, torch.complex128


def rand_lambda(*shape: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Complex eigenvalues with ``Re in [-1.05, -0.05]``, ``Im ~ N(0, 25)`` (float64)."""
    return torch.complex(-torch.rand(*shape, dtype=f64, generator=gen) - 0.05,
                         torch.randn(*shape, dtype=f64, generator=gen) * 5)


def assert_same_outputs_and_grads(fast: Callable[..., torch.Tensor], ref: Callable[..., torch.Tensor],
                                  inputs: tuple[torch.Tensor, ...], *, rtol: float = 1e-9,
                                  atol: float = 1e-10, seed: int = 0) -> None:
    """``fast(*inputs) == ref(*inputs)`` and their vector-Jacobian products with one random cotangent agree for
    every input (autograd through both; complex inputs get the conjugate-Wirtinger gradient in both)."""
    leaves = tuple(t.detach().clone().requires_grad_() for t in inputs)
    out_f, out_r = fast(*leaves), ref(*leaves)
    torch.testing.assert_close(out_f, out_r, rtol=rtol, atol=atol)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_r.shape, dtype=out_r.real.dtype, generator=g)
    if out_r.is_complex():
        w = torch.complex(w, torch.randn(out_r.shape, dtype=out_r.real.dtype, generator=g))
    grads_f = torch.autograd.grad((out_f * w).real.sum(), leaves, allow_unused=True)
    grads_r = torch.autograd.grad((out_r * w).real.sum(), leaves, allow_unused=True)
    for i, (a, b) in enumerate(zip(grads_f, grads_r, strict=True)):
        a = torch.zeros_like(leaves[i]) if a is None else a  # an input that does not enter: gradient zero
        b = torch.zeros_like(leaves[i]) if b is None else b
        scale = float(b.abs().max()) + 1e-30
        torch.testing.assert_close(a / scale, b / scale, rtol=rtol * 10, atol=atol * 10, msg=f"input {i}")
