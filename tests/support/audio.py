"""Real wav files for loader tests."""
from __future__ import annotations

import numpy as np
import soundfile as sf


def write_wav(path, seconds=1.0, sr=16000, channels=1, freq=440.0):
    """A 16-bit sine of `seconds` at `sr` Hz with `channels` channels."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.1 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sr, subtype="PCM_16")
