"""The training loop, in named steps: AdamW with SSM parameter groups, warmup + cosine, clipping, bf16, checkpoints
every epoch and every ``train.checkpoint_every`` steps, exact resume (also mid-epoch), DDP.

Outline (each step is a function below)::

    run = setup(cfg, ...)                      # data, model, optimizer, schedule, loaders, metric files
    state = resume_or_fresh(run, resume)       # TrainState from checkpoints/last.pt, or a fresh one
    while state.epoch < epochs:
        record = run_epoch(run, state)         # may raise TrainingDiverged; writes last.pt every K steps too
        validate(run, state, record)           # val metrics; best.pt when Objective.score improves
        end_epoch(run, state, record)          # epoch record, last.pt
    results = final_test(run, state)           # test metrics of the best-validation and of the last model

Run directory (``train.out``)::

    config.yaml            resolved config
    metrics.jsonl          one JSON record per logged step ("kind": "step") and per epoch ("kind": "epoch")
    metrics.csv            the epoch records
    checkpoints/last.pt    every epoch and every train.checkpoint_every optimizer steps (schema: checkpoint.py)
    checkpoints/best.pt    the model of the best validation score (accuracy, ties broken by lower loss; regression:
                           lower loss)
    results.json           final metrics: test metrics of the best-validation and of the last model
    forecast.png           forecasting tasks: history, truth and prediction of a few test windows (best model)
    tensorboard/           if train.tensorboard and TensorBoard is installed

**Resume** restores everything in ``last.pt`` and truncates the metric files to what they held when it was written,
so a run killed at any point (even with SIGKILL) and resumed ends with the same metrics as an uninterrupted one on
the same machine (CPU; tested, also for a kill in the middle of an epoch). Batches come from a sampler whose order
depends only on ``train.seed`` and the epoch (also in single-process runs), so a resume inside an epoch starts the
sampler ``k`` batches in and skips exactly the batches already done (exact with ``data.num_workers = 0`` or datasets
that draw no randomness of their own).

**Distributed**: under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP (gloo on CPU, nccl on CUDA);
``data.batch_size`` is the global batch, split over the processes (process ``r`` takes every ``world``-th example
of it from position ``r``: ``batch_size // world`` examples, one more on the first ``batch_size % world``; each
process's loss is weighted by its share so that every sequence counts equally, :class:`EpochBatchSampler`); rank 0
logs and writes checkpoints.

A NaN or inf loss or gradient norm, or a layer's :class:`~ptdssm.errors.NonFiniteError`, stops the run with
:class:`~ptdssm.errors.TrainingDiverged`; the last checkpoint written is the last good one.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader

from .._checks import ensure_writable_dir
from ..config import Config, config_from_dict, config_to_dict
from ..data import build_task, collate
from ..errors import CheckpointError, ConfigError, DataError, NonFiniteError, TrainingDiverged
from ..models import build_model
from .checkpoint import (
    atomic_save,
    atomic_write_text,
    best_payload,
    checkpoint_contents,
    last_payload,
    read_checkpoint,
)
from .distributed import any_rank, dist_setup, gather_objects, rng_state, seed_all, set_rng_state
from .evaluate import evaluate_model, make_eval_loader, model_inputs
from .metrics_log import MetricsLog, csv_fields
from .objective import Objective
from .optimizer import WarmupSchedule, build_optimizer
from .run import EpochBatchSampler, Run, TrainState

__all__ = ["Run", "TrainResult", "TrainState", "TrainingDiverged", "WarmupSchedule", "build_optimizer",
           "end_epoch", "final_test", "resume_or_fresh", "run_epoch", "save_last", "setup", "train", "validate"]


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; ``results`` is complete on all ranks)."""

    out_dir: Path
    results: dict[str, Any]
    model: nn.Module = field(repr=False)


