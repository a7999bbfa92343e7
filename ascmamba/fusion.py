"""How metadata (city, time) enters ASCMamba, selectable by name.

- none: audio only.
- concat: metadata vector joined to the pooled audio embedding before the head.
- film: feature-wise affine modulation of the encoder output.
- cln: conditional layer norm inside every Mamba path (scale and shift from metadata).
- cross_attn: audio tokens attend to a city token and a time token.
All modulations start as the identity (zero-initialised), so fusion can only
be learned in, never scrambles the audio path at initialisation.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Attention

FUSIONS = ("none", "concat", "film", "cln", "cross_attn")


def check_fusion(name: str) -> str:
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; expected one of {', '.join(FUSIONS)}")
    return name


class Modulation(nn.Module):
    """Predicts (1 + gamma, beta) of `channels` from a condition vector; identity at init."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gamma, beta = self.proj(cond).chunk(2, dim=-1)
        return 1.0 + gamma, beta


class ConditionalLayerNorm(nn.Module):
    """LayerNorm over the last (channel) axis whose scale and shift also depend on metadata.

    Input (batch, ..., channels); `cond` is (batch, cond_dim) or None (plain LayerNorm).
    """

    def __init__(self, channels: int, cond_dim: int | None):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.modulation = Modulation(cond_dim, channels) if cond_dim else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(x)
        if self.modulation is None or cond is None:
            return x
        scale, shift = self.modulation(cond)
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return x * scale.view(shape) + shift.view(shape)


class MetadataCrossAttention(nn.Module):
    """Audio tokens (batch, n, channels) attend to [city token, time token] with a residual."""

    def __init__(self, channels: int, city_dim: int, time_dim: int, heads: int = 4):
        super().__init__()
        heads = heads if channels % heads == 0 else 1
        self.city = nn.Linear(city_dim, channels)
        self.time = nn.Linear(time_dim, channels)
        self.norm = nn.LayerNorm(channels)
        self.attn = Attention(channels, heads)
        nn.init.zeros_(self.attn.out.weight)
        nn.init.zeros_(self.attn.out.bias)

    def forward(self, tokens: torch.Tensor, city: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        memory = torch.stack([self.city(city), self.time(time)], dim=1)
        return tokens + self.attn(self.norm(tokens), memory)
