"""City and recording-time metadata: parsing, vocabulary and the learned encoder.

The official APSIPA 2025 baseline silently turned every time stamp into zeros
(a format mismatch behind a bare `except`); here a malformed time stamp is an
error, and the features are cyclic so 23:59 sits next to 00:00.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import torch
from torch import nn

UNKNOWN_CITY = 0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIME_FEATURE_NAMES = (
    "hour_sin", "hour_cos", "minute_sin", "minute_cos",
    "weekday_sin", "weekday_cos", "month_sin", "month_cos",
)
TIME_FEATURES = len(TIME_FEATURE_NAMES)


def parse_record_time(value: str) -> datetime:
    """Parse an official `record_time` (`YYYY-MM-DD HH:MM:SS`); raise ValueError naming the value."""
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
        raise ValueError(f"record_time {value!r} is not of the form YYYY-MM-DD HH:MM:SS")
    try:
        return datetime(*map(int, re.findall(r"\d+", text)))   # says what is wrong: "day is out of range for month"
    except ValueError as exc:   # the right form, an impossible date or time (2023-02-30, 25:00:00)
        raise ValueError(f"record_time {value!r} is not a real date and time ({exc}); "
                         "expected YYYY-MM-DD HH:MM:SS") from None


def time_features(value: str | datetime) -> np.ndarray:
    """Cyclic (sin, cos) features of hour of day, minute of hour, weekday and month."""
    t = value if isinstance(value, datetime) else parse_record_time(value)
    hour = t.hour + t.minute / 60.0
    angles = (
        2 * math.pi * hour / 24.0,
        2 * math.pi * (t.minute + t.second / 60.0) / 60.0,
        2 * math.pi * t.weekday() / 7.0,
        2 * math.pi * (t.month - 1) / 12.0,
    )
    out = np.empty(TIME_FEATURES, dtype=np.float32)
    for i, a in enumerate(angles):
        out[2 * i], out[2 * i + 1] = math.sin(a), math.cos(a)
    return out


def time_feature_matrix(values: Iterable[str]) -> np.ndarray:
    """(n, TIME_FEATURES) features for a column of record times."""
    rows = [time_features(v) for v in values]
    return np.stack(rows) if rows else np.zeros((0, TIME_FEATURES), dtype=np.float32)


class CityVocabulary:
    """Maps city names to indices 1..n; any city outside the training set maps to UNKNOWN_CITY (0)."""

    def __init__(self, cities: Iterable[str]):
        self.cities: tuple[str, ...] = tuple(sorted({str(c) for c in cities}))
        self._index = {c: i + 1 for i, c in enumerate(self.cities)}

    def __len__(self) -> int:
        return len(self.cities)

    def index(self, city: str) -> int:
        return self._index.get(str(city), UNKNOWN_CITY)

    def encode(self, cities: Sequence[str]) -> np.ndarray:
        return np.array([self.index(c) for c in cities], dtype=np.int64)

    def to_list(self) -> list[str]:
        return list(self.cities)


class MetadataEncoder(nn.Module):
    """Learned city embedding (with a trained unknown-city slot) plus a time projection.

    `city_dropout` replaces known cities by UNKNOWN_CITY during training so the
    unknown slot learns what to do for cities absent from training (the official
    evaluation set has six).
    """

    def __init__(self, num_cities: int, city_dim: int = 16, time_dim: int = 16, city_dropout: float = 0.1):
        super().__init__()
        if num_cities < 1:
            raise ValueError(f"num_cities must be >= 1, got {num_cities}")
        self.num_cities = num_cities
        self.city_dropout = city_dropout
        self.city = nn.Embedding(num_cities + 1, city_dim)
        self.time = nn.Sequential(nn.Linear(TIME_FEATURES, time_dim), nn.SiLU())
        self.out_dim = city_dim + time_dim

    def _city_index(self, city: torch.Tensor) -> torch.Tensor:
        city = torch.where((city < 0) | (city > self.num_cities), torch.full_like(city, UNKNOWN_CITY), city)
        if self.training and self.city_dropout > 0:
            drop = torch.rand(city.shape, device=city.device) < self.city_dropout
            city = torch.where(drop, torch.full_like(city, UNKNOWN_CITY), city)
        return city

    def tokens(self, context) -> tuple[torch.Tensor, torch.Tensor]:
        """City and time embeddings, each (batch, dim)."""
        return self.city(self._city_index(context.city)), self.time(context.time)

    def forward(self, context) -> torch.Tensor:
        """(batch, city_dim + time_dim) metadata vector."""
        city, time = self.tokens(context)
        return torch.cat([city, time], dim=-1)
