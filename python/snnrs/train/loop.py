"""The training loop: :func:`fit` drives a distillation method for a number of epochs.

One step: a uint8 batch ``[B, C, H, W]`` -> the device -> floats in ``[0, 1]`` -> augmentation
-> normalisation -> ``method(images, labels)`` (under bf16 autocast on CUDA) -> backward of its
``"loss"`` -> optional gradient clipping -> optimiser step -> per-step cosine schedule with
linear warm-up -> optional EMA update of the student. After every epoch the network is tested,
the metrics row is logged and the checkpoint rewritten.

Exact resume: the batch order is a function of ``(seed, epoch)`` (``data.batches``), and the
generators (Python, NumPy, torch, and the augmentation's own) are re-seeded from
``(seed, epoch, rank)`` at every epoch start; with model, optimiser, schedule, scaler and EMA
restored from the last epoch's checkpoint, a resumed run computes exactly what an
uninterrupted one does.

Example:
    >>> WarmupCosine(warmup_steps=2, total_steps=6)(0), WarmupCosine(2, 6)(2)
    (0.5, 1.0)
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm  # text bars everywhere (tqdm.auto wants ipywidgets in Jupyter)

from .. import data, evaluate, models
from ..distill import Method
from ..files import FolderLock
from . import checkpoint
from .config import TrainConfig
from .distributed import Context, all_reduce_sum, barrier, wrap
from .metrics import MetricsLog
from .plan import Plan


@dataclass
class Run:
    """What the phases of one job share: the config, this process's place, the data, the
    run folder and its metrics log, the TensorBoard writer (rank 0, when asked for), the
    folder's lock (rank 0), the teacher loaded from ``cfg.teacher`` (if any) and the job's
    :class:`~snnrs.train.plan.Plan`, which times the epochs for the time-left estimate."""

    cfg: TrainConfig
    ctx: Context
    splits: data.DataSplits
    normalize: nn.Module
    transform: nn.Module  # training batches: augmentation, normalisation, erasing
    directory: Path
    log: MetricsLog
    writer: Any = None  # torch.utils.tensorboard.SummaryWriter
    lock: FolderLock | None = None  # rank 0's hold on the run folder
    teacher: nn.Module | None = None  # the network of cfg.teacher, loaded and checked
    plan: Plan | None = None

    def checkpoint_path(self, phase: str) -> Path:
        return self.directory / "checkpoints" / f"{phase}.pt"

    def data_info(self) -> dict[str, Any]:
        """What a checkpoint records of the data: the dataset and its normalisation."""
        return {"dataset": self.splits.name, "mean": self.normalize.mean.flatten().tolist(),
                "std": self.normalize.std.flatten().tolist()}


@dataclass
class WarmupCosine:
    """The learning-rate factor at a step: linear warm-up to 1 over ``warmup_steps``, then a
    cosine decay to 0 at ``total_steps``. Plain data, so the scheduler's state saves as such."""

    warmup_steps: int
    total_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig, lr: float | None = None,
                   ) -> torch.optim.Optimizer:
    """SGD (Nesterov's momentum unless ``cfg.nesterov`` is off) or AdamW at ``lr`` (default
    ``cfg.lr``); weight decay on conv and linear weights (every parameter of two or more
    dimensions) or, with ``weight_decay_on="all"``, on every parameter."""
    decayed = [p for p in params if cfg.weight_decay_on == "all" or p.ndim > 1]
    rest = [p for p in params if not any(p is q for q in decayed)]
    groups = [{"params": decayed, "weight_decay": cfg.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``auto`` is bf16 on CUDA and full precision on the CPU."""
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ValueError("amp 'fp16' (float16 autocast with a gradient scaler, as some "
                         "recipes set it) needs a CUDA device; pass --amp off or --amp bf16 "
                         "to train on the CPU")
    mode = ("bf16" if device.type == "cuda" else "off") if cfg.amp == "auto" else cfg.amp
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[mode]


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (the global generator user code draws from)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A distinct seed per ``(seed, epoch, rank)``."""
    return (seed * 1_000_003 + epoch) * 1_009 + rank


def fit(run: Run, phase: str, method: Method, epochs: int, spec: models.ModelSpec,
        ) -> nn.Module:
    """Trains ``method`` for ``epochs`` epochs (continuing from the phase's checkpoint when the
    config says ``resume`` and one exists) and returns the network to evaluate: the student's
    EMA when ``cfg.ema`` is set, else the student.

    ``phase`` names the checkpoint (``checkpoints/<phase>.pt``) and the metrics rows; ``spec``
    (the student's) is saved with it, and rebuilds the network.
    """
    cfg, ctx = run.cfg, run.ctx
    steps = check_trainable(cfg, ctx, run.splits.train)
    if cfg.sync_bn and ctx.distributed:
        nn.SyncBatchNorm.convert_sync_batchnorm(method)
    method.to(ctx.device)
    model = wrap(method, ctx)  # the frozen teacher is outside what DDP wraps
    params = method.parameters_to_train()
    optimizer = make_optimizer(params, cfg, cfg.teacher_lr if phase == "teacher" else None)
    scheduler = LambdaLR(optimizer, WarmupCosine(round(cfg.warmup_epochs * steps),
                                                 epochs * steps))
    dtype = amp_dtype(cfg, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=dtype is torch.float16)
    ema = (AveragedModel(method.student, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                         use_buffers=True) if cfg.ema else None)
    path = run.checkpoint_path(phase)
    history: list[dict[str, Any]] = []
    if cfg.resume and path.exists():
        ckpt = checkpoint.load(path, ctx.device)
        _check_resumable(ckpt, cfg, phase, path)
        restorers = {"method": method.load_state_dict, "optimizer": optimizer.load_state_dict,
                     "scheduler": scheduler.load_state_dict, "scaler": scaler.load_state_dict,
                     "ema": None if ema is None else ema.load_state_dict,
                     "rng": checkpoint.set_rng_state}
        for name, restore in restorers.items():
            if restore is not None:
                checkpoint.restore(ckpt, name, restore, path)
        history = checkpoint.entry(ckpt, "history", path)
        if ctx.is_main and history:
            print(f"{phase}: resumed from {path} after epoch {len(history)}", flush=True)
    if run.plan is not None:
        run.plan.resumed(phase, len(history))
    if ctx.is_main:
        run.log.rows = [r for r in run.log.rows if r["phase"] != phase]
        run.log.extend(history)
    net = ema.module if ema is not None else method.student
    for epoch in range(len(history), epochs):
        seed_everything(epoch_seed(cfg.seed, epoch, ctx.rank))
        method.start_epoch(epoch, epochs)
        t0 = time.perf_counter()
        parts = _train_epoch(run, f"{phase} {epoch + 1}/{epochs}", model, method, optimizer,
                             scheduler, scaler, ema, epoch, steps, dtype)
        seconds = time.perf_counter() - t0
        acc = evaluate.accuracy(net, run.splits.test, run.normalize,
                                batch_size=cfg.eval_batch_size, device=ctx.device)
        test_seconds = time.perf_counter() - t0 - seconds
        if run.plan is not None:
            run.plan.record(phase, seconds, test_seconds)
        row = {"phase": phase, "epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v for k, v in parts.items()}, "test_accuracy": acc,
               "seconds": seconds, "test_seconds": test_seconds,
               "images_per_second": steps * cfg.batch_size / seconds}
        history.append(row)
        if ctx.is_main:
            run.log.append(row)
            checkpoint.save(path, {
                "phase": phase, "epoch": epoch + 1, "epochs": epochs, "model": spec.to_dict(),
                "data": run.data_info(),
                "method": method.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "rng": checkpoint.rng_state(), "config": cfg.to_dict(), "history": history})
            _report(run, row, epochs)
        barrier(ctx)
    return net


def check_trainable(cfg: TrainConfig, ctx: Context, train: data.ImageSet) -> int:
    """The optimiser steps per epoch of ``cfg`` on ``train`` with ``ctx``'s processes; a
    ValueError for settings that only the device, the process count or the data can refuse
    (checked before a run writes anything)."""
    if cfg.sync_bn and ctx.distributed and ctx.device.type != "cuda":
        raise ValueError("sync_bn needs CUDA (torch's SyncBatchNorm); on the CPU each "
                         "process normalises its own share of the batch")
    amp_dtype(cfg, ctx.device)
    if cfg.batch_size % ctx.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} (the global batch) must be divisible by "
                         f"the number of processes, {ctx.world_size}")
    steps = data.num_batches(train, cfg.batch_size // ctx.world_size,
                             world_size=ctx.world_size, drop_last=True)
    if steps == 0:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {len(train)} training images")
    return steps


