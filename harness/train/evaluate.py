"""Evaluation of a trial's model: class probabilities, classification reports, precise BN, and the
final report of the validation-chosen checkpoint.

Precise BN re-estimates BatchNorm running statistics before evaluating.

During training a BatchNorm layer keeps an exponential moving average (momentum 0.1) of
batch statistics, taken while the weights move. With few batches per epoch, as on small
challenge corpora and at the first ASHA rungs, that average still leans on stale early
batches and on its initial (0, 1): measured on the tiny synthetic corpus, CP-Mobile after
epoch 1 predicted a single class for every validation clip (10% macro accuracy) while the
same weights with re-estimated statistics scored 19%; after epoch 3, 27% vs. 36%. An HPO
harness that ranks trials on early epochs must not rank them on stale statistics.

The fix (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm") is one forward pass over
training clips with the current weights: every other layer in eval mode (no dropout), the
BatchNorm layers in train mode with a cumulative average, and no gradients.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from ascmamba import MetaContext

from ..data.prepare import ClipArrays
from .batches import FeatureBatches
from .metrics import classification_report

TEST_SCALARS = ("macro_acc", "acc", "log_loss", "seen_macro_acc", "unseen_macro_acc")
BatchNorm = nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable, forward: Callable[[nn.Module, object], object]) -> int:
    """Replace every BatchNorm layer's running mean and variance by the average over `batches`
    (each passed as `forward(model, batch)`); returns how many batches were used. The model
    is left in eval mode; layers without running statistics are untouched."""
    layers = [m for m in model.modules() if isinstance(m, BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None          # cumulative moving average: every batch weighs the same
        m.train()
    used = 0
    try:
        for batch in batches:
            forward(model, batch)
            used += 1
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
            m.eval()
    return used


class Evaluation:
    """Reads clips through `batches` into `model` in its current state; `seen_cities` are the
    cities of the training side (the rest are reported as unseen)."""

    def __init__(self, model: torch.nn.Module, batches: FeatureBatches, classes: tuple[str, ...],
                 seen_cities: set[str], batch_size: int, amp: bool):
        self.model, self.batches = model, batches
        self.classes, self.seen_cities = classes, seen_cities
        self.batch_size, self.amp = batch_size, amp

    def _logits(self, x: torch.Tensor, ctx: MetaContext) -> torch.Tensor:
        with torch.autocast(self.batches.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.model(x, ctx)

    def forward(self, arrays: ClipArrays, idx: np.ndarray) -> torch.Tensor:
        """Logits of clips `idx` in the model's current mode (evaluation and BN re-estimation)."""
        return self._logits(*self.batches.batch(arrays, idx))

    @torch.no_grad()
    def predict_proba(self, arrays: ClipArrays) -> np.ndarray:
        self.model.eval()
        out = [torch.softmax(self._logits(x, ctx).float(), dim=-1).cpu().numpy()
               for x, ctx in self.batches.chunks(arrays, self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def report(self, arrays: ClipArrays, probs: np.ndarray | None = None) -> dict:
        probs = self.predict_proba(arrays) if probs is None else probs
        return classification_report(probs, arrays.labels, self.classes, arrays.locations, self.seen_cities)

    def test_scalars(self, test_set: ClipArrays) -> dict:
        """Test figures of the model as it is now; called only when validation has just chosen it, so
        every epoch's row carries the test score of the checkpoint chosen so far, never a test maximum."""
        if len(test_set) == 0:
            return {}
        report = self.report(test_set)
        return {f"test/{k}": report[k] for k in TEST_SCALARS if k in report}

    def recalibrate_batchnorm(self, train_set: ClipArrays, seed: int, limit: int) -> int:
        """Precise BN on clean (unaugmented) labelled training clips, a sample fixed by `seed`."""
        if limit == 0:
            return 0
        bs = self.batch_size
        rng = np.random.default_rng(seed)   # consumes no global RNG state
        order = rng.permutation(len(train_set))[: limit * bs]
        batches = (order[i:i + bs] for i in range(0, len(order), bs))
        return recalibrate_batchnorm(self.model, batches, lambda _model, idx: self.forward(train_set, idx))

    def reports_with_predictions(self, sets: dict[str, ClipArrays]) -> dict:
        """Per named set: its report and its clip-level predictions (for paired tests across runs)."""
        out: dict = {}
        for name, arrays in sets.items():
            if len(arrays) == 0:
                continue
            probs = self.predict_proba(arrays)
            out[name] = self.report(arrays, probs)
            out[f"{name}_predictions"] = {"clip_id": list(arrays.clip_ids), "true": arrays.labels.tolist(),
                                          "pred": probs.argmax(axis=1).tolist()}
        return out
