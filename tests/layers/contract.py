"""Reusable checks of the :class:`~ptdssm.layers.mixer.SequenceMixer` contract, for any family.

Each check takes a *factory* ``make(d_model, **overrides) -> SequenceMixer`` (fresh, seeded layer) and asserts one
clause of the contract against an independent computation: the same layer run another way (step by step, one
sequence alone, eager instead of compiled, float32 instead of autocast), never a saved output.

:data:`CHECKS` lists them all, in order; ``tests/layers/test_contract.py`` (every registered family) and any test
file that registers its own family parametrize over it, so a check added here reaches every family.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from ptdssm.errors import NonFiniteError
from ptdssm.layers.mixer import SequenceMixer, map_state

Factory = Callable[..., SequenceMixer]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _tensors(state: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda t: out.append(t) or t, state)
    return out


def _fresh(make: Factory, H: int, **kw: Any) -> SequenceMixer:
    torch.manual_seed(0)
    layer = make(H, **kw)
    assert isinstance(layer, SequenceMixer)
    assert layer.d_model == H
    return layer.eval()


def check_step_matches_forward(make: Factory, *, H: int = 3, L: int = 40, B: int = 2, tol: float = 1e-4,
                               **kw: Any) -> None:
    """``step`` position by position equals ``forward``; the state does not grow with the length."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(B, L, H)
    with torch.no_grad():
        y = layer(x)
        state = layer.init_state(B)
        shapes0 = None
        ys = []
        for t in range(L):
            yt, state = layer.step(x[:, t], state)
            assert yt.shape == (B, H) and yt.dtype == x.dtype
            ys.append(yt)
            shapes = [tuple(s.shape) for s in _tensors(state)]
            shapes0 = shapes0 or shapes
            assert shapes == shapes0, "the state must not grow with the length"
    err = rel_err(torch.stack(ys, 1), y)
    assert err < tol, f"step vs forward: relative error {err:.2e}"


def check_padding_never_leaks(make: Factory, *, bidirectional: bool = False, H: int = 3, L: int = 30,
                              tol: float = 1e-4, **kw: Any) -> None:
    """With ``lengths``, outputs at real positions equal those of each sequence run alone whatever the pads hold,
    outputs at pads are zero, and (causal layers) the state returned by ``prefill`` ignores the pads too."""
    if bidirectional:
        kw["bidirectional"] = True
    layer = _fresh(make, H, **kw)
    lengths = torch.tensor([L - 7, L, 5])
    x = torch.randn(3, L, H)
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e3 * torch.randn(L - n, H)
    with torch.no_grad():
        y, y2 = layer(x, lengths=lengths), layer(garbage, lengths=lengths)
        for b, n in enumerate(lengths.tolist()):
            alone = layer(x[b:b + 1, :n])
            assert rel_err(y[b:b + 1, :n], alone) < tol
            assert rel_err(y2[b:b + 1, :n], alone) < tol
            assert float(y2[b, n:].abs().sum()) == 0.0
        if bidirectional:
            return
        _, s1 = layer.prefill(x, lengths)
        _, s2 = layer.prefill(garbage, lengths)
        for b, n in enumerate(lengths.tolist()):
            _, sb = layer.prefill(x[b:b + 1, :n])
            for t1, t2, tb in zip(_tensors(s1), _tensors(s2), _tensors(sb), strict=True):
                torch.testing.assert_close(t1[b:b + 1], tb, rtol=tol, atol=1e-5)
                torch.testing.assert_close(t2[b:b + 1], tb, rtol=tol, atol=1e-5)