def train(cfg: Config, *, resume: bool = False) -> TrainResult:
    """Train a model as configured, evaluate it on the test split, and write the run directory.

    Args:
        cfg: the resolved, validated config (``train.out`` is the run directory; default ``runs/<task>-<model>``).
        resume: continue from ``<out>/checkpoints/last.pt`` (exactly, see the module docstring). Without a
            checkpoint the run starts from scratch.

    Returns:
        :class:`TrainResult` with the run directory, the final results and the trained (unwrapped) model.

    Raises:
        ConfigError / DataError: bad config, missing data, a run directory that already holds a run (without
            ``resume``). CheckpointError: an unreadable ``last.pt``. TrainingDiverged: NaN/inf loss or gradients.
    """
    cfg = config_from_dict(config_to_dict(cfg))  # private, validated copy
    tc, dc = cfg.train, cfg.data
    default_out = f"runs/{dc.task}-{cfg.model.name}".replace(":", "-")
    out = Path(tc.out or default_out)
    cfg.train.out = str(out)
    rank, world, _, device, we_initialized = dist_setup(tc.device)
    run = None
    try:
        run = setup(cfg, out, rank, world, device, resume)
        state = resume_or_fresh(run, resume)
        while state.epoch < tc.epochs:
            record = run_epoch(run, state)
            validate(run, state, record)
            end_epoch(run, state, record)
        return final_test(run, state)
    finally:
        if run is not None:
            run.log.close()
        # Free the DDP wrapper (its reducer holds the gloo process group) *before* the group is destroyed: freed
        # afterwards, the group's destructor joins its worker threads while holding the GIL, and a worker that
        # still drops a finished all-reduce needs the GIL: the rank hangs at exit (seen under load with gloo).
        run = None
        gc.collect()
        if we_initialized and dist.is_initialized():
            dist.destroy_process_group()


def setup(cfg: Config, out: Path, rank: int, world: int, device: torch.device, resume: bool) -> Run:
    """Data, model (same seed on every rank), optimizer, schedule, loaders and metric files of a run."""
    tc, oc, dc = cfg.train, cfg.optim, cfg.data
    if rank == 0:
        ensure_writable_dir(out, "run directory (--out, config key 'train.out')")
    if dc.batch_size < world:
        raise ConfigError(f"config key 'data.batch_size' ({dc.batch_size}) is the global batch, split over the "
                          f"processes: it must be at least their number ({world})")
    if not resume and (out / "checkpoints" / "last.pt").exists():
        raise ConfigError(f"run directory {out} already holds a run; pass --resume to continue it or choose "
                          f"another --out (config key 'train.out')")
    if tc.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = False
    data = build_task(dc)
    info = data.info
    seed_all(tc.seed)
    model = build_model(cfg.model, info).to(device)
    optimizer = build_optimizer(model, oc)
    sampler = EpochBatchSampler(len(data.train), dc.batch_size, world=world, rank=rank,  # type: ignore[arg-type]
                                seed=tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    loader = DataLoader(data.train, batch_sampler=sampler, collate_fn=collate, num_workers=dc.num_workers,
                        generator=gen)
    steps = len(loader) if tc.max_steps_per_epoch is None else min(len(loader), tc.max_steps_per_epoch)
    if steps == 0:
        raise DataError(f"the training split of {info.name!r} has {len(data.train)} examples: "  # type: ignore[arg-type]
                        f"too few for one batch of {dc.batch_size} (config key 'data.batch_size')")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(
        int(round(oc.warmup_epochs * steps)), steps * tc.epochs, oc.schedule, oc.min_lr_ratio))
    eval_bs = max(1, dc.eval_batch_size or dc.batch_size)
    if rank == 0:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    objective = Objective(info)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Run(cfg=cfg, out=out, rank=rank, world=world, device=device, info=info, objective=objective, model=model,
               net=net, optimizer=optimizer, scheduler=scheduler, sampler=sampler, loader=loader, loader_gen=gen,
               steps_per_epoch=steps, val_loader=make_eval_loader(data.val, eval_bs, dc.num_workers),
               test_loader=make_eval_loader(data.test, eval_bs, dc.num_workers),
               log=MetricsLog(out, rank == 0, tc.tensorboard, csv_fields(objective.metric_names)),
               sizes=(len(data.train), len(data.val), len(data.test)))  # type: ignore[arg-type]


