"""Optimisation of a trial: AdamW with decay only where it belongs, and torch's `LambdaLR` stepped
once per batch on a warm-up + cosine schedule in fractional epochs."""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig


def make_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.AdamW:
    """AdamW where biases, norms and the SSM's A_log and D (marked `_no_weight_decay`, as in
    mamba-ssm) are not decayed: decay would pull A towards -1 and the skip D towards 0."""
    params = list(model.parameters())
    no_decay_ids = {id(p) for p in params if p.dim() <= 1 or getattr(p, "_no_weight_decay", False)}
    decay = [p for p in params if id(p) not in no_decay_ids]
    no_decay = [p for p in params if id(p) in no_decay_ids]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=t.lr)


class WarmupCosine:
    """The `LambdaLR` factor: linear warm-up then cosine decay, as a function of fractional epochs,
    so the schedule does not depend on how many clips the pseudo-label stages add.

    Step s of epoch e (which has `batches` steps and starts at step `first_step`) is at
    e + (s - first_step) / batches epochs; `start_epoch` sets those before each epoch. As a callable
    object its attributes are saved in the scheduler's `state_dict`, so a resumed run continues
    the same schedule.
    """

    def __init__(self, warmup_epochs: float, total_epochs: int):
        self.warmup = warmup_epochs
        self.total = total_epochs
        self.epoch, self.first_step, self.batches = 0, 0, 1

    def start_epoch(self, epoch: int, batches: int, step: int) -> None:
        self.epoch, self.first_step, self.batches = epoch, step, batches

    def __call__(self, step: int) -> float:
        progress = self.epoch + (step - self.first_step) / self.batches
        if self.warmup > 0 and progress < self.warmup:
            return (progress + 1e-3) / self.warmup
        span = max(1e-9, self.total - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - self.warmup) / span)))


def make_scheduler(optimizer: torch.optim.Optimizer, t: TrainConfig) -> LambdaLR:
    """Step it after every optimiser step; call `scheduler.lr_lambdas[0].start_epoch` before each epoch
    (`start_epoch` below)."""
    return LambdaLR(optimizer, WarmupCosine(t.warmup_epochs, t.epochs))


def start_epoch(scheduler: LambdaLR, epoch: int, batches: int) -> None:
    """Tell the schedule that epoch `epoch` of `batches` steps begins at the scheduler's current step."""
    scheduler.lr_lambdas[0].start_epoch(epoch, batches, scheduler.last_epoch)