def check_prefill_then_step(make: Factory, *, H: int = 3, L: int = 20, tol: float = 1e-4, **kw: Any) -> None:
    """``prefill`` of a prefix then ``step`` continues exactly as ``forward`` over the whole sequence."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(2, L, H)
    with torch.no_grad():
        y = layer(x)
        y_pre, state = layer.prefill(x[:, : L // 2])
        ys = [y_pre]
        for t in range(L // 2, L):
            yt, state = layer.step(x[:, t], state)
            ys.append(yt[:, None])
    assert rel_err(torch.cat(ys, 1), y) < tol


def check_gradients_reach_every_parameter(make: Factory, *, H: int = 3, L: int = 25, **kw: Any) -> None:
    """One backward pass of a random input gives every trainable parameter (no DDP "unused parameter") and the
    input a finite, nonzero gradient (a parameter that is used but multiplied by zero would never train)."""
    layer = _fresh(make, H, **kw).train()
    x = torch.randn(2, L, H, requires_grad=True)
    layer(x).square().sum().backward()
    for name, p in layer.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(p.grad).all(), name
            assert float(p.grad.abs().sum()) > 0, f"zero gradient for {name}"
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


def check_compile_matches_eager(make: Factory, *, H: int = 4, L: int = 32, backend: str = "aot_eager",
                                **kw: Any) -> None:
    """``torch.compile`` (Dynamo + AOT autograd; graph breaks allowed) runs forward and backward and gives the eager
    result."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(2, L, H, requires_grad=True)
    torch._dynamo.reset()
    try:
        y = torch.compile(layer, backend=backend)(x)
    except Exception as e:  # noqa: BLE001 - an environment without a working C++ toolchain for inductor
        if backend == "inductor" and any(w in str(e).lower() for w in ("compiler", "gcc", "g++", "cpp")):
            pytest.skip(f"no working C++ toolchain for inductor: {e}")
        raise
    y.square().sum().backward()
    assert all(p.grad is not None for p in layer.parameters() if p.requires_grad)
    torch.testing.assert_close(y, layer(x), rtol=1e-4, atol=1e-5)


def check_autocast_bf16(make: Factory, *, H: int = 4, L: int = 48, **kw: Any) -> None:
    """Under bf16 autocast: bf16 activations give a bf16 output computed in fp32 inside (equal, up to the final
    rounding, to the fp32 layer on the same bf16 values), gradients flow; an fp32 input is not downcast at all."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(2, L, H)
    lin = torch.nn.Linear(H, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = lin(x)
        assert xb.dtype == torch.bfloat16
        y = layer(xb)
        assert y.dtype == torch.bfloat16
        y.float().sum().backward()
        y32 = layer(x)
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
    ref = layer(xb.detach().float())
    assert rel_err(y.float(), ref) < 1e-2  # the bf16 rounding of the output (2^-9 relative) and nothing more
    torch.testing.assert_close(y32, layer(x))


def check_float64(make: Factory, *, H: int = 3, L: int = 20, **kw: Any) -> None:
    """After ``.double()`` the layer computes in float64: float64 in, float64 out, close to the float32 layer."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(2, L, H)
    y32 = layer(x)
    layer = layer.double()
    y64 = layer(x.double())
    assert y64.dtype == torch.float64
    assert rel_err(y32, y64) < 1e-4


