"""The one batch format and model interface shared by every model family.

Every model takes a log-mel tensor (batch, 1, frames, mels) and an optional
`MetaContext`; audio-only models ignore the context, so the training loop,
tuner and ablation runner never special-case a family.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .metadata import TIME_FEATURES, UNKNOWN_CITY


@dataclass
class MetaContext:
    """Recording metadata for a batch.

    city: (batch,) int64 city indices; 0 (`UNKNOWN_CITY`) for a city never seen in training.
    time: (batch, TIME_FEATURES) float cyclic time-of-recording features.
    """

    city: torch.Tensor
    time: torch.Tensor

    def __post_init__(self) -> None:
        if self.city.dim() != 1:
            raise ValueError(f"MetaContext.city must be (batch,), got shape {tuple(self.city.shape)}")
        if self.time.dim() != 2 or self.time.shape[1] != TIME_FEATURES:
            raise ValueError(
                f"MetaContext.time must be (batch, {TIME_FEATURES}), got shape {tuple(self.time.shape)}"
            )
        if self.city.shape[0] != self.time.shape[0]:
            raise ValueError("MetaContext.city and MetaContext.time disagree on the batch size")

    def to(self, device: torch.device | str) -> MetaContext:
        return MetaContext(self.city.to(device), self.time.to(device))

    @classmethod
    def unknown(cls, batch: int, device: torch.device | str | None = None) -> MetaContext:
        """A context that carries no information: unknown city, all-zero time."""
        return cls(
            torch.full((batch,), UNKNOWN_CITY, dtype=torch.long, device=device),
            torch.zeros(batch, TIME_FEATURES, device=device),
        )


class ASCModel(nn.Module):
    """Base class of every registered model.

    Subclasses implement `forward_features` (log-mel + context -> embedding) and
    `forward_head` (embedding + context -> logits) and set `uses_metadata`.
    """

    uses_metadata: bool = False
    num_classes: int

    def forward_features(self, mel: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, mel: torch.Tensor, context: MetaContext | None = None) -> torch.Tensor:
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise ValueError(f"expected a log-mel batch of shape (batch, 1, frames, mels), got {tuple(mel.shape)}")
        if self.uses_metadata and context is None:
            context = MetaContext.unknown(mel.shape[0], mel.device)
        if not self.uses_metadata:
            context = None
        return self.forward_head(self.forward_features(mel, context), context)
