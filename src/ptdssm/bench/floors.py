"""The two floors a layer is timed against: the FFT floor and the layer's own projections.

**FFT floor** (:func:`fft_floor`): ``irfft(rfft(x), n=2L)`` of a float32 ``x (B, H, 2L)``, the least any
FFT-convolution layer must do; ratios to it, measured in the same run, compare across machines.

**Own projections** (:class:`Projections`): the layer's own ``nn.Linear`` / ``nn.Conv1d`` submodules alone, on the
inputs they see in the layer's forward. One dry forward (no grad) records every ``F.linear`` / ``F.conv1d`` call
whose weight is such a submodule's weight, through a ``TorchFunctionMode``: that sees the module's own ``forward``
and a layer that calls ``F.linear(x, self.in_proj.weight)`` itself (as Mamba-1 does, where forward hooks see
nothing). Each call keeps its function, its other arguments (the module's parameters, stride, padding, groups, ...)
and its input's shape and memory layout (a transposed view is replayed from a transposed tensor); replaying is the
same calls on fresh random inputs, in order, with backward from fixed random output gradients. A module called
``k`` times (per direction, per chunk) is replayed ``k`` times. What is *not* in it: every other op of the layer
(the scan, the FFT convolutions, the elementwise gates), which is what the ratio layer / projections measures, and
a module whose weight the layer uses without ``F.linear`` / ``F.conv1d`` (Mamba's and Hyena's depthwise
convs run as shifted ``addcmul`` in :func:`~ptdssm.kernels.shift.causal_conv`: not a recorded call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .common import make_step

__all__ = ["Projections", "fft_floor", "fft_floor_step", "layer_step"]

#: functions whose calls are recorded when their weight belongs to a recorded module
_FUNCS = (F.linear, F.conv1d)


def fft_floor(B: int, H: int, L: int, requires_grad: bool = False) -> tuple[Any, torch.Tensor]:
    """``(forward, x)``: ``forward() = irfft(rfft(x), n=2L)`` of ``x (B, H, 2L)`` (float32, random)."""
    x = torch.randn(B, H, 2 * L, requires_grad=requires_grad)
    return (lambda: torch.fft.irfft(torch.fft.rfft(x), n=2 * L)), x


def fft_floor_step(B: int, H: int, L: int, mode: str) -> Callable[[], None]:
    """One timed call of the FFT floor (:func:`~ptdssm.bench.common.make_step`)."""
    fwd, x = fft_floor(B, H, L, requires_grad=mode == "fwdbwd")
    return make_step(fwd, [x], [torch.randn(B, H, 2 * L)] if mode == "fwdbwd" else [], mode)


def layer_step(layer: nn.Module, B: int, L: int, H: int, mode: str) -> Callable[[], None]:
    """One timed call of ``layer(x)`` for a fresh random ``x (B, L, H)`` (:func:`~ptdssm.bench.common.make_step`)."""
    x = torch.randn(B, L, H, requires_grad=mode == "fwdbwd")
    grads = [torch.randn(B, L, H)] if mode == "fwdbwd" else []
    return make_step(lambda: layer(x), [x, *layer.parameters()], grads, mode)


@dataclass
class _Call:
    name: str  # the submodule's name in the layer, e.g. "in_proj"
    func: Any
    shape: tuple[int, ...]  # input
    stride: tuple[int, ...]
    out_shape: tuple[int, ...]
    rest: tuple[Any, ...]  # the positional arguments after the input (weight, bias, stride, ...)
    kwargs: dict[str, Any]


class _Recorder(TorchFunctionMode):
    def __init__(self, owners: dict[int, str]) -> None:
        super().__init__()
        self.owners = owners
        self.calls: list[_Call] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _FUNCS and len(args) >= 2 and isinstance(args[0], torch.Tensor) and id(args[1]) in self.owners:
            x = args[0]
            self.calls.append(_Call(self.owners[id(args[1])], func, tuple(x.shape), tuple(x.stride()),
                                    tuple(out.shape), tuple(args[1:]), dict(kwargs)))
        return out


def _like_layout(shape: tuple[int, ...], stride: tuple[int, ...], requires_grad: bool) -> torch.Tensor:
    """A random dense tensor of ``shape`` whose axes are laid out in memory in the order of ``stride`` (e.g. a
    ``(L, B, H)`` view of a ``(B, L, H)`` tensor gives ``randn(B, L, H).transpose(0, 1)``)."""
    order = sorted(range(len(shape)), key=lambda d: (-stride[d], d))  # outermost axis first
    t = torch.randn([shape[d] for d in order])
    inverse = [order.index(d) for d in range(len(shape))]
    return t.permute(inverse).requires_grad_(requires_grad)


class Projections:
    """A layer's own ``nn.Linear`` / ``nn.Conv1d`` calls, recorded in one dry forward of ``layer(x)`` and replayed
    alone (module docstring).

    Args:
        layer: the module (its parameters are used as they are; nothing is copied).
        x: an input of the shape to be timed, e.g. ``(B, L, H)``.
        kinds: the submodule types whose calls count (default ``nn.Linear`` and ``nn.Conv1d``).

    Use :meth:`inputs` once (set-up), then ``self(inputs)`` returns the outputs, one per recorded call; backward
    through them with :meth:`out_grads`.
    """

    def __init__(self, layer: nn.Module, x: torch.Tensor,
                 kinds: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d)) -> None:
        owners = {}
        for name, mod in layer.named_modules():
            if isinstance(mod, kinds) and getattr(mod, "weight", None) is not None:
                owners[id(mod.weight)] = name
        self.layer = layer
        rec = _Recorder(owners)
        with torch.no_grad(), rec:
            layer(x)
        self.calls = rec.calls

    def inputs(self, requires_grad: bool = False) -> list[torch.Tensor]:
        """Fresh random inputs, one per call, with the recorded shapes and memory layouts."""
        return [_like_layout(c.shape, c.stride, requires_grad) for c in self.calls]

    def out_grads(self) -> list[torch.Tensor]:
        """Random output gradients, one per call (for ``torch.autograd.backward``)."""
        return [torch.randn(c.out_shape) for c in self.calls]

    def __call__(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [c.func(x, *c.rest, **c.kwargs) for c, x in zip(self.calls, inputs, strict=True)]

    def step(self, mode: str) -> Callable[[], None]:
        """One timed replay of every call on fresh inputs (:func:`~ptdssm.bench.common.make_step`)."""
        xs = self.inputs(requires_grad=mode == "fwdbwd")
        grads = self.out_grads() if mode == "fwdbwd" else []
        return make_step(lambda: self(xs), [*xs, *self.parameters()], grads, mode)

    def parameters(self) -> list[torch.Tensor]:
        """The distinct tensors among the calls' arguments (the modules' weights and biases)."""
        seen: dict[int, torch.Tensor] = {}
        for c in self.calls:
            for a in (*c.rest, *c.kwargs.values()):
                if isinstance(a, torch.Tensor):
                    seen.setdefault(id(a), a)
        return list(seen.values())

    def describe(self) -> list[str]:
        """One line per call, e.g. ``"in_proj 256->1064"`` (Linear: in -> out features) or
        ``"conv1d 640->640 k4 groups 640"`` (Conv1d: channels, kernel size, groups)."""
        out = []
        for c in self.calls:
            w = c.rest[0]
            if c.func is F.linear:
                out.append(f"{c.name} {w.shape[1]}->{w.shape[0]}")
            else:
                groups = c.rest[5] if len(c.rest) > 5 else c.kwargs.get("groups", 1)
                out.append(f"{c.name} {w.shape[1] * groups}->{w.shape[0]} k{w.shape[-1]} groups {groups}")
        return out