def resume_or_fresh(run: Run, resume: bool) -> TrainState:
    """The state in ``last.pt`` (model, optimizer, schedule, RNGs, counters restored; metric files cut back), or a
    fresh state. Writes ``config.yaml``."""
    cfg, state = run.cfg, TrainState()
    if resume and run.last_path.exists():
        ckpt = read_checkpoint(run.last_path, run.device, resume=True)
        with checkpoint_contents(run.last_path, "its config, weights and training state"):
            _check_resumable(cfg, config_from_dict(ckpt["config"]), run.last_path)
            _restore(run, state, ckpt)
        where = (f"in epoch {state.epoch + 1} after step {state.step_in_epoch} of {run.steps_per_epoch}"
                 if state.step_in_epoch else f"after epoch {state.epoch}")
        _log(f"resuming {run.out} {where} (step {state.global_step})", run.rank)
    else:
        if resume:
            _log(f"nothing to resume in {run.out}: starting a new run", run.rank)
        run.log.truncate({})
        torch.manual_seed(cfg.train.seed + 1000 * run.rank)  # per-rank dropout streams; weights are identical
    if run.is_main:
        atomic_write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), run.out / "config.yaml")
    n_train, n_val, n_test = run.sizes
    _log(f"ptdssm train: {cfg.model.name} on {run.info.name} (L={run.info.seq_len}), "
         f"{sum(p.numel() for p in run.model.parameters()):,} parameters, {n_train} train / {n_val} val / "
         f"{n_test} test, {run.world} process(es) on {run.device}, run directory {run.out}", run.rank)
    return state