def out_of_memory_advice(cfg: TrainConfig, error: BaseException) -> str:
    """``error``'s first line and what to change: ``--memory min`` first, then the batch and T.

    Example:
        >>> advice = out_of_memory_advice(TrainConfig(), RuntimeError("CUDA out of memory."))
        >>> advice.split("; ")[0], "try --memory min" in advice
        ('CUDA out of memory', True)
    """
    first = (str(error).strip().splitlines() or ["out of memory"])[0].rstrip(".;: ")
    smaller = "a smaller --batch-size or --T"
    if cfg.memory == "min":
        return f"{first}; a training step at --memory min did not fit: try {smaller}"
    return (f"{first}; a training step at --memory {cfg.memory} did not fit: try --memory min "
            "(it keeps about 1 bit per neuron-step for one more forward a step, the same "
            f"gradients), then {smaller}")


def _train_epoch(run: Run, desc: str, model: nn.Module, method: Method,
                 optimizer: torch.optim.Optimizer, scheduler: LambdaLR,
                 scaler: torch.amp.GradScaler, ema: AveragedModel | None, epoch: int,
                 steps: int, dtype: torch.dtype | None) -> dict[str, float]:
    """One pass over the training set; the loss parts averaged over steps and ranks."""
    cfg, ctx = run.cfg, run.ctx
    method.train()
    generator = torch.Generator(ctx.device).manual_seed(epoch_seed(cfg.seed, epoch, ctx.rank))
    batches = data.batches(run.splits.train, cfg.batch_size // ctx.world_size, shuffle=True,
                           seed=cfg.seed, epoch=epoch, rank=ctx.rank,
                           world_size=ctx.world_size, drop_last=True)
    quiet = not (ctx.is_main and sys.stderr.isatty())
    totals: dict[str, Tensor] = {}
    good = skipped = 0
    for step, (images, labels) in enumerate(tqdm(batches, desc, total=steps, leave=False,
                                                 disable=quiet)):
        x = data.to_float(images.to(ctx.device, non_blocking=True))  # [B, C, H, W] in [0, 1]
        x, labels = run.transform(x, generator), labels.to(ctx.device, non_blocking=True)
        try:
            with torch.autocast(ctx.device.type, dtype=dtype, enabled=dtype is not None):
                parts = model(x, labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["loss"]).backward()  # a non-finite step's gradients are dropped
        except torch.OutOfMemoryError as e:
            raise torch.OutOfMemoryError(out_of_memory_advice(cfg, e)) from e
        problem = _nonfinite(parts, _clip_and_norm(method, cfg, scaler, optimizer))
        for k in parts.keys() - totals.keys():  # every rank keeps the same keys, skipped or not
            totals[k] = torch.zeros((), device=parts[k].device)
        if problem is not None:
            if not cfg.skip_nonfinite:
                raise NonFiniteError(f"{desc.split()[0]} epoch {epoch + 1} step {step + 1}/"
                                     f"{steps}: {problem}; training stopped, its last checkpoint "
                                     "is intact (resume with a lower --lr, --clip-grad, or "
                                     "--skip-nonfinite)")
            skipped += 1
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            continue
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(method.student)
        good += 1
        for k, v in parts.items():
            totals[k] = totals[k] + v.detach().float()
    keys = sorted(totals)  # the same order on every rank
    counts = all_reduce_sum(ctx, torch.tensor([good, skipped], device=ctx.device))
    sums = all_reduce_sum(ctx, torch.stack([totals[k] for k in keys]))
    result = dict(zip(keys, (sums / max(int(counts[0]), 1)).tolist(), strict=True))
    if cfg.skip_nonfinite:
        result["skipped_steps"] = float(counts[1])
    return result


