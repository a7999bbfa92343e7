"""Log-mel extraction with torchaudio, parameterised by a model's `FrontEnd`."""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

from ascmamba.frontend import FrontEnd

LOG_OFFSET = 1e-6


class LogMel(torch.nn.Module):
    """Waveform (batch, samples) -> log-mel (batch, frames, mels)."""

    def __init__(self, front_end: FrontEnd):
        super().__init__()
        self.front_end = front_end
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=front_end.sample_rate,
            n_fft=front_end.n_fft,
            win_length=front_end.win_length,
            hop_length=front_end.hop_length,
            f_min=front_end.f_min,
            f_max=front_end.f_max,
            n_mels=front_end.n_mels,
            power=2.0,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(wave) + LOG_OFFSET).transpose(-1, -2)


def log_mel(waves: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """float32 log-mels of a (batch, samples) array: (batch, frames, mels)."""
    with torch.no_grad():
        return LogMel(front_end)(torch.from_numpy(np.ascontiguousarray(waves))).numpy()
