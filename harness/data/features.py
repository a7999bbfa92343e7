"""Log-mel extraction with torchaudio, parameterised by a model's `FrontEnd`."""
from __future__ import annotations

import numpy as np
import torch
import torchaudio

from ascmamba.frontend import FrontEnd

from ..errors import UserError

LOGS = ("ln", "db")


class LogMel(torch.nn.Module):
    """Waveform (batch, samples) -> log-mel (batch, frames, mels), as the `FrontEnd` declares."""

    def __init__(self, front_end: FrontEnd):
        super().__init__()
        if front_end.log not in LOGS:
            raise UserError(f"front end log must be one of {', '.join(LOGS)}, got {front_end.log!r}")
        self.front_end = front_end
        same_name = ("sample_rate", "n_fft", "win_length", "hop_length", "f_min", "f_max", "n_mels", "power",
                     "mel_scale", "pad_mode")
        self.mel = torchaudio.transforms.MelSpectrogram(
            norm=front_end.mel_norm, **{k: getattr(front_end, k) for k in same_name})

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        fe = self.front_end
        mel = self.mel(wave)  # (batch, mels, frames)
        if fe.log == "ln":
            out = torch.log(mel + fe.log_offset)
        else:  # librosa.power_to_db(ref=1.0, amin=1e-10, top_db): the clip is per clip, not per batch
            out = 10.0 * torch.log10(mel.clamp(min=1e-10))
            if fe.top_db is not None:
                out = torch.maximum(out, out.amax(dim=(-2, -1), keepdim=True) - fe.top_db)
        if fe.max_frames:
            out = out[..., : fe.max_frames]
        return out.transpose(-1, -2)


def log_mel(waves: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """float32 log-mels of a (batch, samples) array: (batch, frames, mels)."""
    with torch.no_grad():
        return LogMel(front_end)(torch.from_numpy(np.ascontiguousarray(waves))).numpy()
