"""Session-grouped splits on the real official metadata: no session crosses the split."""
from __future__ import annotations

import numpy as np
import pytest

from harness.data.apsipa import load_apsipa
from harness.data.splits import Split, session_split


@pytest.fixture(scope="module")
def official(apsipa_metadata_dir):
    return load_apsipa(apsipa_metadata_dir / "APSIPA2025_GC_ASC_dev_metadata.csv", None)


def _sessions(corpus, ids):
    clips = corpus.clips.set_index("clip_id")
    return set(clips.loc[list(ids), "session"])


def test_no_session_crosses_the_split(official):
    split = session_split(official, val_fraction=0.2, seed=0)
    train, val, pool = (_sessions(official, s) for s in (split.train, split.val, split.unlabelled))
    assert train and val and pool
    assert not train & val
    assert not pool & val  # unlabelled clips of validation sessions are never pseudo-labelled
    labelled = official.clips[official.labelled]
    assert len(split.train) + len(split.val) == len(labelled)
    assert not set(split.train) & set(split.val)


def test_a_random_clip_split_would_leak(official):
    """The official baseline's random clip split puts sessions on both sides; ours is the fix."""
    labelled = official.clips[official.labelled]
    rng = np.random.default_rng(0)
    val = rng.random(len(labelled)) < 0.2
    assert set(labelled.loc[val, "session"]) & set(labelled.loc[~val, "session"])


def test_stratified_by_class(official):
    split = session_split(official, val_fraction=0.2, seed=1)
    clips = official.clips.set_index("clip_id")
    val_labels = clips.loc[list(split.val), "label"].value_counts()
    all_labels = official.clips.loc[official.labelled, "label"].value_counts()
    share = (val_labels / all_labels).fillna(0)
    assert len(share) == 10
    assert share.between(0.1, 0.33).all(), share.to_dict()


def test_deterministic_and_seeded(official):
    a, b = session_split(official, seed=3), session_split(official, seed=3)
    assert a == b
    assert session_split(official, seed=4).val != a.val
    assert Split.from_dict(a.to_dict()) == a


def test_holdout_city(official):
    split = session_split(official, seed=0, holdout_cities=("Xi'an",))
    clips = official.clips.set_index("clip_id")
    assert "Xi'an" not in set(clips.loc[list(split.train), "location"])
    assert "Xi'an" not in set(clips.loc[list(split.unlabelled), "location"])
    assert "Xi'an" in set(clips.loc[list(split.val), "location"])
    with pytest.raises(ValueError, match="holdout city 'Atlantis'"):
        session_split(official, holdout_cities=("Atlantis",))


def test_mixed_session_is_rejected(official):
    clips = official.clips.copy()
    first = clips.index[clips["label"] >= 0][0]
    same = clips.index[(clips["session"] == clips.loc[first, "session"]) & (clips["label"] >= 0)]
    if len(same) < 2:
        pytest.skip("first session has one labelled clip")
    clips.loc[same[1], "label"] = (clips.loc[first, "label"] + 1) % 10
    from harness.data.corpus import Corpus

    with pytest.raises(ValueError, match="mixes several scene labels"):
        session_split(Corpus(clips, official.classes, "x.csv"))
