r"""Noise models for robustness evaluation (all seeded; none of them changes a model or its checkpoint).

Two places to inject noise:

* **Layer-level** (the paper's experiment): at the input of every LTI layer (every
  :class:`~ptdssm.layers.lti.LTISSM`: S4, S4D, S5, and any LTI family registered later), for sample ``b`` and
  channel ``c``,

  .. math:: \text{noise}[b, k, c] = a \, U_{bc} \cos(\omega \, \Delta_c \, k), \quad k = 0..L-1,
            \quad U_{bc} \sim U[0, 1)

  with ``Delta_c`` that channel's step size, so that the *continuous-time* frequency ``omega`` sits where the
  layer's transfer function is evaluated (``omega = 325.4`` is the top S4D spike of a LegS matrix of size 32). For
  S5, whose step sizes belong to states rather than channels, ``Delta`` is the geometric mean of the layer's step
  sizes. Applied by :func:`layer_noise`, a context manager with forward pre-hooks that are removed on exit.
* **Input-level**: added to the raw input sequence ``x (B, L, C)`` (continuous inputs only) by :class:`InputNoise`:

  - ``sinusoid``: ``a cos(omega k + phi)`` at a discrete angular frequency ``omega`` (radians per sample),
    ``phi ~ U[0, 2 pi)`` per sample;
  - ``fourier``: band-limited Fourier-mode noise ``sum_m a_m cos(2 pi m k / L + phi_m)`` on a set of FFT bins ``m``
    with random phases per sample and channel, scaled so the root-mean-square of the noise is ``a``;
  - ``gaussian``: i.i.d. ``N(0, a^2)`` white noise, the control.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .._checks import check_choice, check_positive_float

__all__ = ["NOISE_KINDS", "PAPER_FREQUENCY", "InputNoise", "NoiseSpec", "layer_noise", "lti_layers",
           "s4d_spike_frequency"]

NOISE_KINDS = ("layer", "sinusoid", "fourier", "gaussian")
PAPER_FREQUENCY = 325.4  # top S4D-LegS spike for a LegS matrix of size 32 (ptd-spec section 4)


def s4d_spike_frequency(n: int) -> float:
    """Largest ``Im(lambda)`` of the LegS normal part of size ``n``: where the S4D transfer function spikes."""
    from ..theory.init import ssm_init

    return float(ssm_init("s4d-legs", n, conj_sym=False).Lambda.imag.max())


@dataclass(frozen=True)
class NoiseSpec:
    """One noise setting.

    Attributes:
        kind: ``layer``, ``sinusoid``, ``fourier`` or ``gaussian``.
        amplitude: ``a`` above (> 0).
        frequency: ``layer``: continuous frequency ``omega``; ``sinusoid``: discrete angular frequency in radians per
            sample. Required for those two kinds.
        modes: FFT bins for ``fourier`` (each in ``1 .. L/2``).
        seed: seeds every random draw.
    """

    kind: str
    amplitude: float = 0.1
    frequency: float | None = None
    modes: tuple[int, ...] = field(default_factory=tuple)
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("noise kind", self.kind, NOISE_KINDS)
        check_positive_float("amplitude", self.amplitude)
        if self.kind in ("layer", "sinusoid"):
            if self.frequency is None:
                raise ValueError(f"{self.kind} noise needs a frequency")
            check_positive_float("frequency", self.frequency, allow_zero=True)
        if self.kind == "fourier":
            if not self.modes:
                raise ValueError("fourier noise needs at least one mode (FFT bin)")
            if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.modes):
                raise ValueError(f"fourier modes must be integers >= 1, got {self.modes}")

    def describe(self) -> str:
        """A short label for tables and plots."""
        if self.kind == "fourier":
            return f"fourier(a={self.amplitude:g}, modes={list(self.modes)})"
        if self.kind == "gaussian":
            return f"gaussian(a={self.amplitude:g})"
        return f"{self.kind}(a={self.amplitude:g}, w={self.frequency:g})"


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


class InputNoise:
    """Callable ``x (B, L, C) -> x + noise`` for the input-level kinds; each call draws fresh noise from its own
    seeded generator, so a sweep over a test set is reproducible batch by batch."""

    def __init__(self, spec: NoiseSpec) -> None:
        if spec.kind == "layer":
            raise ValueError("layer noise is applied with layer_noise(model, spec), not to the inputs")
        self.spec = spec
        self._gen: torch.Generator | None = None

    def noise(self, shape: Sequence[int], device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Draw a noise tensor of ``shape = (B, L, C)``."""
        device = torch.device(device)
        if self._gen is None or self._gen.device != device:
            self._gen = _generator(self.spec.seed, device)
        B, L, C = shape
        a, g = self.spec.amplitude, self._gen
        k = torch.arange(L, device=device, dtype=torch.float64)[None, :, None]
        if self.spec.kind == "gaussian":
            out = a * torch.randn(B, L, C, generator=g, device=device, dtype=torch.float64)
        elif self.spec.kind == "sinusoid":
            phase = 2 * math.pi * torch.rand(B, 1, 1, generator=g, device=device, dtype=torch.float64)
            out = (a * torch.cos(float(self.spec.frequency) * k + phase)).expand(B, L, C)
        else:
            modes = self.spec.modes
            if max(modes) > L // 2:
                raise ValueError(f"fourier mode {max(modes)} exceeds the Nyquist bin {L // 2} of length {L}")
            m = torch.tensor(modes, device=device, dtype=torch.float64)
            phase = 2 * math.pi * torch.rand(B, 1, C, len(modes), generator=g, device=device, dtype=torch.float64)
            waves = torch.cos(2 * math.pi * m * k[..., None] / L + phase)  # (B, L, C, M)
            # Each cosine has mean square 1/2 (1 at DC or Nyquist); scale the sum to RMS a.
            power = sum(1.0 if 2 * mm == L else 0.5 for mm in modes)
            out = a * waves.sum(-1) / math.sqrt(power)
        return out.to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise ValueError("input-level noise needs continuous inputs (this task feeds token ids); "
                             "use layer noise instead")
        if x.dim() == 2:  # (B, L) single-channel inputs
            return x + self.noise((*x.shape, 1), x.device, x.dtype)[..., 0]
        if x.dim() != 3:
            raise ValueError(f"input-level noise expects x of shape (B, L, C), got {tuple(x.shape)}")
        return x + self.noise(x.shape, x.device, x.dtype)


