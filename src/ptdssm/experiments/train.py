"""The training loop: AdamW with SSM parameter groups, warmup + cosine, clipping, bf16, checkpoints, exact resume, DDP.

Run directory (``train.out``)::

    config.yaml            resolved config
    metrics.jsonl          one JSON record per logged step ("kind": "step") and per epoch ("kind": "epoch")
    metrics.csv            the epoch records
    checkpoints/last.pt    written every epoch (temp file + os.replace): model, optimizer, scheduler, RNG states,
                           resolved config, epoch, best validation accuracy, metric-file offsets
    checkpoints/best.pt    model and config of the best validation accuracy
    results.json           final metrics: test accuracy of the best-validation and of the last model
    tensorboard/           if train.tensorboard and TensorBoard is installed

**Resume** restores everything in ``last.pt`` and truncates the metric files to what they held when it was written,
so a run killed at any point (even with SIGKILL) and resumed ends with the same metrics as an uninterrupted one on
the same machine (CPU; tested). Batches come from a ``DistributedSampler`` seeded with ``train.seed`` and the epoch
(also in single-process runs), so the data order does not depend on the global RNG.

**Distributed**: under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP (gloo on CPU, nccl on CUDA);
``data.batch_size`` is the global batch, split evenly across processes; rank 0 logs and writes checkpoints.

A NaN or inf loss (or gradient norm) stops the run with :class:`TrainingDiverged`; the last checkpoint written is the
last good one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..config import Config, config_from_dict, config_to_dict
from ..data import build_task, collate
from ..models import build_model
from .evaluate import evaluate_model, make_eval_loader, model_inputs

__all__ = ["TrainResult", "TrainingDiverged", "WarmupSchedule", "build_optimizer", "train"]

CHECKPOINT_VERSION = 1


class TrainingDiverged(ValueError):
    """The loss or the gradient norm became NaN or inf."""


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; ``results`` is complete on all ranks)."""

    out_dir: Path
    results: dict[str, Any]
    model: nn.Module = field(repr=False)


# --------------------------------------------------------------------------------------------------------------
# Optimizer and schedule


class WarmupSchedule:
    """LR multiplier per step: linear warmup over ``warmup`` steps, then cosine / linear decay or constant."""

    def __init__(self, warmup: int, total: int, kind: str = "cosine", min_ratio: float = 0.0) -> None:
        self.warmup, self.total, self.kind, self.min_ratio = int(warmup), max(1, int(total)), kind, float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if self.kind == "cosine" else 1.0 - progress
        return self.min_ratio + (1.0 - self.min_ratio) * decay


