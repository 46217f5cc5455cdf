"""One training loop for every chapter.

Features: optimisers and schedules from :class:`TrainConfig` (SGD + step, SGD/AdamW +
cosine, linear warm-up), bf16 autocast on CUDA, gradient clipping, an epoch checkpoint
that makes an interrupted run resume to exactly the result of an uninterrupted one,
DDP under ``torchrun`` (gloo on CPU, NCCL on GPU) with the same
global batch as a single process, and a clear error on a non-finite loss.

Batch order is a pure function of ``(seed, epoch)``: each epoch draws a permutation from
its own generator, cuts it into global batches of ``batch_size`` (the last incomplete
batch is dropped), and DDP rank ``r`` of ``w`` takes the ``r``-th of ``w`` equal slices
of every global batch. Gradients are averaged over ranks, so the update equals the
single-process update on the whole global batch (for models without batch statistics).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from vidattn.core.distributed import DistInfo, dist_info
from vidattn.core.files import load_tensors, save_atomic
from vidattn.core.fingerprint import canonical_json

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe. ``milestones`` and ``warmup_epochs`` are in epochs."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"  # cosine | step | constant
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    clip_grad: float | None = None
    amp_bf16: bool = True  # only takes effect on CUDA
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; known: adamw, sgd")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; known: cosine, step, constant")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    clips_per_second: float = 0.0
    resumed_from_epoch: int = 0


def seed_everything(seed: int) -> None:
    """Seed torch's generators (CPU and CUDA)."""
    torch.manual_seed(seed)