def lti_layers(model: nn.Module) -> list[nn.Module]:
    """Every :class:`~ptdssm.layers.lti.LTISSM` inside ``model``, in module order (capability by type: a
    selective or convolutional mixer has no step sizes to place the noise by, and is skipped)."""
    from ..layers.lti import LTISSM

    return [m for m in model.modules() if isinstance(m, LTISSM)]


@contextlib.contextmanager
def layer_noise(model: nn.Module, spec: NoiseSpec) -> Iterator[int]:
    """Add the paper's layer-level noise at the input of every LTI layer of ``model`` inside the ``with`` block.

    Yields the number of layers hooked. The hooks are removed on exit (also on error); parameters and buffers are
    never written.
    """
    if spec.kind != "layer":
        raise ValueError(f"layer_noise needs a NoiseSpec of kind 'layer', got {spec.kind!r}")
    layers = lti_layers(model)
    if not layers:
        raise ValueError("the model has no LTI layer (LTISSM) to add layer-level noise to")
    gens: dict[torch.device, torch.Generator] = {}
    omega, a = float(spec.frequency), spec.amplitude  # type: ignore[arg-type]

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        x = args[0]
        B, L, H = x.shape
        dev = x.device
        if dev not in gens:
            gens[dev] = _generator(spec.seed, dev)
        with torch.no_grad():
            dt = module.step_sizes().detach().to(device=dev, dtype=torch.float64)
            if dt.shape != (H,):  # per-state step sizes (S5): one representative step size for all channels
                dt = dt.log().mean().exp().expand(H)
            U = torch.rand(B, 1, H, generator=gens[dev], device=dev, dtype=torch.float64)
            k = torch.arange(L, device=dev, dtype=torch.float64)[None, :, None]
            noise = a * U * torch.cos(omega * dt[None, None, :] * k)
        return (x + noise.to(x.dtype), *args[1:]), kwargs

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in layers]
    try:
        yield len(layers)
    finally:
        for h in handles:
            h.remove()
