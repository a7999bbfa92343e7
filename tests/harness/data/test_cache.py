"""Feature cache: computed once per (content, parameters), memory-mapped, never half-written."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ascmamba.frontend import FRONT_END_16K
from harness.data import cache as cache_mod
from harness.data.audio import load_clip
from harness.data.cache import FeatureCache, FeatureSpec
from harness.data.features import log_mel


@pytest.fixture
def wavs(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, 0.1 * rng.standard_normal(16000), 16000, subtype="PCM_16")
        paths.append(str(p))
    return paths


def test_build_once_then_memory_map(tmp_path, wavs, monkeypatch):
    cache = FeatureCache(tmp_path / "cache")
    spec = FeatureSpec(FRONT_END_16K, 1.0)
    ids = [f"c{i}" for i in range(5)]
    entry = cache.get_or_build(ids, wavs, spec, progress=False)
    assert entry.features.shape == (5, FRONT_END_16K.frames(1.0), 64)
    assert isinstance(entry.features, np.memmap) and not entry.features.flags.writeable
    expected = log_mel(load_clip(wavs[2], 16000, 1.0)[None], FRONT_END_16K)[0]
    np.testing.assert_allclose(entry.features[entry.rows(["c2"])[0]], expected, atol=2e-2, rtol=1e-3)

    def fail(*a, **k):
        raise AssertionError("recomputed a cached entry")

    monkeypatch.setattr(cache_mod, "log_mel", fail)
    again = FeatureCache(tmp_path / "cache").get_or_build(ids, wavs, spec, progress=False)
    assert again.path == entry.path


def test_new_entry_when_parameters_or_content_change(tmp_path, wavs):
    cache = FeatureCache(tmp_path / "cache")
    ids = [f"c{i}" for i in range(5)]
    base = cache.get_or_build(ids, wavs, FeatureSpec(FRONT_END_16K, 1.0), progress=False)
    from dataclasses import replace

    fewer_mels = cache.get_or_build(ids, wavs, FeatureSpec(replace(FRONT_END_16K, n_mels=32), 1.0), progress=False)
    assert fewer_mels.path != base.path and fewer_mels.features.shape[-1] == 32
    sf.write(wavs[0], np.zeros(16000), 16000, subtype="PCM_16")
    changed = cache.get_or_build(ids, wavs, FeatureSpec(FRONT_END_16K, 1.0), progress=False)
    assert changed.path != base.path


def test_crash_mid_build_leaves_no_entry(tmp_path, wavs, monkeypatch):
    cache = FeatureCache(tmp_path / "cache")
    ids = [f"c{i}" for i in range(5)]
    spec = FeatureSpec(FRONT_END_16K, 1.0)
    calls = {"n": 0}
    real = cache_mod.log_mel

    def crash_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cache_mod, "log_mel", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build(ids, wavs, spec, batch_size=2, progress=False)
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    monkeypatch.setattr(cache_mod, "log_mel", real)
    entry = cache.get_or_build(ids, wavs, spec, batch_size=2, progress=False)
    assert np.isfinite(np.asarray(entry.features, dtype=np.float32)).all()


def test_unknown_clip_is_a_clear_error(tmp_path, wavs):
    entry = FeatureCache(tmp_path / "c").get_or_build(["a", "b", "c", "d", "e"], wavs, FeatureSpec(FRONT_END_16K, 1.0),
                                                      progress=False)
    with pytest.raises(KeyError, match="clip 'zz' is not in this feature cache entry"):
        entry.rows(["a", "zz"])
