"""Reading clips: mono mixdown, resampling and a fixed length, the same for every source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..errors import UserError


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or crop the centre to exactly `length` samples (deterministic)."""
    n = x.shape[-1]
    if n == length:
        return x
    if n < length:
        return np.pad(x, (0, length - n))
    start = (n - length) // 2
    return x[start:start + length]


def load_clip(path: str | Path, sample_rate: int, seconds: float) -> np.ndarray:
    """float32 mono samples of `path` at `sample_rate`, padded or cropped to `seconds`."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    if data.shape[0] == 0:
        raise UserError(f"{path}: audio file has no samples")
    if not np.isfinite(data).all():   # checked here too: a NaN would poison every trial sharing the cache
        raise UserError(f"{path}: audio has non-finite samples (NaN or inf); expected finite audio")
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = AF.resample(torch.from_numpy(mono), sr, sample_rate).numpy()
    return fit_length(mono, int(round(seconds * sample_rate))).astype(np.float32, copy=False)