class NonFiniteError(ValueError):
    """A loss or gradient that is not finite stopped training."""


def _clip_and_norm(method: Method, cfg: TrainConfig, scaler: torch.amp.GradScaler,
                   optimizer: torch.optim.Optimizer) -> Tensor | None:
    """Clips the gradient (when asked) and returns its norm; None under float16 loss scaling,
    where an infinite gradient is the scaler's to handle (it skips the step)."""
    params = method.parameters_to_train()
    if scaler.is_enabled():
        if cfg.clip_grad:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        return None
    if cfg.clip_grad:
        return nn.utils.clip_grad_norm_(params, cfg.clip_grad)
    return nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])


def _nonfinite(parts: dict[str, Tensor], grad_norm: Tensor | None) -> str | None:
    """What is NaN or infinite, the loss part that caused it first, described; None when all
    is finite (one host sync for the loss parts and the gradient norm together)."""
    values = [v.detach().float().reshape(()) for v in parts.values()]
    values = torch.stack(values if grad_norm is None else [*values, grad_norm.float()])
    if bool(torch.isfinite(values).all()):
        return None
    bad = [(k, float(v)) for k, v in zip(parts, values, strict=False) if not math.isfinite(v)]
    if not bad:
        return f"the gradient norm is {float(values[-1])}"
    name, value = next((b for b in bad if b[0] != "loss"), bad[0])  # the part that caused it
    return f"the loss part {name!r} is {value}"