def check_cast_after_init_state(make: Factory, *, H: int = 3, L: int = 20, **kw: Any) -> None:
    """``init_state``, then ``.double()``: ``step`` computes in float64 (nothing cached at ``init_state`` stays in
    float32) and equals the float64 ``forward`` to float64 precision; the state from before the cast is usable."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        state = layer.init_state(2)
        layer = layer.double()
        y = layer(x)
        ys = []
        for t in range(L):
            yt, state = layer.step(x[:, t], state)
            assert yt.dtype == torch.float64
            ys.append(yt)
    err = rel_err(torch.stack(ys, 1), y)
    assert err < 1e-9, f"step after .double() vs forward: relative error {err:.2e} (float32 left in the step path?)"


def check_input_errors(make: Factory, *, H: int = 3, **kw: Any) -> None:
    """Bad inputs fail with one-line errors naming the problem (NaN/inf: ``NonFiniteError``)."""
    layer = _fresh(make, H, **kw)
    cases: list[tuple[type[Exception], str, Callable[[], Any]]] = [
        (ValueError, "shape", lambda: layer(torch.randn(2, 10, H + 1))),
        (ValueError, "shape", lambda: layer(torch.randn(10, H))),
        (TypeError, "floating", lambda: layer(torch.ones(2, 10, H, dtype=torch.long))),
        (TypeError, "Tensor", lambda: layer(np.zeros((2, 10, H)))),
        (TypeError, "lengths", lambda: layer(torch.randn(2, 10, H), lengths=torch.tensor([3.0, 4.0]))),
        (ValueError, "lengths", lambda: layer(torch.randn(2, 10, H), lengths=torch.tensor([3, 11]))),
        (ValueError, "lengths", lambda: layer(torch.randn(2, 10, H), lengths=torch.tensor([3]))),
        (ValueError, "shape", lambda: layer.step(torch.randn(2, H + 1), layer.init_state(2))),
        (ValueError, "batch", lambda: layer.init_state(-1)),
    ]
    for exc, match, fn in cases:
        with pytest.raises(exc, match=match) as info:
            fn()
        assert "\n" not in str(info.value)
    for bad in (float("nan"), float("inf")):
        x = torch.randn(2, 10, H)
        x[1, 4, 0] = bad
        with pytest.raises(NonFiniteError, match="NaN or inf"):
            layer(x)
        with pytest.raises(NonFiniteError):
            layer.step(x[:, 4], layer.init_state(2))


def check_empty_batch(make: Factory, *, H: int = 3, L: int = 12, **kw: Any) -> None:
    """A batch of size 0 gives empty results everywhere, never an error from a kernel: ``forward`` (also with
    ``lengths`` of shape ``(0,)``, and backward), ``prefill``, ``init_state(0)`` and ``step``; each state has the
    structure of a batch-2 state with the batch axis emptied."""
    layer = _fresh(make, H, **kw)
    x = torch.randn(0, L, H, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, L, H) and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert layer(x.detach(), lengths=torch.zeros(0, dtype=torch.long)).shape == (0, L, H)
    with torch.no_grad():
        _, ref = layer.prefill(torch.randn(2, L, H))
        y_pre, state = layer.prefill(x.detach())
        assert y_pre.shape == (0, L, H)
        y_t, stepped = layer.step(torch.randn(0, H), layer.init_state(0))
        assert y_t.shape == (0, H)
    expected = [(0, *t.shape[1:]) for t in _tensors(ref)]
    for s in (state, layer.init_state(0), stepped):
        assert [tuple(t.shape) for t in _tensors(s)] == expected


def check_device_matches_cpu(make: Factory, device: str, *, H: int = 4, L: int = 128, **kw: Any) -> None:
    """The layer moved to ``device`` gives the CPU result (forward with padding, and step after ``init_state`` on
    the CPU then the move)."""
    layer = _fresh(make, H, **kw)
    x, lengths = torch.randn(2, L, H), torch.tensor([L, L // 2])
    with torch.no_grad():
        ref = layer(x, lengths)
        ref_t, _ = layer.step(x[:, 0], layer.init_state(2))
        layer = layer.to(device)
        y = layer(x.to(device), lengths.to(device))
        y_t, _ = layer.step(x[:, 0].to(device), layer.init_state(2))
    torch.testing.assert_close(y.cpu(), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y_t.cpu(), ref_t, rtol=1e-4, atol=1e-4)


def check_padding_never_leaks_bidirectional(make: Factory, **kw: Any) -> None:
    """:func:`check_padding_never_leaks` with ``bidirectional=True`` (skipped for layers without that option)."""
    if "bidirectional" not in inspect.signature(type(_fresh(make, 3)).__init__).parameters:
        pytest.skip("no bidirectional option")
    check_padding_never_leaks(make, bidirectional=True, **kw)


def check_cuda_matches_cpu(make: Factory, **kw: Any) -> None:
    """:func:`check_device_matches_cpu` on ``cuda`` (skipped without a CUDA device)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    check_device_matches_cpu(make, "cuda", **kw)


#: Every check, in order; each is called as ``check(make)``.
CHECKS: list[Callable[..., None]] = [
    check_step_matches_forward,
    check_prefill_then_step,
    check_padding_never_leaks,
    check_padding_never_leaks_bidirectional,
    check_gradients_reach_every_parameter,
    check_compile_matches_eager,
    check_autocast_bf16,
    check_float64,
    check_cast_after_init_state,
    check_input_errors,
    check_empty_batch,
    check_cuda_matches_cpu,
]


def check_id(check: Callable[..., None]) -> str:
    """Test id of a check: its name without ``check_``."""
    return check.__name__.removeprefix("check_")
