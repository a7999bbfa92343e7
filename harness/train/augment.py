"""Batch augmentations on log-mels: SpecAugment-style masks and mixup, driven by an explicit generator
so that a seed fixes them and a resumed run replays them exactly."""
from __future__ import annotations

import torch

from .config import TrainConfig


def spec_mask(x: torch.Tensor, time_masks: int, time_frac: float, freq_masks: int, freq_bins: int,
              generator: torch.Generator) -> torch.Tensor:
    """Zero random time and frequency bands per clip of x (batch, 1, frames, mels); returns a new tensor."""
    b, _, frames, mels = x.shape
    keep = torch.ones(b, frames, mels, device=x.device, dtype=x.dtype)
    # (axis length, masks, widest mask, where the band's missing axis goes in keep): time, then frequency
    for size, masks, max_width, other in ((frames, time_masks, max(1, int(time_frac * frames)), 2),
                                          (mels, freq_masks, freq_bins, 1)):
        idx = torch.arange(size, device=x.device)
        for _ in range(masks):
            width = torch.randint(0, max_width + 1, (b,), generator=generator).to(x.device)
            start = (torch.rand(b, generator=generator).to(x.device) * (size - width + 1)).long()
            band = (idx[None] >= start[:, None]) & (idx[None] < (start + width)[:, None])
            keep = keep * (~band).unsqueeze(other)
    return x * keep[:, None]


def mixup_pairs(batch: int, alpha: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A partner permutation and per-clip weights lam in [0.5, 1], so each clip keeps its majority.

    lam comes from Beta(alpha, alpha) on the global RNG, which the trainer reseeds every epoch.
    """
    perm = torch.randperm(batch, generator=generator)
    lam = torch.distributions.Beta(alpha, alpha).sample((batch,))
    return perm, torch.maximum(lam, 1 - lam)


def augment(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, t: TrainConfig,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch (log-mels, soft targets, loss weights) after the masks and mixup `t` asks for."""
    if t.time_masks or t.freq_masks:
        x = spec_mask(x, t.time_masks, t.time_mask_frac, t.freq_masks, t.freq_mask_bins, generator)
    if t.mixup_alpha > 0 and len(x) > 1 and torch.rand(1, generator=generator).item() < t.mixup_prob:
        perm, lam = mixup_pairs(len(x), t.mixup_alpha, generator)
        lam_x = lam.view(-1, 1, 1, 1).to(x.device)
        x = lam_x * x + (1 - lam_x) * x[perm.to(x.device)]
        y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
        w = lam * w + (1 - lam) * w[perm]
    return x, y, w
