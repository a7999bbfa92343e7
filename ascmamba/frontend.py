"""Log-mel front-end settings a model declares next to its code.

A model's MACs and its feature cache both depend on the front end, so it is
part of the model's declared defaults rather than a data-loader detail.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FrontEnd:
    """Parameters of the log-mel spectrogram a model expects as input (a centred Hann STFT)."""

    sample_rate: int = 44_100
    n_fft: int = 2048
    win_length: int = 1764
    hop_length: int = 882
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float | None = None
    power: float = 2.0               # 1: mel of the magnitude, 2: of the power spectrum
    mel_scale: str = "htk"           # htk | slaney (torchaudio's names)
    mel_norm: str | None = None      # None | slaney (area-normalised triangles)
    log: str = "ln"                  # ln: ln(x + log_offset); db: 10 log10(max(x, 1e-10)),
                                     # clipped top_db below the clip's max
    log_offset: float = 1e-6
    top_db: float | None = None
    max_frames: int | None = None    # keep the first max_frames frames (the official APSIPA 500)
    pad_mode: str = "reflect"        # how the centred STFT pads the clip's ends (librosa >= 0.10: constant)

    def frames(self, seconds: float) -> int:
        """Number of frames for a clip of `seconds` (centred STFT, as torchaudio computes it)."""
        frames = int(round(seconds * self.sample_rate)) // self.hop_length + 1
        return min(frames, self.max_frames) if self.max_frames else frames

    def to_dict(self) -> dict:
        return asdict(self)


# The APSIPA ASC 2025 official front end (JishengBai/APSIPA2025GC-ASC, feature_extraction.py and
# config.py): 44.1 kHz, 40 ms periodic Hann window, 20 ms hop, 64 Slaney-scale, Slaney-normalised
# mels from 50 Hz of the STFT *magnitude*, librosa's power_to_db (top 80 dB), 500 frames per 10 s.
# ASCMamba, SE-Trans and the patch transformer declare it.
# (librosa's STFT pads with zeros since 0.10, which the baseline's Python 3.10 environment installs.)
APSIPA_FRONT_END = FrontEnd(power=1.0, mel_scale="slaney", mel_norm="slaney", log="db", top_db=80.0, max_frames=500,
                            pad_mode="constant")

# The DCASE 2024/2025 Task 1 baseline's (CPJKU): 32 kHz, n_fft 4096, 96 ms window, 15.6 ms hop,
# 256 HTK mels of the power spectrum from 0 Hz, ln(x + 1e-5). CP-Mobile declares it: 61,148
# parameters and 29.4 M MACs per 1-s clip (65 frames), as published.
DCASE_FRONT_END = FrontEnd(sample_rate=32_000, n_fft=4096, win_length=3072, hop_length=500, n_mels=256, f_min=0.0,
                           log_offset=1e-5)

# 16 kHz, the same 20 ms hop and 64 mels, ln of the power mel: the synthetic corpus (16 kHz audio)
# and the CPU presets; cheaper than resampling 16 kHz audio up to 44.1 kHz.
FRONT_END_16K = FrontEnd(sample_rate=16_000, n_fft=1024, win_length=640, hop_length=320, n_mels=64, f_min=50.0)
