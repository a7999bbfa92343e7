"""Log-mel front-end settings a model declares next to its code.

A model's MACs and its feature cache both depend on the front end, so it is
part of the model's declared defaults rather than a data-loader detail.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FrontEnd:
    """Parameters of the log-mel spectrogram a model expects as input."""

    sample_rate: int = 44_100
    n_fft: int = 2048
    win_length: int = 1764
    hop_length: int = 882
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float | None = None

    def frames(self, seconds: float) -> int:
        """Number of frames for a clip of `seconds` (centred STFT, as torchaudio computes it)."""
        return int(round(seconds * self.sample_rate)) // self.hop_length + 1

    def to_dict(self) -> dict:
        return asdict(self)


# The APSIPA ASC 2025 official front end: 44.1 kHz, 40 ms window, 20 ms hop, 64 mels
# from 50 Hz, i.e. 500 frames per 10-s clip. ASCMamba and the official baseline use it.
APSIPA_FRONT_END = FrontEnd()

# Same 20 ms hop and 64 mels at 16 kHz: the synthetic corpus and the CPU presets.
FRONT_END_16K = FrontEnd(sample_rate=16_000, n_fft=1024, win_length=640, hop_length=320, n_mels=64, f_min=50.0)