def _name_matches(name: str, patterns: list[str]) -> bool:
    tokens = name.rsplit(".", 1)[-1].split("_")
    return any(p in tokens for p in patterns)


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW over ``ptdssm.optim.param_groups`` (SSM parameters at ``ssm_lr``, no weight decay).

    ``cfg`` is an :class:`ptdssm.config.OptimConfig`; its ``global_lr`` / ``global_lr_wd`` move matching SSM
    parameters to the global learning rate (without / with weight decay).
    """
    from .. import optim as ptd_optim

    groups = ptd_optim.param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay, ssm_lr=cfg.ssm_lr)
    if cfg.global_lr or cfg.global_lr_wd:
        names = {id(p): n for n, p in model.named_parameters()}
        moved: dict[str, list[nn.Parameter]] = {"global_lr": [], "global_lr_wd": []}
        new_groups = []
        for g in groups:
            keep = []
            if "name" in g:
                is_ssm = g["name"] == "ssm"
            else:
                is_ssm = g.get("lr", cfg.lr) == cfg.ssm_lr and g.get("weight_decay", cfg.weight_decay) == 0.0
            for p in g["params"]:
                n = names.get(id(p), "")
                if is_ssm and _name_matches(n, cfg.global_lr_wd):
                    moved["global_lr_wd"].append(p)
                elif is_ssm and _name_matches(n, cfg.global_lr):
                    moved["global_lr"].append(p)
                else:
                    keep.append(p)
            if keep:
                new_groups.append({**g, "params": keep})
        if moved["global_lr"]:
            new_groups.append({"params": moved["global_lr"], "lr": cfg.lr, "weight_decay": 0.0, "name": "ssm_global"})
        if moved["global_lr_wd"]:
            new_groups.append({"params": moved["global_lr_wd"], "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                               "name": "ssm_global_wd"})
        for key in ("global_lr", "global_lr_wd"):
            if getattr(cfg, key) and not moved[key]:
                warnings.warn(f"optim.{key} {getattr(cfg, key)} matched no SSM parameter", stacklevel=2)
        groups = new_groups
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,  # type: ignore[arg-type]
                             weight_decay=cfg.weight_decay)


# --------------------------------------------------------------------------------------------------------------
# Small helpers


def _dist_setup(device_pref: str) -> tuple[int, int, int, torch.device, bool]:
    """``(rank, world, local_rank, device, we_initialized)`` from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_pref == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    elif device_pref == "cuda":
        device = torch.device(f"cuda:{local}")
    else:
        device = torch.device(device_pref)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("config key 'train.device' asks for CUDA but no CUDA device is available")
    initialized = False
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        initialized = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return rank, world, local, device, initialized


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global legacy RNG is what user code may draw from
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then ``os.replace``: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class _MetricsLog:
    """Append-only JSONL + CSV (epoch records) + optional TensorBoard, written by rank 0 only."""

    CSV_FIELDS = ("epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s",
                  "samples_per_s")

    def __init__(self, out: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.jsonl, self.csv = out / "metrics.jsonl", out / "metrics.csv"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                warnings.warn("train.tensorboard is on but TensorBoard is not installed; logging JSONL/CSV only",
                              stacklevel=2)

    def offsets(self) -> dict[str, int]:
        return {str(p.name): (p.stat().st_size if p.exists() else 0) for p in (self.jsonl, self.csv)}

    def truncate(self, offsets: dict[str, int]) -> None:
        """Cut the files back to the sizes recorded in a checkpoint (drops records of an interrupted epoch)."""
        if not self.enabled:
            return
        for p in (self.jsonl, self.csv):
            size = offsets.get(p.name, 0)
            if p.exists():
                with open(p, "r+b") as f:
                    f.truncate(size)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
        if record.get("kind") == "epoch":
            new = not self.csv.exists() or self.csv.stat().st_size == 0
            with open(self.csv, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.CSV_FIELDS, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow(record)
        if self.tb is not None:
            step = int(record.get("step", 0))
            for k, v in record.items():
                if isinstance(v, float) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"{record.get('kind', 'x')}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _log(msg: str, rank: int) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# The loop


def train(cfg: Config, *, resume: bool = False) -> TrainResult:
    """Train a model as configured, evaluate it on the test split, and write the run directory.

    Args:
        cfg: the resolved, validated config (``train.out`` is the run directory; default ``runs/<task>-<model>``).
        resume: continue from ``<out>/checkpoints/last.pt`` (exactly, see the module docstring). Without a
            checkpoint the run starts from scratch.

    Returns:
        :class:`TrainResult` with the run directory, the final results and the trained (unwrapped) model.

    Raises:
        ValueError: bad config, missing data, or a run directory that already holds a run (without ``resume``).
        TrainingDiverged: NaN/inf loss.
    """
    cfg = config_from_dict(config_to_dict(cfg))  # private, validated copy
    tc, dc = cfg.train, cfg.data
    out = Path(tc.out or f"runs/{dc.task}-{cfg.model.name}")
    cfg.train.out = str(out)
    rank, world, _, device, we_initialized = _dist_setup(tc.device)
    try:
        return _train(cfg, out, rank, world, device, resume)
    finally:
        if we_initialized and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: Config, out: Path, rank: int, world: int, device: torch.device, resume: bool) -> TrainResult:
    tc, oc, dc = cfg.train, cfg.optim, cfg.data
    is_main = rank == 0
    ckpt_dir = out / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    if dc.batch_size % world:
        raise ValueError(f"config key 'data.batch_size' ({dc.batch_size}) must be divisible by the number of "
                         f"processes ({world})")
    if not resume and last_path.exists():
        raise ValueError(f"run directory {out} already holds a run; pass --resume to continue it or choose "
                         f"another --out")
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False

    # Data and model (same seed on every rank: identical initial weights).
    data = build_task(dc)
    info = data.info
    _seed_all(tc.seed)
    model = build_model(cfg.model, info).to(device)
    optimizer = build_optimizer(model, oc)
    per_rank = dc.batch_size // world
    sampler = DistributedSampler(data.train, num_replicas=world, rank=rank, shuffle=True,  # type: ignore[arg-type]
                                 seed=tc.seed, drop_last=world > 1)
    loader = DataLoader(data.train, batch_size=per_rank, sampler=sampler, collate_fn=collate,
                        num_workers=dc.num_workers, generator=torch.Generator().manual_seed(tc.seed),
                        drop_last=False)
    steps_per_epoch = len(loader) if tc.max_steps_per_epoch is None else min(len(loader), tc.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise ValueError(f"the training split of {info.name!r} has {len(data.train)} examples: "  # type: ignore[arg-type]
                         f"too few for one batch of {dc.batch_size}")
    total_steps = steps_per_epoch * tc.epochs
    warmup = int(round(oc.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupSchedule(warmup, total_steps, oc.schedule, oc.min_lr_ratio))
    eval_bs = max(1, dc.eval_batch_size or dc.batch_size)
    val_loader = make_eval_loader(data.val, eval_bs, dc.num_workers)
    test_loader = make_eval_loader(data.test, eval_bs, dc.num_workers)

    # Run directory and resume.
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    log = _MetricsLog(out, is_main, tc.tensorboard)
    start_epoch, global_step, best_val, best_epoch = 0, 0, -1.0, -1
    if resume and last_path.exists():
        ckpt = torch.load(last_path, map_location=device, weights_only=False)
        _check_resumable(cfg, config_from_dict(ckpt["config"]), last_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
        best_val, best_epoch = float(ckpt["best_val_acc"]), int(ckpt["best_epoch"])
        rng = ckpt["rng"]
        _set_rng_state(rng[rank] if rank < len(rng) else rng[0])
        log.truncate(ckpt.get("metric_offsets", {}))
        _log(f"resuming {out} after epoch {start_epoch} (step {global_step})", rank)
    else:
        if resume:
            _log(f"nothing to resume in {out}: starting a new run", rank)
        log.truncate({})
        torch.manual_seed(tc.seed + 1000 * rank)  # per-rank dropout streams; weights are already identical
    if is_main:
        _atomic_write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), out / "config.yaml")

    if world > 1:
        ddp_model: nn.Module = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        ddp_model = model
    n_params = sum(p.numel() for p in model.parameters())
    _log(f"ptdssm train: {cfg.model.name} on {info.name} (L={info.seq_len}), {n_params:,} parameters, "
         f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "  # type: ignore[arg-type]
         f"{world} process(es) on {device}, run directory {out}", rank)

    use_bf16 = tc.precision == "bf16"
    best_state: dict[str, torch.Tensor] | None = None
    for epoch in range(start_epoch, tc.epochs):
        sampler.set_epoch(epoch)
        ddp_model.train()
        t0 = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count (this rank)
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", is_main and tc.progress)
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch:
                break
            inputs = model_inputs(batch, device)
            y = batch["y"].to(device)
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = ddp_model(**inputs)
                loss = F.cross_entropy(logits.float(), y)
                bad_value = None if bool(torch.isfinite(loss)) else float(loss.detach())
            except ValueError as exc:  # the layers reject non-finite activations
                if "nan" not in str(exc).lower() and "inf" not in str(exc).lower():
                    raise
                bad_value = float("nan")
            if _any_rank(bad_value is not None, world, device):
                _diverged(log, epoch, global_step, bad_value, start_epoch, last_path, bar)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = _grad_norm(model, oc.grad_clip)
            if _any_rank(not bool(torch.isfinite(gnorm)), world, device):
                _diverged(log, epoch, global_step, float(gnorm), start_epoch, last_path, bar, what="gradient norm")
            optimizer.step()
            scheduler.step()
            global_step += 1
            with torch.no_grad():
                sums[0] += float(loss.detach()) * y.numel()
                sums[1] += float((logits.argmax(-1) == y).sum())
                sums[2] += y.numel()
            elapsed = time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
                if i % 10 == 0 or i == steps_per_epoch - 1:
                    bar.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}",
                                    acc=f"{sums[1].item() / sums[2].item():.3f}",
                                    seq_s=f"{world * sums[2].item() / max(elapsed, 1e-9):.0f}", refresh=False)
            if global_step % tc.log_every == 0:
                log.write({"kind": "step", "epoch": epoch + 1, "step": global_step, "loss": float(loss.detach()),
                           "lr": scheduler.get_last_lr()[0]})
        if bar is not None:
            bar.close()
        if world > 1:
            dist.all_reduce(sums)
        elapsed = time.perf_counter() - t0
        record: dict[str, Any] = {
            "kind": "epoch", "epoch": epoch + 1, "step": global_step, "lr": scheduler.get_last_lr()[0],
            "train_loss": float(sums[0] / sums[2]), "train_acc": float(sums[1] / sums[2]),
            "time_s": round(elapsed, 3), "samples_per_s": round(float(sums[2]) / max(elapsed, 1e-9), 1),
        }
        if (epoch + 1) % tc.eval_every == 0 or epoch + 1 == tc.epochs:
            val = evaluate_model(ddp_model, val_loader, device, precision=tc.precision)
            record.update(val_loss=val["loss"], val_acc=val["acc"])
            if val["acc"] > best_val:
                best_val, best_epoch = val["acc"], epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if is_main:
                    _atomic_save({"version": CHECKPOINT_VERSION, "config": config_to_dict(cfg),
                                  "task_info": asdict(info), "epoch": epoch + 1, "model": model.state_dict(),
                                  "val_acc": best_val}, best_path)
        log.write(record)
        _log(_epoch_line(record, tc.epochs), rank)
        rng_states = _gather_rng(world)
        if is_main:
            _atomic_save({
                "version": CHECKPOINT_VERSION, "config": config_to_dict(cfg), "task_info": asdict(info),
                "epoch": epoch + 1, "global_step": global_step, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_states,
                "best_val_acc": best_val, "best_epoch": best_epoch, "metric_offsets": log.offsets(),
                "last_record": record,
            }, last_path)
        if world > 1:
            dist.barrier()

    # Final evaluation on test: the last model and the best-by-validation model.
    final = evaluate_model(ddp_model, test_loader, device, precision=tc.precision)
    best_test = final
    if best_epoch not in (-1, tc.epochs):
        if best_state is None:  # resumed after the best epoch: every rank reads rank 0's best.pt
            best_state = torch.load(best_path, map_location=device, weights_only=False)["model"]
        last_state = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best_state)
        best_test = evaluate_model(ddp_model, test_loader, device, precision=tc.precision)
        model.load_state_dict(last_state)
    results = {
        "task": info.name, "model": cfg.model.name, "epochs": tc.epochs, "steps": global_step,
        "n_params": n_params, "world_size": world,
        "best_epoch": best_epoch, "best_val_acc": best_val,
        "test_acc": best_test["acc"], "test_loss": best_test["loss"],
        "final_test_acc": final["acc"], "final_test_loss": final["loss"], "test_n": final["n"],
    }
    if is_main:
        log.write({"kind": "test", **results})
        _atomic_write_text(json.dumps(results, indent=2) + "\n", out / "results.json")
        _log(f"test accuracy {results['test_acc']:.4f} (best validation epoch {best_epoch}); last model "
             f"{results['final_test_acc']:.4f}; results in {out / 'results.json'}", rank)
    log.close()
    return TrainResult(out, results, model)


