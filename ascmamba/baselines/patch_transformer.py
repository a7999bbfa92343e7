"""A small patch-based spectrogram transformer in the style of AST / PaSST.

The log-mel is normalised per mel bin (BatchNorm, as the official APSIPA
baseline does), cut into 16x16 patches by a strided conv (stride 12: patches
overlap by 4 bins/frames, as in PaSST), and given PaSST's factorised positions:
one learned embedding per frequency row plus one per time column. Time
positions are learned for `max_frames` input frames and cropped to the
patches a shorter clip has; a longer clip raises ValueError rather than
interpolating, because interpolated positions were never trained.

Structured patchout (PaSST) drops whole time columns and frequency rows of
patches, the same ones for the whole batch, in training only: it regularises
and shortens the sequence, so training is cheaper than inference. A learned
CLS token (or mean pooling) summarises pre-norm `TransformerLayer`s.
"""
from __future__ import annotations

import torch
from torch import nn

from ..frontend import APSIPA_FRONT_END
from ..interface import ASCModel, MetaContext
from ..layers import TransformerLayer
from ..registry import register_model


def _num_patches(length: int, patch: int, stride: int) -> int:
    return (length - patch) // stride + 1


class PatchEmbed(nn.Module):
    """(batch, 1, frames, mels) -> (batch, dim, freq_patches, time_patches) by a strided conv."""

    def __init__(self, dim: int, patch: int, stride: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(1, dim, patch, stride=stride)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.shape[2] < self.patch:
            raise ValueError(f"need at least {self.patch} frames for one patch, got {mel.shape[2]}")
        return self.proj(mel.transpose(2, 3))  # convolve as (mels, frames): rows are frequency


def structured_patchout(x: torch.Tensor, time_frac: float, freq_frac: float) -> torch.Tensor:
    """Keep a random subset of time columns and frequency rows of (batch, dim, F, T) patches.

    The same columns/rows are dropped for the whole batch (so the result stays a
    dense tensor) and at least one of each is always kept.
    """
    _, _, f, t = x.shape
    keep_t = max(1, t - int(time_frac * t))
    keep_f = max(1, f - int(freq_frac * f))
    if keep_t < t:
        x = x[:, :, :, torch.randperm(t, device=x.device)[:keep_t].sort().values]
    if keep_f < f:
        x = x[:, :, torch.randperm(f, device=x.device)[:keep_f].sort().values, :]
    return x


class PatchTransformer(ASCModel):
    """Patch embedding + factorised positions + patchout + pre-norm transformer + CLS/mean pooling."""

    uses_metadata = False

    def __init__(
        self,
        num_classes: int = 10,
        num_cities: int = 8,
        n_mels: int = 64,
        max_frames: int = 1024,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        patch_size: int = 16,
        patch_stride: int = 12,
        patchout_time: float = 0.25,
        patchout_freq: float = 0.2,
        pooling: str = "cls",
        dropout: float = 0.1,
    ):
        super().__init__()
        del num_cities  # audio-only; accepted so every builder takes the same arguments
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if not (0.0 <= patchout_time < 1.0 and 0.0 <= patchout_freq < 1.0):
            raise ValueError("patchout fractions must lie in [0, 1)")
        self.num_classes = num_classes
        self.n_mels = n_mels
        self.max_frames = max_frames
        self.pooling = pooling
        self.patchout_time = patchout_time
        self.patchout_freq = patchout_freq
        self.input_norm = nn.BatchNorm2d(n_mels)
        self.patch_embed = PatchEmbed(dim, patch_size, patch_stride)
        freq_patches = _num_patches(n_mels, patch_size, patch_stride)
        time_patches = _num_patches(max_frames, patch_size, patch_stride)
        self.freq_pos = nn.Parameter(torch.zeros(1, dim, freq_patches, 1))
        self.time_pos = nn.Parameter(torch.zeros(1, dim, 1, time_patches))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pooling == "cls" else None
        self.pos_drop = nn.Dropout(dropout)
        self.layers = nn.Sequential(*(TransformerLayer(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """ViT-style: truncated-normal positions, tokens and linear weights (std 0.02), zero biases."""
        for p in (self.freq_pos, self.time_pos, self.cls_token):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def _tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames, mels) -> (batch, dim, F, T) patch grid with positions added."""
        frames, mels = mel.shape[2], mel.shape[3]
        if mels != self.n_mels:
            raise ValueError(f"PatchTransformer was built for {self.n_mels} mel bins, got {mels}")
        if frames > self.max_frames:
            raise ValueError(
                f"{frames} frames exceed max_frames={self.max_frames}; build the model with a larger max_frames"
            )
        x = self.input_norm(mel.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        x = self.patch_embed(x)
        return x + self.freq_pos + self.time_pos[:, :, :, : x.shape[3]]

    def forward_features(self, mel: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        """(batch, dim) CLS token or mean of all patch tokens after the final LayerNorm."""
        x = self._tokens(mel)
        if self.training:
            x = structured_patchout(x, self.patchout_time, self.patchout_freq)
        x = x.flatten(2).transpose(1, 2)  # (B, F*T, dim)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.norm(self.layers(self.pos_drop(x)))
        return x[:, 0] if self.cls_token is not None else x.mean(dim=1)

    def forward_head(self, features: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        return self.head(features)


@register_model(
    "patch_transformer",
    family="transformer",
    front_end=APSIPA_FRONT_END,
    expected_params=576_138,
    defaults={"num_classes": 10, "num_cities": 8},
    description="AST/PaSST-style patch transformer (16x16 patches, stride 12, structured patchout)",
)
def build_patch_transformer(**kwargs) -> PatchTransformer:
    return PatchTransformer(**kwargs)