def _restore(run: Run, state: TrainState, ckpt: dict[str, Any]) -> None:
    """Load ``last.pt``'s weights, optimizer, schedule, counters, RNG states into ``run`` and ``state`` (called
    inside :func:`checkpoint_contents`, so whatever does not fit is one error naming the file)."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    state.epoch, state.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
    state.step_in_epoch, state.epoch_time = int(ckpt["step_in_epoch"]), float(ckpt["epoch_time"])
    state.best, state.last_record = dict(ckpt["best"]), ckpt.get("last_record")
    state.saved = (state.epoch, state.step_in_epoch)
    if state.step_in_epoch:
        sums = ckpt["epoch_sums"]
        if sums is None or len(sums) != run.world:
            raise CheckpointError(f"cannot resume {run.last_path} in the middle of an epoch with {run.world} "
                                  f"process(es): it was written by {0 if sums is None else len(sums)}")
        state.sums = torch.tensor(sums[run.rank], dtype=torch.float64)
        examples = ckpt.get("epoch_examples")  # absent before it was saved: every batch so far was full
        state.examples = (int(examples[run.rank]) if examples is not None and len(examples) == run.world
                          else state.step_in_epoch * (run.cfg.data.batch_size // run.world))
    rng = ckpt["rng"]
    set_rng_state(rng[run.rank] if run.rank < len(rng) else rng[0])
    run.log.truncate(ckpt["metric_offsets"])  # required by read_checkpoint(resume=True)


def run_epoch(run: Run, state: TrainState) -> dict[str, Any]:
    """Train the rest of epoch ``state.epoch`` (from step ``state.step_in_epoch``); returns its epoch record and
    leaves ``state`` at the epoch boundary. Writes ``last.pt`` every ``train.checkpoint_every`` steps."""
    tc, epoch = run.cfg.train, state.epoch
    run.sampler.set_epoch(epoch, skip=state.step_in_epoch)
    run.loader_gen.manual_seed(tc.seed + epoch)  # worker seeds depend on the epoch only
    run.net.train()
    t0 = time.perf_counter() - state.epoch_time
    bar = _progress(run.steps_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", run.is_main and tc.progress)
    if bar is not None:
        bar.update(state.step_in_epoch)
    every = tc.checkpoint_every
    for batch in run.loader:
        if state.step_in_epoch >= run.steps_per_epoch:
            break
        loss = _train_step(run, state, batch, bar)
        state.epoch_time = time.perf_counter() - t0
        if bar is not None:
            bar.update(1)
            s = run.objective.summarize(state.sums)
            bar.set_postfix(loss=f"{s['loss']:.4f}", **{m: f"{s[m]:.3f}" for m in run.objective.metric_names},
                            refresh=False)
        if state.global_step % tc.log_every == 0:
            run.log.write({"kind": "step", "epoch": epoch + 1, "step": state.global_step, "loss": loss,
                           "lr": run.scheduler.get_last_lr()[0]})
        if every and state.global_step % every == 0 and state.step_in_epoch < run.steps_per_epoch:
            save_last(run, state)
    if bar is not None:
        bar.close()
    # stats sums and the sequence count, summed over processes in one collective (on the device: nccl needs it)
    totals = torch.cat([state.sums, torch.tensor([float(state.examples)], dtype=torch.float64)])
    if run.world > 1:
        totals = totals.to(run.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    sums, examples = totals[:4], float(totals[4])
    elapsed = time.perf_counter() - t0
    train_metrics = run.objective.summarize(sums)
    record: dict[str, Any] = {"kind": "epoch", "epoch": epoch + 1, "step": state.global_step,
                              "lr": run.scheduler.get_last_lr()[0],
                              **{f"train_{k}": v for k, v in train_metrics.items() if k != "n"},
                              "time_s": round(elapsed, 3),
                              "samples_per_s": round(examples / max(elapsed, 1e-9), 1)}
    state.epoch, state.step_in_epoch, state.epoch_time, state.examples = epoch + 1, 0, 0.0, 0
    state.sums = torch.zeros(4, dtype=torch.float64)
    return record


def _train_step(run: Run, state: TrainState, batch: dict[str, Any], bar: Any) -> float:
    """One optimizer step on ``batch``; updates the counters and the epoch sums; returns the batch loss."""
    inputs = model_inputs(batch, run.device)
    y = batch["y"].to(run.device)
    bad: float | None = None
    try:
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.cfg.train.precision == "bf16"):
            out = run.net(**inputs)
        loss = run.objective.loss(out, y)
        aux = getattr(run.model, "aux_loss", None)  # a model's own extra loss term (SpaceTime's closed loop)
        if isinstance(aux, torch.Tensor):
            loss = loss + aux
        bad = None if bool(torch.isfinite(loss)) else float(loss.detach())
    except NonFiniteError:  # a layer met a non-finite activation
        bad = float("nan")
    if any_rank(bad is not None, run.world, run.device):
        _diverged(run, state, bad, bar)
    run.optimizer.zero_grad(set_to_none=True)
    weight = run.sampler.weight(state.step_in_epoch)  # unequal shares of the global batch: every sequence counts once
    (loss if weight == 1.0 else loss * weight).backward()
    gnorm = _grad_norm(run.model, run.cfg.optim.grad_clip)
    if any_rank(not bool(torch.isfinite(gnorm)), run.world, run.device):
        _diverged(run, state, float(gnorm), bar, what="gradient norm")
    run.optimizer.step()
    run.scheduler.step()
    state.global_step += 1
    state.step_in_epoch += 1
    state.sums += run.objective.stats(out, y).cpu()
    state.examples += int(y.shape[0])  # sequences (stats count scored positions or scalars)
    return float(loss.detach())


def validate(run: Run, state: TrainState, record: dict[str, Any]) -> None:
    """On evaluation epochs: validation metrics into ``record``; ``best.pt`` when the validation score improves
    (:meth:`Objective.score`: accuracy, ties broken by lower loss; regression: lower loss)."""
    tc, epoch = run.cfg.train, record["epoch"]
    if epoch % tc.eval_every and epoch != tc.epochs:
        return
    val = evaluate_model(run.net, run.val_loader, run.device, precision=tc.precision, objective=run.objective)
    record.update({f"val_{k}": v for k, v in val.items() if k != "n"})
    if run.objective.is_better(val, state.best["score"]):
        state.best = {"epoch": epoch, "score": list(run.objective.score(val)), "val": val}
        state.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        if run.is_main:
            atomic_save(best_payload(config=config_to_dict(run.cfg), task_info=asdict(run.info),
                                     model=run.model.state_dict(), epoch=epoch, val=val), run.best_path)


def end_epoch(run: Run, state: TrainState, record: dict[str, Any]) -> None:
    """Log the epoch record and write ``last.pt`` at the epoch boundary."""
    run.log.write(record)
    state.last_record = record
    _log(_epoch_line(record, run.cfg.train.epochs, run.objective.metric_names), run.rank)
    save_last(run, state)


def save_last(run: Run, state: TrainState) -> None:
    """Write ``last.pt`` (rank 0; every rank takes part in gathering the RNG states and epoch sums)."""
    rng = gather_objects(rng_state(), run.world)
    sums: list | None = None
    examples: list | None = None
    if state.step_in_epoch:
        per_rank = gather_objects((state.sums.tolist(), state.examples), run.world)
        sums, examples = [s for s, _ in per_rank], [e for _, e in per_rank]
    if run.is_main:
        atomic_save(last_payload(
            config=config_to_dict(run.cfg), task_info=asdict(run.info), model=run.model.state_dict(),
            optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(), epoch=state.epoch,
            step_in_epoch=state.step_in_epoch, global_step=state.global_step, rng=rng, epoch_sums=sums,
            epoch_time=state.epoch_time, best=state.best, metric_offsets=run.log.offsets(),
            last_record=state.last_record, epoch_examples=examples), run.last_path)
    state.saved = (state.epoch, state.step_in_epoch)
    if run.world > 1:
        dist.barrier()


def final_test(run: Run, state: TrainState) -> TrainResult:
    """Test metrics of the last model and of the best-validation model; ``results.json``."""
    tc, obj = run.cfg.train, run.objective
    final = evaluate_model(run.net, run.test_loader, run.device, precision=tc.precision, objective=obj)
    best_test, best_epoch, best_val = final, int(state.best["epoch"]), state.best["val"]
    plot = _forecast_plot(run, best_epoch) if best_epoch in (-1, tc.epochs) else None
    if best_epoch not in (-1, tc.epochs):
        best_state = state.best_state
        if best_state is None:  # resumed after the best epoch: every rank reads rank 0's best.pt
            ckpt = read_checkpoint(run.best_path, run.device, required=("epoch",))
            best_state = ckpt["model"]
            # validate() writes best.pt before end_epoch() writes last.pt: a run killed in between and resumed
            # holds a best.pt newer than the best that last.pt knows (if the redone epoch did not rewrite it, e.g.
            # on a non-deterministic resume). Report what best.pt holds: results.json describes the model tested.
            if int(ckpt["epoch"]) != best_epoch:
                _log(f"warning: {run.best_path} holds epoch {ckpt['epoch']} but last.pt's best validation epoch is "
                     f"{best_epoch} (a run killed between the two writes?); reporting best.pt's epoch", run.rank)
                best_epoch, best_val = int(ckpt["epoch"]), ckpt.get("val")
        last_state = {k: v.clone() for k, v in run.model.state_dict().items()}
        run.model.load_state_dict(best_state)
        best_test = evaluate_model(run.net, run.test_loader, run.device, precision=tc.precision, objective=obj)
        plot = _forecast_plot(run, best_epoch)
        run.model.load_state_dict(last_state)
    names = (*obj.metric_names, "loss")
    best_val = best_val or {}
    results = {"task": run.info.name, "model": run.cfg.model.name, "epochs": tc.epochs, "steps": state.global_step,
               "n_params": sum(p.numel() for p in run.model.parameters()), "world_size": run.world,
               "best_epoch": best_epoch, **{f"best_val_{k}": best_val.get(k) for k in names},
               **{f"test_{k}": best_test[k] for k in names}, **{f"final_test_{k}": final[k] for k in names},
               "test_n": final["n"]}
    if run.info.head == "forecast":
        results.update(lookback=run.info.seq_len, horizon=run.info.target_len, forecast_plot=plot)
    if run.is_main:
        run.log.write({"kind": "test", **results})
        atomic_write_text(json.dumps(results, indent=2) + "\n", run.out / "results.json")
        shown = " ".join(f"{k} {results[f'test_{k}']:.4f}" for k in names)
        _log(f"test {shown} (best validation epoch {best_epoch}); last model "
             + " ".join(f"{k} {results[f'final_test_{k}']:.4f}" for k in names)
             + f"; results in {run.out / 'results.json'}", run.rank)
    return TrainResult(run.out, results, run.model)


def _forecast_plot(run: Run, epoch: int) -> str | None:
    """``forecast.png`` in the run directory (rank 0, forecasting tasks): a few test windows' history, truth and
    prediction of the model being reported (:mod:`ptdssm.experiments.forecast`); ``None`` otherwise."""
    if not run.is_main or run.info.head != "forecast":
        return None
    from .forecast import write_forecast_plot

    title = f"{run.cfg.model.name} on {run.info.name}: test forecasts (best validation epoch {epoch})"
    try:
        return write_forecast_plot(run.model, run.test_loader.dataset, run.out / "forecast.png", device=run.device,
                                   title=title)
    except (AttributeError, TypeError, ValueError) as exc:  # e.g. a plug-in task's own dataset type
        _log(f"no forecast plot: {' '.join(str(exc).split())}", run.rank)
        return None


# train.* keys a resume must keep: they change the numbers (seed, precision, deterministic algorithms), the schedule
# (epochs, steps per epoch), which epochs validate and so the best checkpoint (eval_every), or the step records of
# metrics.jsonl (log_every). The others (out, device, progress, tensorboard, checkpoint_every) may change.
_RESUME_TRAIN_KEYS = ("epochs", "seed", "max_steps_per_epoch", "eval_every", "precision", "deterministic",
                      "log_every")


def _check_resumable(cfg: Config, saved: Config, path: Path) -> None:
    """Resuming requires the same model, data and optimizer settings and the train keys of
    :data:`_RESUME_TRAIN_KEYS` (other train.* may differ, e.g. progress)."""
    a, b = config_to_dict(cfg), config_to_dict(saved)
    for section in ("model", "data", "optim"):
        for key in a[section]:
            if section == "data" and key in ("data_dir", "num_workers"):
                continue
            if a[section][key] != b[section].get(key):
                raise ConfigError(f"cannot resume {path}: config key '{section}.{key}' is {a[section][key]!r} but "
                                  f"the checkpoint has {b[section].get(key)!r}")
    for key in _RESUME_TRAIN_KEYS:
        if a["train"][key] != b["train"].get(key):
            raise ConfigError(f"cannot resume {path}: config key 'train.{key}' is {a['train'][key]!r} but the "
                              f"checkpoint has {b['train'].get(key)!r}")


def _grad_norm(model: nn.Module, clip: float) -> torch.Tensor:
    """Total gradient 2-norm, clipping to ``clip`` first when ``clip > 0``."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return torch.zeros(())
    return nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))


