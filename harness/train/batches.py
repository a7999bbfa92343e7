"""Batches for the model: normalised log-mels from a feature cache entry plus each clip's metadata.

Training, evaluation, `ascbench predict` and the data benchmark all read through `FeatureBatches`,
so the normalisation and the metadata context a model sees are the same everywhere.
"""
from __future__ import annotations

import numpy as np
import torch

from ascmamba import MetaContext

from ..data.prepare import ClipArrays


class FeatureBatches:
    """Clips of a memory-mapped (clips, frames, mels) array, normalised per mel, on `device`."""

    def __init__(self, features: np.ndarray, mean: torch.Tensor, std: torch.Tensor, device: torch.device):
        self.features = features
        self.mean, self.std = mean, std
        self.device = device

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mels (batch, frames, mels) as the model takes them: normalised, (batch, 1, frames, mels)."""
        return ((x - self.mean) / self.std).unsqueeze(1)

    def batch(self, arrays: ClipArrays, idx: np.ndarray) -> tuple[torch.Tensor, MetaContext]:
        """Normalised log-mels (batch, 1, frames, mels) and metadata of clips `idx` of `arrays`."""
        rows = arrays.rows[idx]
        order = np.argsort(rows)  # sorted reads are kinder to the memory map
        x = torch.from_numpy(np.asarray(self.features[rows[order]], dtype=np.float32))
        x = self.normalise(x[torch.from_numpy(np.argsort(order))])
        ctx = MetaContext(torch.from_numpy(arrays.cities[idx]), torch.from_numpy(arrays.times[idx]))
        return x.to(self.device, non_blocking=True), ctx.to(self.device)

    def chunks(self, arrays: ClipArrays, batch_size: int):
        """Every clip of `arrays` in order, `batch_size` at a time (evaluation and prediction)."""
        for start in range(0, len(arrays), batch_size):
            yield self.batch(arrays, np.arange(start, min(start + batch_size, len(arrays))))
