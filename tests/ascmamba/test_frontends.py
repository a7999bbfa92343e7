"""The declared front ends: the official APSIPA features, the DCASE baseline's, and which one a run uses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import windows

from ascmamba import APSIPA_FRONT_END, DCASE_FRONT_END, FRONT_END_16K, FrontEnd, create_model, get_spec
from ascmamba.complexity import model_complexity
from harness.data.features import log_mel
from harness.data.prepare import DataConfig, resolve_front_end


def _slaney_hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def official_apsipa_features(wave: np.ndarray, sr: int = 44100) -> np.ndarray:
    """A transcription in numpy of the official baseline's `gen_mel_features` (librosa's centred STFT
    with zero padding, periodic Hann window centred in n_fft, Slaney mel filters with Slaney
    normalisation, mel of the magnitude, power_to_db(ref=1, amin=1e-10, top_db=80)), 500 frames."""
    n_fft, win, hop, n_mels, fmin, fmax = 2048, 1764, 882, 64, 50.0, sr / 2
    window = np.zeros(n_fft)
    start = (n_fft - win) // 2
    window[start:start + win] = windows.hann(win, sym=False)
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="constant")
    frames = 1 + (len(padded) - n_fft) // hop
    stft = np.abs(np.fft.rfft(np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(frames)]), axis=1)).T
    mel_f = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2))
    fft_f = np.linspace(0, sr / 2, 1 + n_fft // 2)
    fdiff, ramps = np.diff(mel_f), mel_f[:, None] - fft_f[None, :]
    weights = np.maximum(0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    db = 10.0 * np.log10(np.maximum(1e-10, weights @ stft))
    db = np.maximum(db, db.max() - 80.0)
    return db.T[:500]


def test_apsipa_front_end_reproduces_the_official_features():
    rng = np.random.default_rng(0)
    t = np.arange(441000) / 44100
    wave = (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 4)).astype(np.float32)
    ours = log_mel(wave[None], APSIPA_FRONT_END)[0]
    official = official_apsipa_features(wave)
    assert ours.shape == official.shape == (500, 64)
    assert np.abs(ours - official).max() < 1e-3, np.abs(ours - official).max()
    # and it is not what the front end used to compute: HTK mels of the power spectrum, ln, 501 frames
    old = log_mel(wave[None], FrontEnd())[0]  # the former defaults: HTK mels of the power spectrum, ln
    assert old.shape == (501, 64) and np.abs(old[:500] - official).max() > 1.0


def test_top_db_clip_is_per_clip_not_per_batch():
    loud, quiet = np.ones(44100, np.float32), np.full(44100, 1e-3, np.float32)
    rng = np.random.default_rng(1)
    batch = np.stack([loud * rng.standard_normal(44100), quiet * rng.standard_normal(44100)]).astype(np.float32)
    together = log_mel(batch, APSIPA_FRONT_END)
    alone = log_mel(batch[1:], APSIPA_FRONT_END)
    assert np.allclose(together[1], alone[0], atol=1e-4)


def test_cpmobile_declares_the_dcase_front_end_with_its_published_size():
    spec = get_spec("cpmobile")
    assert spec.front_end == DCASE_FRONT_END
    assert (DCASE_FRONT_END.sample_rate, DCASE_FRONT_END.n_fft, DCASE_FRONT_END.win_length,
            DCASE_FRONT_END.hop_length, DCASE_FRONT_END.n_mels) == (32000, 4096, 3072, 500, 256)
    cx = model_complexity(create_model("cpmobile"), spec.front_end, 1.0)
    assert cx.params == 61_148 and cx.macs == 29_419_156
    assert log_mel(np.zeros((1, 32000), np.float32), DCASE_FRONT_END).shape == (1, 65, 256)


@pytest.mark.parametrize(("source", "configured", "model", "expected"), [
    ("synthetic", "auto", "cpmobile", FRONT_END_16K),        # the corpus is 16 kHz audio
    ("apsipa", "auto", "cpmobile", DCASE_FRONT_END),         # the model's declared one
    ("apsipa", "auto", "ascmamba_tiny", APSIPA_FRONT_END),
    ("dcase", "apsipa", "cpmobile", APSIPA_FRONT_END),       # the config overrides it
])
def test_a_run_uses_the_models_front_end_unless_the_config_names_one(source, configured, model, expected):
    assert resolve_front_end(DataConfig(source=source, front_end=configured), get_spec(model).front_end) == expected


def test_every_model_runs_on_its_declared_front_end():
    for name in ("cpmobile", "ascmamba_tiny", "apsipa_setrans"):
        fe = get_spec(name).front_end
        wave = np.random.default_rng(0).standard_normal((2, fe.sample_rate)).astype(np.float32)
        mel = torch.from_numpy(log_mel(wave, fe))
        assert create_model(name)(mel[:, None], None).shape == (2, 10)
