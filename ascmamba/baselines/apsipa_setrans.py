"""The APSIPA ASC 2025 official baseline (SE-Trans), re-implemented layer for layer.

Audio path: BatchNorm over the 64 mel bins, two SE conv blocks (1->64->128
channels, each two 3x3 conv + BN + squeeze-excitation + ReLU, then a 2x2
average pool), adaptive pooling to 16 time steps x 1 frequency, one post-norm
transformer encoder layer (d=128, 8 heads, feed-forward 32, ReLU, dropout 0.1)
over those 16 steps, and a max over time. Metadata path: a 16-dim city
embedding and a 16-dim projection of the time features are concatenated with
the 128-dim audio embedding, fused by Linear(160, 128) + ReLU, then the
classifier.

Deliberate departures from the official code, all on the metadata inputs:
- its time features were always zero (a parse failure swallowed by a bare
  `except`); here the 8 cyclic features of `MetaContext.time` are projected;
- its city table had no slot for cities outside its list; here index 0 is a
  trained unknown-city slot (via `MetadataEncoder`, with city dropout) and any
  out-of-range index maps to it;
- `MetadataEncoder` uses SiLU after the time projection where the official
  code used ReLU, so every metadata model here shares one encoder.
"""
from __future__ import annotations

import torch
from torch import nn

from ..frontend import APSIPA_FRONT_END
from ..interface import ASCModel, MetaContext
from ..layers import Attention
from ..metadata import MetadataEncoder
from ..registry import register_model


class SqueezeExcite(nn.Module):
    """Channel gates from the global average: bias-free bottleneck MLP with reduction 16."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class SEBlock(nn.Module):
    """Two (3x3 conv -> BN -> SE -> ReLU) layers, then a 2x2 average pool."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.se1 = SqueezeExcite(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se2 = SqueezeExcite(cout)
        self.pool = nn.AvgPool2d(2)
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight)  # official init; the SE layers keep PyTorch's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.se1(self.bn1(self.conv1(x))))
        x = torch.relu(self.se2(self.bn2(self.conv2(x))))
        return self.pool(x)


class PostNormEncoderLayer(nn.Module):
    """`nn.TransformerEncoderLayer` semantics (post-norm, ReLU) on `Attention`, so its matmuls are counted."""

    def __init__(self, dim: int, heads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.attn = Attention(dim, heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim_feedforward), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim_feedforward, dim)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop1(self.attn(x)))
        return self.norm2(x + self.drop2(self.ff(x)))


class SETrans(ASCModel):
    """SE-CNN + transformer audio embedding (128-d), fused with city and time before the classifier."""

    def __init__(
        self,
        num_classes: int = 10,
        num_cities: int = 8,
        n_mels: int = 64,
        heads: int = 8,
        dim_feedforward: int = 32,
        n_layers: int = 1,
        dropout: float = 0.1,
        time_steps: int = 16,
        city_dim: int = 16,
        time_dim: int = 16,
        city_dropout: float = 0.1,
        use_metadata: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.uses_metadata = use_metadata
        self.n_mels = n_mels
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.block1 = SEBlock(1, 64)
        self.block2 = SEBlock(64, 128)
        self.to_steps = nn.AdaptiveAvgPool2d((time_steps, 1))
        self.encoder = nn.Sequential(
            *(PostNormEncoderLayer(128, heads, dim_feedforward, dropout) for _ in range(n_layers))
        )
        self.metadata = MetadataEncoder(num_cities, city_dim, time_dim, city_dropout) if use_metadata else None
        if self.metadata is not None:
            self.fusion = nn.Sequential(nn.Linear(128 + self.metadata.out_dim, 128), nn.ReLU())
        else:
            self.fusion = nn.Identity()
        self.fc = nn.Linear(128, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform fusion and classifier as in the official code; attention and SE keep nn.Linear defaults."""
        for m in (*self.fusion.modules(), self.fc):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, mel: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        """(batch, 128) audio embedding; metadata joins only in the head, as in the official model."""
        if mel.shape[-1] != self.n_mels:
            raise ValueError(f"SE-Trans was built for {self.n_mels} mel bins, got {mel.shape[-1]}")
        x = self.bn0(mel.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        x = self.block2(self.block1(x))  # (B, 128, T/4, F/4)
        x = self.to_steps(x).flatten(2).transpose(1, 2)  # (B, time_steps, 128)
        x = self.encoder(x)
        return x.amax(dim=1)

    def forward_head(self, features: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        if self.metadata is not None and context is not None:
            features = self.fusion(torch.cat([features, self.metadata(context)], dim=-1))
        return self.fc(features)


@register_model(
    "apsipa_setrans",
    family="official",
    front_end=APSIPA_FRONT_END,
    expected_params=361_738,
    defaults={"num_classes": 10, "num_cities": 8},
    description="APSIPA ASC 2025 official SE-Trans baseline with city + cyclic time fusion",
)
def build_apsipa_setrans(**kwargs) -> SETrans:
    return SETrans(**kwargs)
