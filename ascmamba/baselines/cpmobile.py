"""CP-Mobile CNN as in the DCASE 2024/2025 Task 1 baseline (CPJKU), about 61k parameters.

A two-conv stride-4 stem, three stages of inverted-bottleneck blocks (1x1 expand,
3x3 depthwise, 1x1 project) and a classifier that is a 1x1 conv to the classes
followed by BatchNorm and global average pooling, so the network has no linear
layer at all. Defaults follow the DCASE recipe: base 32 channels, channel
multiplier 1.8, expansion rate 2.1, blocks (3, 2, 1), strides b3=(1, 2) and
b4=(2, 1) on (frequency, time). As there, a block is residual only when its
input and output widths match (a strided residual goes through a 3x3 average
pool), and nothing else carries a skip.

The registry entry declares the DCASE front end (32 kHz, 256 mels, 500-sample hop), under which
it has the published 61,148 parameters and 29.4 M MACs per 1-s clip; on the APSIPA data or the
synthetic corpus a config may name another front end (`data.front_end`), and the synthetic
corpus uses its 16 kHz one for every model. The optional GRN (global response
normalisation, ConvNeXt-V2) after each block is a CP-Mobile option that the
official baseline leaves off; it is off by default.
"""
from __future__ import annotations

import torch
from torch import nn

from ..frontend import DCASE_FRONT_END
from ..interface import ASCModel, MetaContext
from ..registry import register_model

Stride = tuple[int, int]
DEFAULT_STRIDES: dict[int, Stride] = {2: (1, 1), 3: (1, 2), 4: (2, 1)}


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: nearest multiple of `divisor`, never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBN(nn.Sequential):
    """Bias-free conv + BatchNorm (+ optional ReLU); padding keeps 'same' size before the stride."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | Stride = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2): channels compete by their spatial L2 energy.

    Both gains start at zero, so the layer is the identity at initialisation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class InvertedBottleneck(nn.Module):
    """1x1 expand -> 3x3 depthwise (carries the stride) -> 1x1 project, residual when widths match."""

    def __init__(self, cin: int, cout: int, expansion_rate: float, stride: Stride, grn: bool):
        super().__init__()
        hidden = make_divisible(cin * expansion_rate, 8)
        self.block = nn.Sequential(
            ConvBN(cin, hidden, 1),
            ConvBN(hidden, hidden, 3, stride=stride, groups=hidden),
            ConvBN(hidden, cout, 1, act=False),
        )
        self.use_shortcut = cin == cout
        strided = tuple(stride) != (1, 1)
        self.shortcut = nn.AvgPool2d(3, stride=stride, padding=1) if self.use_shortcut and strided else nn.Identity()
        self.grn = GRN() if grn else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if self.use_shortcut:
            y = y + self.shortcut(x)
        return self.act(self.grn(y))


class CPMobile(ASCModel):
    """Simplified CP-Mobile; input transposed to (batch, 1, mels, frames) so strides read (freq, time) as in DCASE."""

    uses_metadata = False

    def __init__(
        self,
        num_classes: int = 10,
        num_cities: int = 8,
        in_channels: int = 1,
        base_channels: int = 32,
        channels_multiplier: float = 1.8,
        expansion_rate: float = 2.1,
        n_blocks: tuple[int, ...] = (3, 2, 1),
        strides: dict[int, Stride] | None = None,
        grn: bool = False,
    ):
        super().__init__()
        del num_cities  # audio-only; accepted so every builder takes the same arguments
        self.num_classes = num_classes
        strides = DEFAULT_STRIDES if strides is None else strides
        base = make_divisible(base_channels, 8)
        widths = [base] + [make_divisible(base * channels_multiplier**s, 8) for s in range(len(n_blocks))]
        self.stem = nn.Sequential(
            ConvBN(in_channels, base // 4, 3, stride=2),
            ConvBN(base // 4, base, 3, stride=2),
        )
        blocks: list[nn.Module] = []
        block_id = 0
        for stage, count in enumerate(n_blocks):
            cin = widths[stage]
            for _ in range(count):
                block_id += 1
                stride = tuple(strides.get(block_id, (1, 1)))
                blocks.append(InvertedBottleneck(cin, widths[stage + 1], expansion_rate, stride, grn))
                cin = widths[stage + 1]
        self.stages = nn.Sequential(*blocks)
        self.classifier = ConvBN(widths[-1], num_classes, 1, act=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.apply(_init_weights)

    def forward_features(self, mel: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        """(batch, num_classes) pooled class map.

        The DCASE classifier normalises the per-position class map with BatchNorm
        before pooling; pooling first would change the training-time BN statistics,
        so the whole classifier stays here and the embedding is the class scores.
        """
        x = self.stages(self.stem(mel.transpose(2, 3)))
        return self.pool(self.classifier(x)).flatten(1)

    def forward_head(self, features: torch.Tensor, context: MetaContext | None) -> torch.Tensor:
        return features


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out")
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@register_model(
    "cpmobile",
    family="cnn",
    front_end=DCASE_FRONT_END,
    expected_params=61_148,
    defaults={"num_classes": 10, "num_cities": 8},
    description="CP-Mobile CNN, DCASE 2024/2025 Task 1 baseline layout (61k params)",
)
def build_cpmobile(**kwargs) -> CPMobile:
    return CPMobile(**kwargs)