def _check_resumable(ckpt: dict[str, Any], cfg: TrainConfig, phase: str, path: Path) -> None:
    """A checkpoint continues only the run that wrote it: same phase, same settings (apart
    from where and how the run is watched)."""
    if checkpoint.entry(ckpt, "phase", path) != phase:
        raise checkpoint.CheckpointError(f"{path} holds phase {ckpt['phase']!r}, not {phase!r}")
    free, default = TrainConfig.resumable(), TrainConfig().to_dict()
    saved = {**default, **checkpoint.entry(ckpt, "config", path)}  # older runs: later settings
    now = cfg.to_dict()                                                # at their defaults
    changed = sorted(k for k in now if k not in free and saved.get(k) != now[k])
    if changed:
        raise ValueError(f"cannot resume {path}: settings differ from the checkpoint's: "
                         + ", ".join(f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in changed))


def _report(run: Run, row: dict[str, Any], epochs: int) -> None:
    """Prints the epoch's line: its loss parts, test accuracy, learning rate, the epoch's
    seconds (training and test) and the whole job's estimated time left; the accuracy is
    ``val`` when the run tests on a validation split (``val_fraction``)."""
    parts = " ".join(f"{k[6:]} {v:.4f}" for k, v in row.items()
                     if k.startswith("train_") and k != "train_loss")
    seconds = row["seconds"] + row.get("test_seconds", 0.0)
    left = run.plan.left_text() if run.plan is not None else ""
    split = "val" if run.cfg.val_fraction else "test"
    print(f"{row['phase']} epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f} "
          f"({parts}) {split} {100 * row['test_accuracy']:.2f}% lr {row['lr']:.3g} "
          f"{seconds:.1f}s" + (f", {left}" if left else ""), flush=True)
    if run.writer is not None:
        for k, v in row.items():
            if isinstance(v, float):
                run.writer.add_scalar(f"{row['phase']}/{k}", v, row["epoch"])
        run.writer.flush()