def _gather_rng(world: int) -> list[dict[str, Any]]:
    state = _rng_state()
    if world == 1:
        return [state]
    states: list[Any] = [None] * world
    dist.all_gather_object(states, state)
    return states


def _check_resumable(cfg: Config, saved: Config, path: Path) -> None:
    """Resuming requires the same model, data and optimizer settings (train.* may differ, e.g. progress)."""
    a, b = config_to_dict(cfg), config_to_dict(saved)
    for section in ("model", "data", "optim"):
        for key in a[section]:
            if section == "data" and key in ("data_dir", "num_workers"):
                continue
            if a[section][key] != b[section].get(key):
                raise ValueError(f"cannot resume {path}: config key '{section}.{key}' is {a[section][key]!r} but "
                                 f"the checkpoint has {b[section].get(key)!r}")
    for key in ("epochs", "seed"):
        if a["train"][key] != b["train"][key]:
            raise ValueError(f"cannot resume {path}: config key 'train.{key}' is {a['train'][key]!r} but the "
                             f"checkpoint has {b['train'][key]!r}")


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True if ``flag`` is true on any process (all processes agree, so they stop together)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def _grad_norm(model: nn.Module, clip: float) -> torch.Tensor:
    """Total gradient 2-norm, clipping to ``clip`` first when ``clip > 0``."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return torch.zeros(())
    return nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))


def _diverged(log: _MetricsLog, epoch: int, step: int, value: float | None, start_epoch: int,
              last_path: Path, bar: Any, what: str = "loss") -> None:
    if bar is not None:
        bar.close()
    log.write({"kind": "diverged", "epoch": epoch + 1, "step": step + 1, what.replace(" ", "_"): value})
    log.close()
    where = (f"the last good checkpoint is {last_path} (epoch {epoch})" if epoch > 0 or start_epoch > 0
             else "no checkpoint was written (it diverged in the first epoch)")
    shown = "NaN/inf" if value is None else value
    raise TrainingDiverged(f"non-finite {what} ({shown}) at epoch {epoch + 1}, step {step + 1} (on some process): "
                           f"stopping; {where}. Try a lower optim.lr / optim.ssm_lr or set optim.grad_clip.")


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.5)


def _epoch_line(r: dict[str, Any], epochs: int) -> str:
    s = (f"epoch {r['epoch']}/{epochs}: train loss {r['train_loss']:.4f} acc {r['train_acc']:.4f}")
    if "val_acc" in r:
        s += f" | val loss {r['val_loss']:.4f} acc {r['val_acc']:.4f}"
    return s + f" | {r['time_s']:.1f}s, {r['samples_per_s']:.0f} seq/s"