def classification_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of ``model(video)`` against ``label``; logs accuracy."""
    logits = model(batch["video"])
    loss = F.cross_entropy(logits.float(), batch["label"])
    acc = (logits.argmax(-1) == batch["label"]).float().mean().item()
    return loss, {"acc": acc}


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base LR at optimiser step ``step`` (warm-up, then the schedule)."""
    epoch = step / steps_per_epoch
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        return (step + 1) / (cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    total = cfg.epochs * steps_per_epoch
    start = cfg.warmup_epochs * steps_per_epoch
    progress = min(1.0, (step - start) / max(1.0, total - start))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def epoch_batches(n: int, cfg: TrainConfig, epoch: int, info: DistInfo) -> list[torch.Tensor]:
    """Index batches this rank trains on in ``epoch``: a function of (seed, epoch) only."""
    if cfg.batch_size % info.world_size:
        raise ValueError(f"global batch {cfg.batch_size} is not divisible by world size {info.world_size}")
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g)
    per_rank = cfg.batch_size // info.world_size
    batches = []
    for b in range(n // cfg.batch_size):
        glob = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        batches.append(glob[info.rank * per_rank : (info.rank + 1) * per_rank])
    if not batches:
        raise ValueError(f"dataset of {n} clips is smaller than one batch of {cfg.batch_size}")
    return batches


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class Loop:
    """What one training run holds between steps: the model, ``net`` (the model or its DDP
    wrapper, what the loss calls), the optimiser, the schedule, the recipe and where it runs."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    cfg: TrainConfig
    device: torch.device
    info: DistInfo

    @property
    def use_amp(self) -> bool:
        return self.cfg.amp_bf16 and self.device.type == "cuda"


def resume(loop: Loop, path: Path, result: TrainResult) -> int:
    """Restore ``loop`` and ``result`` from the checkpoint at ``path``; the epoch to start at.

    The checkpoint must have been written under the same :class:`TrainConfig`.
    """
    state = load_tensors(path, "training checkpoint")
    cfg_json = canonical_json(loop.cfg)
    if state["config"] != cfg_json:
        raise ValueError(f"checkpoint {path} was written by a different TrainConfig; delete it or "
                         f"use another path (stored {state['config']}, now {cfg_json})")
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    result.history = [dict(zip(state["history_keys"], row.tolist())) for row in state["history"]]
    result.seconds = float(state["seconds"])
    result.resumed_from_epoch = int(state["epoch"])
    return result.resumed_from_epoch


def save_checkpoint(loop: Loop, path: Path, epoch: int, result: TrainResult) -> None:
    """Everything :func:`resume` needs to continue after ``epoch`` exactly as if never stopped."""
    keys = sorted(result.history[0])
    save_atomic(path, {
        "config": canonical_json(loop.cfg),
        "model": loop.model.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "epoch": epoch,
        "history_keys": keys,
        "history": torch.tensor([[h.get(k, float("nan")) for k in keys] for h in result.history],
                                dtype=torch.float64),
        "seconds": result.seconds,
    })


def train_step(loop: Loop, batch: dict[str, torch.Tensor], loss_fn: LossFn, where: str) -> dict[str, float]:
    """One optimiser step on ``batch``: the loss and its logs (a non-finite loss stops the run)."""
    with torch.autocast(loop.device.type, dtype=torch.bfloat16, enabled=loop.use_amp):
        loss, logs = loss_fn(loop.net, batch)
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"non-finite loss ({loss.item()}) at {where}: "
            f"lower the learning rate (now {loop.scheduler.get_last_lr()[0]:.3g}) or enable clip_grad")
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if loop.cfg.clip_grad:
        nn.utils.clip_grad_norm_(loop.model.parameters(), loop.cfg.clip_grad)
    loop.optimizer.step()
    loop.scheduler.step()
    return {"loss": loss.item(), **logs}


def train_epoch(loop: Loop, train_set: Dataset, epoch: int, loss_fn: LossFn, progress: bool = False
                ) -> tuple[dict[str, float], int]:
    """One epoch (0-based ``epoch``): its mean logs over batches and ranks, and the clips it trained on."""
    cfg, info = loop.cfg, loop.info
    loop.net.train()
    sums: dict[str, float] = {}
    batches = epoch_batches(len(train_set), cfg, epoch, info)
    it = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress or info.rank != 0, leave=False)
    for step, idx in enumerate(it):
        batch = _to(default_collate([train_set[int(i)] for i in idx]), loop.device)
        logs = train_step(loop, batch, loss_fn, f"epoch {epoch + 1}, step {step + 1}")
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
    row = {f"train_{k}": v / len(batches) for k, v in sums.items()}
    if info.world_size > 1:
        vals = torch.tensor(list(row.values()), dtype=torch.float64)
        dist.all_reduce(vals)
        row = dict(zip(row, (vals / info.world_size).tolist()))
    return row, len(batches) * (cfg.batch_size // info.world_size) * info.world_size


def build_loop(model: nn.Module, n: int, cfg: TrainConfig, device: torch.device) -> Loop:
    """The model on ``device``, its optimiser and its schedule for ``n`` clips (not yet DDP-wrapped)."""
    info = dist_info()
    model.to(device)
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = len(epoch_batches(n, cfg, 0, info))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, steps_per_epoch))
    return Loop(model, model, optimizer, scheduler, cfg, device, info)


def distribute(loop: Loop) -> None:
    """Under ``torchrun``, train through DDP (after any resume: DDP starts from rank 0's weights)."""
    if loop.info.world_size > 1:
        device = loop.device
        loop.net = nn.parallel.DistributedDataParallel(loop.model,
                                                       device_ids=[device.index] if device.type == "cuda" else None)


def fit(
    model: nn.Module,
    train_set: Dataset,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn = classification_loss,
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = False,
    epoch_end: Callable[[nn.Module, int], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_set`` and return its per-epoch history.

    ``checkpoint`` is a file: written at the end of every epoch (:func:`save_checkpoint`),
    and read at the start if it exists (:func:`resume`: the run continues after the last
    finished epoch; the stored config must match). ``stop_after_epoch`` simulates an
    interruption. ``epoch_end`` may return extra metrics (for example held-out accuracy)
    to log in the history.
    """
    loop = build_loop(model, len(train_set), cfg, torch.device(device))
    result = TrainResult()
    ckpt_path = Path(checkpoint) if checkpoint else None
    start_epoch = resume(loop, ckpt_path, result) if ckpt_path and ckpt_path.is_file() else 0
    distribute(loop)
    clips = 0
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        row, n = train_epoch(loop, train_set, epoch, loss_fn, progress)
        clips += n
        row["epoch"] = epoch + 1
        row["lr"] = loop.scheduler.get_last_lr()[0]
        if epoch_end is not None:
            row.update(epoch_end(model, epoch + 1))
        seconds = time.perf_counter() - t0
        result.seconds += seconds
        row["seconds"] = seconds
        result.history.append(row)
        if ckpt_path and loop.info.rank == 0:
            save_checkpoint(loop, ckpt_path, epoch + 1, result)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    if loop.info.world_size > 1:
        dist.barrier()
    trained = sum(h["seconds"] for h in result.history[result.resumed_from_epoch :])
    result.clips_per_second = clips / trained if trained > 0 else 0.0
    return result