def _diverged(run: Run, state: TrainState, value: float | None, bar: Any, what: str = "loss") -> None:
    if bar is not None:
        bar.close()
    epoch, step = state.epoch + 1, state.global_step + 1
    run.log.write({"kind": "diverged", "epoch": epoch, "step": step, what.replace(" ", "_"): value})
    if state.saved is None:
        where = "no checkpoint was written yet"
    elif state.saved[1] == 0:
        where = f"the last good checkpoint is {run.last_path} (epoch {state.saved[0]})"
    else:
        where = (f"the last good checkpoint is {run.last_path} (epoch {state.saved[0] + 1}, step {state.saved[1]} "
                 f"of {run.steps_per_epoch})")
    shown = "NaN/inf" if value is None else value
    raise TrainingDiverged(f"non-finite {what} ({shown}) at epoch {epoch}, step {step} (on some process): "
                           f"stopping; {where}. Try a lower optim.lr / optim.ssm_lr or set optim.grad_clip.")


def _log(msg: str, rank: int) -> None:
    if rank == 0:
        print(msg, file=sys.stderr, flush=True)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.5)


def _epoch_line(r: dict[str, Any], epochs: int, names: tuple[str, ...]) -> str:
    s = f"epoch {r['epoch']}/{epochs}: train loss {r['train_loss']:.4f}" + "".join(
        f" {m} {r[f'train_{m}']:.4f}" for m in names)
    if "val_loss" in r:
        s += f" | val loss {r['val_loss']:.4f}" + "".join(f" {m} {r[f'val_{m}']:.4f}" for m in names)
    return s + f" | {r['time_s']:.1f}s, {r['samples_per_s']:.0f} seq/s"
