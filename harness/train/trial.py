"""One trial: semi-supervised training of any registered model, reporting every epoch.

The tuner and the ablation runner repeat this hundreds of times, so it is
reproducible (every epoch reseeds from (seed, epoch), so a resumed run replays the
same data order, augmentation and dropout as an uninterrupted one), resumable from
any epoch's checkpoint, and it counts epochs across pseudo-label stages so ASHA sees
one monotone budget.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ascmamba import MetaContext, create_model
from ascmamba.complexity import count_params

from ..data.handle import DataHandle, prepare_handle
from ..data.prepare import ClipArrays
from ..errors import UserError
from . import pseudo
from .augment import mixup_pairs, spec_mask
from .batchnorm import recalibrate_batchnorm
from .checkpoint import load_weights
from .config import RunConfig, stage_epochs, to_dict
from .metrics import classification_report

CHECKPOINT_VERSION = 1
TEST_SCALARS = ("macro_acc", "acc", "log_loss", "seen_macro_acc", "unseen_macro_acc")


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**31 - 1)


def reseed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available")
    return torch.device(name)


class WarmupCosine:
    """Linear warm-up then cosine decay, as a function of fractional epochs (so the schedule
    does not depend on how many clips the pseudo-label stages add)."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_epochs: float, total_epochs: int):
        self.optimizer = optimizer
        self.warmup = warmup_epochs
        self.total = total_epochs
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.progress = 0.0

    def factor(self, progress: float) -> float:
        if self.warmup > 0 and progress < self.warmup:
            return (progress + 1e-3) / self.warmup
        span = max(1e-9, self.total - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - self.warmup) / span)))

    def set_progress(self, progress: float) -> None:
        self.progress = progress
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(progress)

    def state_dict(self) -> dict:
        return {"progress": self.progress, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = list(state["base_lrs"])
        self.set_progress(float(state["progress"]))


@dataclass
class TrialState:
    """Everything that changes between epochs; saved whole in every checkpoint."""

    epoch: int = 0                       # epochs completed
    best_macro_acc: float = -1.0
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    pseudo_ids: list[str] = field(default_factory=list)    # clips currently pseudo-labelled
    pseudo_labels: list[int] = field(default_factory=list)
    pseudo_steps: list[dict] = field(default_factory=list)  # summary of each labelling step
    best_test: dict = field(default_factory=dict)  # test scalars of the validation-chosen checkpoint


class Trial:
    def __init__(self, cfg: RunConfig, data: DataHandle | None = None, progress: bool = False):
        self.cfg = cfg
        self.stages = stage_epochs(cfg)
        self.boundaries = np.cumsum(self.stages).tolist()  # epoch index where each stage ends
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        self.data = data if data is not None else prepare_handle(cfg, progress=progress)
        self.train_set, self.val_set, self.pool, self.test_set = (
            self.data.sets[role] for role in ("train", "val", "unlabelled", "test"))
        self.features = self.data.features()
        self.mean, self.std = torch.from_numpy(self.data.norm_mean), torch.from_numpy(self.data.norm_std)

        reseed(cfg.seed)
        self.model_kwargs = {
            **cfg.model.overrides(),
            "num_classes": len(self.data.classes),
            "num_cities": max(1, len(self.data.vocabulary)),
        }
        self.model = create_model(cfg.model.name, **self.model_kwargs).to(self.device)
        # Biases, norms and the SSM's A_log and D (marked `_no_weight_decay`, as in mamba-ssm)
        # are not decayed: decay would pull A towards -1 and the skip D towards 0.
        params = list(self.model.parameters())
        no_decay_ids = {id(p) for p in params if p.dim() <= 1 or getattr(p, "_no_weight_decay", False)}
        decay = [p for p in params if id(p) not in no_decay_ids]
        no_decay = [p for p in params if id(p) in no_decay_ids]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.train.lr,
        )
        self.scheduler = WarmupCosine(self.optimizer, cfg.train.warmup_epochs, cfg.train.epochs)
        self.amp = cfg.train.amp and self.device.type == "cuda"
        self.state = TrialState()
        self.best_model_state: dict | None = None
        self.last_val_report: dict | None = None

    # ------------------------------------------------------------------ data
    def batch(self, arrays: ClipArrays, idx: np.ndarray) -> tuple[torch.Tensor, MetaContext]:
        """Normalised log-mels and metadata of clips `idx` of `arrays` on the trial's device: training,
        evaluation and the data benchmark all read through here."""
        rows = arrays.rows[idx]
        order = np.argsort(rows)  # sorted reads are kinder to the memory map
        x = torch.from_numpy(np.asarray(self.features[rows[order]], dtype=np.float32))
        x = x[torch.from_numpy(np.argsort(order))]
        x = ((x - self.mean) / self.std).unsqueeze(1)
        ctx = MetaContext(torch.from_numpy(arrays.cities[idx]), torch.from_numpy(arrays.times[idx]))
        return x.to(self.device, non_blocking=True), ctx.to(self.device)

    def _training_arrays(self) -> tuple[ClipArrays, np.ndarray, np.ndarray]:
        """Labelled training clips plus the current pseudo-labels, with labels and loss weights."""
        if not self.state.pseudo_ids:
            return self.train_set, self.train_set.labels, np.ones(len(self.train_set), dtype=np.float32)
        extra = replace(self.pool.select(self.state.pseudo_ids),
                        labels=np.asarray(self.state.pseudo_labels, dtype=np.int64))
        merged = self.train_set.concat(extra)
        weights = np.concatenate([
            np.ones(len(self.train_set), dtype=np.float32),
            np.full(len(extra), self.cfg.pseudo.weight, dtype=np.float32),
        ])
        return merged, merged.labels, weights

    # ------------------------------------------------------------------ stages
    def stage_of(self, epoch: int) -> int:
        """Stage (0, 1, 2) that epoch index `epoch` (0-based) belongs to."""
        return int(np.searchsorted(self.boundaries, epoch, side="right"))

    def _label_pool(self, step: int) -> None:
        p = self.cfg.pseudo
        if len(self.pool) == 0:
            self.state.pseudo_ids, self.state.pseudo_labels = [], []
            self.state.pseudo_steps.append({"step": step, "pool": 0, "kept": 0})
            return
        probs = self.predict_proba(self.pool)
        if p.mode == "one_step":
            tau, tau_session = 0.0, 0.0
        else:
            tau, tau_session = (p.tau1 if step == 1 else p.tau2), p.tau_session
        keep, pred = pseudo.select(probs, self.pool.sessions, tau, tau_session)
        summary = {"step": step, "tau": tau, "tau_session": tau_session,
                   **pseudo.summarise(keep, pred, self.data.pool_truth, len(self.data.classes))}
        self.state.pseudo_ids = [c for c, k in zip(self.pool.clip_ids, keep) if k]
        self.state.pseudo_labels = [int(c) for c, k in zip(pred, keep) if k]
        self.state.pseudo_steps.append(summary)

    # ------------------------------------------------------------------ loops
    def _train_epoch(self, epoch: int) -> dict:
        t = self.cfg.train
        seed = epoch_seed(self.cfg.seed, epoch)
        reseed(seed)
        generator = torch.Generator().manual_seed(seed)
        arrays, labels, weights = self._training_arrays()
        order = torch.randperm(len(labels), generator=generator).numpy()
        n_batches = max(1, math.ceil(len(order) / t.batch_size))
        k = len(self.data.classes)
        self.model.train()
        loss_sum, seen, data_time = 0.0, 0, 0.0
        for b in range(n_batches):
            idx = order[b * t.batch_size:(b + 1) * t.batch_size]
            if len(idx) == 0:
                continue
            self.scheduler.set_progress(epoch + b / n_batches)
            start = time.perf_counter()
            x, ctx = self.batch(arrays, idx)
            y = F.one_hot(torch.from_numpy(labels[idx]), k).float()
            w = torch.from_numpy(weights[idx])
            if t.label_smoothing > 0:
                y = y * (1 - t.label_smoothing) + t.label_smoothing / k
            if t.time_masks or t.freq_masks:
                x = spec_mask(x, t.time_masks, t.time_mask_frac, t.freq_masks, t.freq_mask_bins, generator)
            if t.mixup_alpha > 0 and len(idx) > 1 and torch.rand(1, generator=generator).item() < t.mixup_prob:
                perm, lam = mixup_pairs(len(idx), t.mixup_alpha, generator)
                lam_x = lam.view(-1, 1, 1, 1).to(x.device)
                x = lam_x * x + (1 - lam_x) * x[perm.to(x.device)]
                y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
                w = lam * w + (1 - lam) * w[perm]
            y, w = y.to(self.device), w.to(self.device)
            data_time += time.perf_counter() - start
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model(x, ctx)
            loss_per_clip = torch.sum(-y * F.log_softmax(logits.float(), dim=-1), dim=-1)
            loss = (loss_per_clip * w).sum() / w.sum()
            if not torch.isfinite(loss.detach()).item():
                # raise rather than train on: the tuner retries the trial from its last checkpoint
                # (up to budget.max_failures), then marks it failed; `ascbench train` stops here
                raise FloatingPointError(
                    f"non-finite training loss ({float(loss.detach())}) in epoch {epoch + 1}/{t.epochs}, "
                    f"batch {b + 1}/{n_batches} (lr {t.lr:g}, model {self.cfg.model.name})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
        self.scheduler.set_progress(epoch + 1)
        return {"train/loss": loss_sum / max(1, seen), "train/clips": seen, "time/data_s": data_time}

    def _recalibrate_batchnorm(self, epoch: int) -> int:
        """Precise BN on clean (unaugmented) labelled training clips, a fixed sample per epoch."""
        limit = self.cfg.train.bn_recalibration_batches
        if limit == 0:
            return 0
        bs = self.cfg.train.eval_batch_size
        rng = np.random.default_rng(epoch_seed(self.cfg.seed, epoch) + 1)   # consumes no global RNG state
        order = rng.permutation(len(self.train_set))[: limit * bs]
        batches = (order[i:i + bs] for i in range(0, len(order), bs))
        return recalibrate_batchnorm(self.model, batches, lambda _model, idx: self._forward(self.train_set, idx))

    def _forward(self, arrays: ClipArrays, idx: np.ndarray) -> torch.Tensor:
        """Logits of clips `idx` in the model's current mode (evaluation and BN re-estimation)."""
        x, ctx = self.batch(arrays, idx)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.model(x, ctx)

    @torch.no_grad()
    def predict_proba(self, arrays: ClipArrays) -> np.ndarray:
        self.model.eval()
        out = []
        bs = self.cfg.train.eval_batch_size
        for start in range(0, len(arrays), bs):
            logits = self._forward(arrays, np.arange(start, min(start + bs, len(arrays))))
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.data.classes)), dtype=np.float32)

    def evaluate(self, arrays: ClipArrays) -> dict:
        probs = self.predict_proba(arrays)
        seen = set(self.data.vocabulary.to_list())
        return classification_report(probs, arrays.labels, self.data.classes, arrays.locations, seen)

    def _test_scalars(self) -> dict:
        """Test figures of the model as it is now, only when validation has just chosen it: every
        epoch's row then carries the test score of the checkpoint chosen so far, never a test maximum."""
        if len(self.test_set) == 0:
            return {}
        report = self.evaluate(self.test_set)
        return {f"test/{k}": report[k] for k in TEST_SCALARS if k in report}

    def epochs(self) -> Iterator[dict]:
        """Train the remaining epochs, yielding the metrics of each as soon as it is done."""
        total = self.cfg.train.epochs
        while self.state.epoch < total:
            epoch = self.state.epoch
            stage = self.stage_of(epoch)
            if epoch > 0 and epoch in self.boundaries[:-1]:
                self._label_pool(step=stage)
            start = time.perf_counter()
            metrics = self._train_epoch(epoch)
            metrics["bn/recalibrated_batches"] = self._recalibrate_batchnorm(epoch)
            report = self.evaluate(self.val_set)
            self.last_val_report = report
            self.state.epoch = epoch + 1
            if report["macro_acc"] > self.state.best_macro_acc:
                self.state.best_macro_acc = report["macro_acc"]
                self.state.best_epoch = self.state.epoch
                self.best_model_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                self.state.best_test = self._test_scalars()
            metrics.update({
                "epoch": self.state.epoch,
                "stage": stage,
                "val/macro_acc": report["macro_acc"],
                "val/acc": report["acc"],
                "val/log_loss": report["log_loss"],
                "val/best_macro_acc": self.state.best_macro_acc,
                "pseudo/kept": len(self.state.pseudo_ids),
                "lr": self.optimizer.param_groups[0]["lr"],
                "time/epoch_s": time.perf_counter() - start,
            })
            for key in ("seen_macro_acc", "unseen_macro_acc"):
                if key in report:
                    metrics[f"val/{key}"] = report[key]
            metrics.update(self.state.best_test)
            if self.state.pseudo_steps and "accuracy_kept" in self.state.pseudo_steps[-1]:
                metrics["pseudo/accuracy"] = self.state.pseudo_steps[-1]["accuracy_kept"]
            self.state.history.append(metrics)
            yield metrics

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
            "norm_mean": self.mean,
            "norm_std": self.std,
            "config": to_dict(self.cfg),
            "params": count_params(self.model),
        }

    @staticmethod
    def state_dict_keys() -> tuple[str, ...]:
        return ("model_state", "config", "optimizer", "scheduler", "epoch", "best_macro_acc", "best_epoch",
                "best_model_state", "history", "pseudo_ids", "pseudo_labels", "pseudo_steps", "rng")

    def state_dict(self) -> dict:
        s = self.state
        return {
            **self.inference_bundle(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": s.epoch,
            "stage": self.stage_of(max(0, s.epoch - 1)),
            "best_macro_acc": s.best_macro_acc,
            "best_epoch": s.best_epoch,
            "best_model_state": self.best_model_state,
            "history": s.history,
            "pseudo_ids": list(s.pseudo_ids),
            "pseudo_labels": torch.tensor(s.pseudo_labels, dtype=torch.long),
            "pseudo_steps": s.pseudo_steps,
            "best_test": s.best_test,
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                    "numpy_pos": int(np.random.get_state()[2])},
            "split": self.data.split.to_dict(),
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        """Resume from `state` (a `state_dict()` saved by a run of the same config); `source`
        names the file in the one-line refusal of anything else."""
        missing = [k for k in self.state_dict_keys() if k not in state]
        if missing:
            raise UserError(f"{source}: refused: not a training state (no {missing[0]!r}); "
                            "resume needs the last.pt of a run with this config")
        if state.get("config") != to_dict(self.cfg):
            raise UserError(f"{source}: written by a run with a different config; refusing to resume")
        load_weights(self.model, state["model_state"], source, f"model {self.cfg.model.name}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.state = TrialState(
            epoch=int(state["epoch"]),
            best_macro_acc=float(state["best_macro_acc"]),
            best_epoch=int(state["best_epoch"]),
            history=list(state["history"]),
            pseudo_ids=list(state["pseudo_ids"]),
            pseudo_labels=state["pseudo_labels"].tolist(),
            pseudo_steps=list(state["pseudo_steps"]),
            best_test=dict(state.get("best_test", {})),
        )
        self.best_model_state = state["best_model_state"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate((3, tuple(rng["python"]), None))
        np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), int(rng["numpy_pos"]), 0, 0.0))

    def final_report(self) -> dict:
        """Final metrics of the validation-chosen checkpoint: its validation report (the selection
        figures) and its test report (the figures to publish), with clip-level predictions of both."""
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.best_model_state is not None:
            self.model.load_state_dict(self.best_model_state)
        seen = set(self.data.vocabulary.to_list())
        out: dict = {}
        for name, arrays in (("val", self.val_set), ("test", self.test_set)):
            if len(arrays) == 0:
                continue
            probs = self.predict_proba(arrays)
            out[name] = classification_report(probs, arrays.labels, self.data.classes, arrays.locations, seen)
            # clip-level predictions, for paired tests (McNemar) across runs
            out[f"{name}_predictions"] = {"clip_id": list(arrays.clip_ids), "true": arrays.labels.tolist(),
                                          "pred": probs.argmax(axis=1).tolist()}
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
