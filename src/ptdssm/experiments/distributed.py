"""Process-group plumbing of a run: torchrun setup, agreement across ranks, RNG states, gathering small objects.

Outside torchrun (``WORLD_SIZE`` unset or 1) every function degrades to the single-process case without touching
``torch.distributed``.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .._checks import parse_device
from ..errors import ConfigError

__all__ = ["any_rank", "dist_setup", "gather_objects", "resolve_device", "rng_state", "seed_all", "set_rng_state",
           "unwrap"]


def resolve_device(spec: object, what: str = "--device", *, local_rank: int = 0) -> torch.device:
    """The device a ``--device`` / ``train.device`` value names, checked before anything is loaded onto it.

    ``auto``: ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; ``cpu``; ``cuda`` (``cuda:<local_rank>``,
    the process's own GPU under torchrun) or ``cuda:k``. Every command that takes a device resolves it here.

    Raises:
        ConfigError: one line naming ``what``: an unknown value, CUDA asked for where PyTorch sees none (a CPU
            build, or no driver), or a GPU index beyond the ones present.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    kind, index = parse_device(spec, what)
    if kind == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    index = local_rank if index is None else index
    if not torch.cuda.is_available():
        build = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no CUDA device or driver found"
        raise ConfigError(f"{what} {spec!r} asks for CUDA, but CUDA is unavailable here ({build}, torch "
                          f"{torch.__version__}); use cpu or auto")
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{what} {spec!r}: there is no GPU {index} (this machine has "
                          f"{torch.cuda.device_count()})")
    return torch.device(f"cuda:{index}")


def dist_setup(device_pref: str) -> tuple[int, int, int, torch.device, bool]:
    """``(rank, world, local_rank, device, we_initialized)`` from torchrun's environment.

    Initializes the default process group (nccl on CUDA, gloo on CPU) when ``WORLD_SIZE > 1`` and none exists.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, "config key 'train.device'", local_rank=local)
    initialized = False
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        initialized = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return rank, world, local, device, initialized


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True if ``flag`` is true on any process (all processes agree, so they stop together)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def gather_objects(obj: Any, world: int) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` outside torchrun)."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's legacy global and torch's RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global legacy RNG is what user code may draw from
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU, NumPy, Python, and CUDA if available)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
