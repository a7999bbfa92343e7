"""One trial: semi-supervised training of any registered model, reporting every epoch.

The tuner and the ablation runner repeat this hundreds of times, so it is reproducible (every
epoch reseeds from (seed, epoch), so a resumed run replays the same data order, augmentation and
dropout as an uninterrupted one), resumable from any epoch's checkpoint, and it counts epochs
across pseudo-label stages so ASHA sees one monotone budget. `Trial.run` is the one epoch loop:
`ascbench train`, the Ray trainable and the bare-Optuna benchmark differ only in what they do with
each epoch. The jobs around it live in batches, optim, pseudo, evaluate and checkpoint.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ascmamba import MetaContext, create_model
from ascmamba.complexity import count_params

from ..data.handle import ROLES, DataHandle, prepare_handle
from ..data.prepare import ClipArrays
from ..errors import UserError
from . import pseudo
from .augment import augment
from .batches import FeatureBatches
from .checkpoint import (
    CHECKPOINT_VERSION,
    STATE_KEYS,
    TrialState,
    epoch_seed,
    load_checkpoint,
    load_weights,
    reseed,
    rng_state,
    set_rng_state,
)
from .config import RunConfig, stage_epochs, to_dict
from .evaluate import Evaluation
from .optim import make_optimizer, make_scheduler, start_epoch

# what a driver does with each epoch: (metrics, final report after the last epoch else None) -> go on?
EpochSink = Callable[[dict, "dict | None"], bool]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available")
    return torch.device(name)


class Trial:
    """`Trial(cfg, data=handle)` with the driver's `DataHandle`; `Trial(cfg)` prepares its own."""

    def __init__(self, cfg: RunConfig, data: DataHandle | None = None, progress: bool = False):
        self.cfg = cfg
        self.boundaries = np.cumsum(stage_epochs(cfg)).tolist()  # epoch index where each stage ends
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        self.data = data if data is not None else prepare_handle(cfg, progress=progress)
        self.train_set, self.val_set, self.pool, self.test_set = (self.data.sets[role] for role in ROLES)
        self.batches = FeatureBatches(self.data.features(), torch.from_numpy(self.data.norm_mean),
                                      torch.from_numpy(self.data.norm_std), self.device)
        reseed(cfg.seed)
        self.model_kwargs = {
            **cfg.model.overrides(),
            "num_classes": len(self.data.classes),
            "num_cities": max(1, len(self.data.vocabulary)),
        }
        self.model = create_model(cfg.model.name, **self.model_kwargs).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg.train)
        self.scheduler = make_scheduler(self.optimizer, cfg.train)
        self.amp = cfg.train.amp and self.device.type == "cuda"
        self.evaluation = Evaluation(self.model, self.batches, self.data.classes, set(self.data.vocabulary.to_list()),
                                     cfg.train.eval_batch_size, self.amp)
        self.state = TrialState()
        self.best_model_state: dict | None = None

    @property
    def done(self) -> bool:
        return self.state.epoch >= self.cfg.train.epochs

    def stage_of(self, epoch: int) -> int:
        """Stage (0, 1, 2) that epoch index `epoch` (0-based) belongs to."""
        return int(np.searchsorted(self.boundaries, epoch, side="right"))

    # ------------------------------------------------------------------ training
    def _label_pool(self, step: int) -> None:
        ids, labels, summary = pseudo.label_pool(self.pool, self.evaluation.predict_proba, self.data.pool_truth,
                                                 self.cfg.pseudo, step, len(self.data.classes))
        self.state.pseudo_ids, self.state.pseudo_labels = ids, labels
        self.state.pseudo_steps.append(summary)

    def _training_batch(self, arrays: ClipArrays, weights: np.ndarray, idx: np.ndarray,
                        generator: torch.Generator) -> tuple[torch.Tensor, MetaContext, torch.Tensor, torch.Tensor]:
        """Augmented log-mels, metadata, smoothed soft targets and loss weights of clips `idx`."""
        t, k = self.cfg.train, len(self.data.classes)
        x, ctx = self.batches.batch(arrays, idx)
        y = F.one_hot(torch.from_numpy(arrays.labels[idx]), k).float()
        w = torch.from_numpy(weights[idx])
        if t.label_smoothing > 0:
            y = y * (1 - t.label_smoothing) + t.label_smoothing / k
        x, y, w = augment(x, y, w, t, generator)
        return x, ctx, y.to(self.device), w.to(self.device)

    def _step(self, x: torch.Tensor, ctx: MetaContext, y: torch.Tensor, w: torch.Tensor, where: str) -> float:
        """One optimiser and scheduler step on a batch; its weighted loss."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x, ctx)
        loss_per_clip = torch.sum(-y * F.log_softmax(logits.float(), dim=-1), dim=-1)
        loss = (loss_per_clip * w).sum() / w.sum()
        if not torch.isfinite(loss.detach()).item():
            # raise rather than train on: the tuner retries the trial from its last checkpoint
            # (up to budget.max_failures), then marks it failed; `ascbench train` stops here
            raise FloatingPointError(f"non-finite training loss ({float(loss.detach())}) in {where} "
                                     f"(lr {self.cfg.train.lr:g}, model {self.cfg.model.name})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def _train_epoch(self, epoch: int) -> dict:
        t = self.cfg.train
        seed = epoch_seed(self.cfg.seed, epoch)
        reseed(seed)
        generator = torch.Generator().manual_seed(seed)
        arrays, weights = pseudo.with_pseudo_labels(self.train_set, self.pool, self.state.pseudo_ids,
                                                    self.state.pseudo_labels, self.cfg.pseudo.weight)
        order = torch.randperm(len(arrays), generator=generator).numpy()
        n_batches = math.ceil(len(order) / t.batch_size)   # the handle guarantees training clips
        start_epoch(self.scheduler, epoch, n_batches)
        self.model.train()
        loss_sum, data_time = 0.0, 0.0
        for b in range(n_batches):
            idx = order[b * t.batch_size:(b + 1) * t.batch_size]
            start = time.perf_counter()
            batch = self._training_batch(arrays, weights, idx, generator)
            data_time += time.perf_counter() - start
            loss_sum += self._step(*batch, f"epoch {epoch + 1}/{t.epochs}, batch {b + 1}/{n_batches}") * len(idx)
        return {"train/loss": loss_sum / len(order), "train/clips": len(order), "time/data_s": data_time}

    def _validate(self, epoch: int, stage: int, metrics: dict) -> dict:
        """Validation after epoch `epoch`: keep the model (and its test figures) when it improves."""
        report = self.evaluation.report(self.val_set)
        self.state.epoch = epoch + 1
        if report["macro_acc"] > self.state.best_macro_acc:
            self.state.best_macro_acc = report["macro_acc"]
            self.state.best_epoch = self.state.epoch
            self.best_model_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.state.best_test = self.evaluation.test_scalars(self.test_set)
        metrics.update({
            "epoch": self.state.epoch, "stage": stage, "val/macro_acc": report["macro_acc"], "val/acc": report["acc"],
            "val/log_loss": report["log_loss"], "val/best_macro_acc": self.state.best_macro_acc,
            "pseudo/kept": len(self.state.pseudo_ids), "lr": self.optimizer.param_groups[0]["lr"],
        })
        return report

    def epochs(self) -> Iterator[dict]:
        """Train the remaining epochs, yielding the metrics of each as soon as it is done."""
        while not self.done:
            epoch = self.state.epoch
            stage = self.stage_of(epoch)
            if epoch > 0 and epoch in self.boundaries[:-1]:
                self._label_pool(step=stage)
            start = time.perf_counter()
            metrics = self._train_epoch(epoch)
            metrics["bn/recalibrated_batches"] = self.evaluation.recalibrate_batchnorm(
                self.train_set, epoch_seed(self.cfg.seed, epoch) + 1, self.cfg.train.bn_recalibration_batches)
            report = self._validate(epoch, stage, metrics)
            metrics["time/epoch_s"] = time.perf_counter() - start
            metrics.update({f"val/{k}": report[k] for k in ("seen_macro_acc", "unseen_macro_acc") if k in report})
            metrics.update(self.state.best_test)
            if self.state.pseudo_steps and "accuracy_kept" in self.state.pseudo_steps[-1]:
                metrics["pseudo/accuracy"] = self.state.pseudo_steps[-1]["accuracy_kept"]
            self.state.history.append(metrics)
            yield metrics

    def run(self, on_epoch: EpochSink) -> dict | None:
        """The epoch loop of every driver: train the remaining epochs, handing each epoch's metrics to
        `on_epoch`, with the final report after the last epoch (computed before the driver stores
        that epoch, so a driver that stores the last epoch has the final report too). `on_epoch`
        returning False stops the trial (a pruner). A trial resumed from its last epoch's checkpoint
        hands that epoch again. Returns the final report, None when stopped before the last epoch."""
        if self.done and self.state.history:
            final = self.final_report()
            on_epoch(self.state.history[-1], final)
            return final
        final = None
        for metrics in self.epochs():
            final = self.final_report() if self.done else None
            if not on_epoch(metrics, final):
                return final
        return final

    # ------------------------------------------------------------------ checkpoints
    def inference_bundle(self, model_state: dict | None = None) -> dict:
        """What `ascbench predict` needs: weights, how to rebuild the model, classes, cities, features."""
        return {
            "version": CHECKPOINT_VERSION,
            "model_name": self.cfg.model.name,
            "model_kwargs": self.model_kwargs,
            "model_state": model_state if model_state is not None else self.model.state_dict(),
            "classes": list(self.data.classes),
            "cities": self.data.vocabulary.to_list(),
            "front_end": self.data.front_end.to_dict(),
            "seconds": float(self.data.seconds),
            "norm_mean": self.batches.mean,
            "norm_std": self.batches.std,
            "config": to_dict(self.cfg),
            "params": count_params(self.model),
        }

    def state_dict(self) -> dict:
        return {
            **self.inference_bundle(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "stage": self.stage_of(max(0, self.state.epoch - 1)),
            "best_model_state": self.best_model_state,
            **self.state.to_dict(),
            "rng": rng_state(),
            "split": self.data.split.to_dict(),
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        """Resume from `state` (a `state_dict()` saved by a run of the same config); `source`
        names the file in the one-line refusal of anything else."""
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise UserError(f"{source}: refused: not a training state (no {missing[0]!r}); "
                            "resume needs the last.pt of a run with this config")
        if state.get("version") != CHECKPOINT_VERSION:
            raise UserError(f"{source}: a training state of checkpoint version {state.get('version')}, this "
                            f"ascbench resumes version {CHECKPOINT_VERSION}; start the run again in another folder")
        if state.get("config") != to_dict(self.cfg):
            raise UserError(f"{source}: written by a run with a different config; refusing to resume")
        load_weights(self.model, state["model_state"], source, f"model {self.cfg.model.name}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best_model_state = state["best_model_state"]
        self.state = TrialState.from_dict(state)
        set_rng_state(state["rng"])

    def resume(self, path: Path) -> None:
        """Continue from the checkpoint file at `path`."""
        self.load_state_dict(load_checkpoint(path), source=str(path))

    def final_report(self) -> dict:
        """Final metrics of the validation-chosen checkpoint: its validation report (the selection
        figures) and its test report (the figures to publish), with clip-level predictions of both."""
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.best_model_state is not None:
            self.model.load_state_dict(self.best_model_state)
        out = self.evaluation.reports_with_predictions({"val": self.val_set, "test": self.test_set})
        self.model.load_state_dict(current)
        return {
            "best_epoch": self.state.best_epoch,
            "epochs": self.state.epoch,
            **out,
            "last": self.state.history[-1] if self.state.history else {},
            "pseudo_steps": self.state.pseudo_steps,
            "data": self.data.describe(),
            "params": count_params(self.model),
            "seed": self.cfg.seed,
        }
