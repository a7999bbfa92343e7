"""Behaviour specific to the three baselines (the registry-wide checks live in test_models.py)."""
from __future__ import annotations

import pytest
import torch

from ascmamba.baselines.apsipa_setrans import SETrans
from ascmamba.baselines.cpmobile import CPMobile
from ascmamba.baselines.patch_transformer import PatchTransformer, structured_patchout
from ascmamba.interface import MetaContext
from ascmamba.metadata import TIME_FEATURES, UNKNOWN_CITY


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _mel(batch: int = 2, frames: int = 150, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, frames, 64, generator=torch.Generator().manual_seed(seed))


# --- CP-Mobile -------------------------------------------------------------

def test_cpmobile_matches_dcase_baseline_size():
    model = CPMobile(num_classes=10)
    assert abs(_params(model) - 61_000) <= 6_100
    assert not model.uses_metadata


def test_cpmobile_width_follows_channel_multiplier():
    assert _params(CPMobile(channels_multiplier=2.3, expansion_rate=3.0)) > _params(CPMobile())


# --- APSIPA official SE-Trans ---------------------------------------------

@pytest.fixture
def setrans() -> SETrans:
    torch.manual_seed(0)
    return SETrans(num_classes=10, num_cities=8).eval()


def _context(city: list[int], hour_shift: float = 0.0) -> MetaContext:
    time = torch.linspace(-1, 1, TIME_FEATURES).repeat(len(city), 1) + hour_shift
    return MetaContext(torch.tensor(city), time)


def test_setrans_output_depends_on_city(setrans):
    mel = _mel()
    with torch.no_grad():
        a = setrans(mel, _context([1, 1]))
        b = setrans(mel, _context([2, 2]))
    assert not torch.allclose(a, b)


def test_setrans_output_depends_on_time(setrans):
    mel = _mel()
    with torch.no_grad():
        a = setrans(mel, _context([1, 1]))
        b = setrans(mel, _context([1, 1], hour_shift=0.5))
    assert not torch.allclose(a, b)


def test_setrans_unknown_and_out_of_vocabulary_cities(setrans):
    mel = _mel()
    with torch.no_grad():
        unknown = setrans(mel, _context([UNKNOWN_CITY, UNKNOWN_CITY]))
        oov = setrans(mel, _context([99, -3]))
        missing = setrans(mel, None)
    assert unknown.shape == (2, 10) and torch.isfinite(unknown).all()
    torch.testing.assert_close(oov, unknown)  # out-of-range indices use the unknown-city slot
    assert missing.shape == (2, 10) and torch.isfinite(missing).all()  # no context = unknown city, zero time


def test_setrans_audio_only_variant_ignores_metadata():
    torch.manual_seed(0)
    model = SETrans(use_metadata=False).eval()
    mel = _mel()
    with torch.no_grad():
        torch.testing.assert_close(model(mel, _context([1, 1])), model(mel, _context([5, 5], 0.5)))


# --- Patch transformer -----------------------------------------------------

@pytest.mark.parametrize("frames", [150, 500])
def test_patch_transformer_eval_is_deterministic(frames):
    torch.manual_seed(0)
    model = PatchTransformer(num_classes=10).eval()
    mel = _mel(frames=frames)
    with torch.no_grad():
        torch.manual_seed(1)
        a = model(mel)
        torch.manual_seed(2)
        b = model(mel)
    assert a.shape == (2, 10)
    torch.testing.assert_close(a, b)


def test_patchout_acts_only_in_training():
    torch.manual_seed(0)
    model = PatchTransformer(dropout=0.0).train()  # no dropout: only patchout is random
    mel = _mel(batch=4, frames=200)
    torch.manual_seed(1)
    a = model(mel)
    torch.manual_seed(2)
    b = model(mel)
    assert not torch.allclose(a, b)

    torch.manual_seed(0)
    plain = PatchTransformer(dropout=0.0, patchout_time=0.0, patchout_freq=0.0).train()
    torch.manual_seed(1)
    c = plain(mel)
    torch.manual_seed(2)
    torch.testing.assert_close(plain(mel), c)


def test_structured_patchout_drops_whole_columns_and_rows():
    grid = torch.arange(5 * 10, dtype=torch.float32).view(1, 1, 5, 10)
    out = structured_patchout(grid, time_frac=0.3, freq_frac=0.2)
    assert out.shape == (1, 1, 4, 7)
    # grid value = 10 * row + column: the output must be a sub-grid, same columns in every row
    rows = (out[0, 0, :, 0] // 10).long()
    cols = (out[0, 0, 0] % 10).long()
    torch.testing.assert_close(out[0, 0], grid[0, 0][rows][:, cols])
    assert structured_patchout(torch.zeros(1, 1, 1, 1), 0.9, 0.9).shape == (1, 1, 1, 1)


def test_patch_transformer_rejects_clips_longer_than_its_positions():
    model = PatchTransformer(max_frames=200).eval()
    with pytest.raises(ValueError, match="max_frames"):
        model(_mel(frames=201))
