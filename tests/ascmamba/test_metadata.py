"""Metadata features on the real official rows: the official baseline's were all zeros."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ascmamba.interface import MetaContext
from ascmamba.metadata import (
    TIME_FEATURES,
    UNKNOWN_CITY,
    CityVocabulary,
    MetadataEncoder,
    time_feature_matrix,
    time_features,
)


@pytest.fixture(scope="module")
def dev(apsipa_metadata_dir):
    return pd.read_csv(apsipa_metadata_dir / "APSIPA2025_GC_ASC_dev_metadata.csv", encoding="utf-8-sig")


@pytest.fixture(scope="module")
def evaluation(apsipa_metadata_dir):
    return pd.read_csv(apsipa_metadata_dir / "APSIPA2025_GC_ASC_eval_metadata.csv", encoding="utf-8-sig")


def test_time_features_vary_across_real_rows(dev):
    feats = time_feature_matrix(dev["record_time"])
    assert feats.shape == (len(dev), TIME_FEATURES)
    assert np.isfinite(feats).all()
    assert not np.allclose(feats, 0.0)
    # hour and minute take many values across the official rows; weekday and month several
    distinct = [len(np.unique(feats[:, j].round(4))) for j in range(TIME_FEATURES)]
    assert min(distinct[:4]) >= 20, distinct
    assert min(distinct[4:]) >= 2, distinct
    # distinct sessions get distinct features; one session gets one feature vector
    sessions = dev.groupby(["location", "record_time"]).ngroups
    assert len(np.unique(feats.round(6), axis=0)) >= 0.9 * dev["record_time"].nunique()
    assert sessions > 100


def test_time_features_are_cyclic():
    late, early = time_features("2023-06-18 23:59:59"), time_features("2023-06-19 00:00:00")
    noon = time_features("2023-06-19 12:00:00")
    assert np.abs(late[:2] - early[:2]).max() < 1e-2
    assert np.abs(noon[:2] - early[:2]).max() > 1.0
    np.testing.assert_allclose(np.hypot(noon[0::2], noon[1::2]), 1.0, rtol=1e-6)


@pytest.mark.parametrize("bad", ["2023/06/18 18:44:34", "18:44", "", "2023-13-01 00:00:00"])
def test_malformed_time_is_an_error_naming_the_value(bad):
    with pytest.raises(ValueError, match="YYYY-MM-DD HH:MM:SS"):
        time_features(bad)


def test_unseen_eval_cities_map_to_unknown(dev, evaluation):
    vocab = CityVocabulary(dev["location"])
    assert len(vocab) == 8
    unseen = sorted(set(evaluation["location"]) - set(dev["location"]))
    assert len(unseen) == 6
    idx = vocab.encode(evaluation["location"].tolist())
    is_unseen = evaluation["location"].isin(unseen).to_numpy()
    assert (idx[is_unseen] == UNKNOWN_CITY).all()
    assert (idx[~is_unseen] != UNKNOWN_CITY).all()
    assert is_unseen.sum() == 400

    encoder = MetadataEncoder(num_cities=len(vocab)).eval()
    context = MetaContext(torch.from_numpy(idx), torch.from_numpy(time_feature_matrix(evaluation["record_time"])))
    out = encoder(context)
    assert out.shape == (len(evaluation), encoder.out_dim) and torch.isfinite(out).all()


def test_city_dropout_only_in_training():
    torch.manual_seed(0)
    encoder = MetadataEncoder(num_cities=3, city_dropout=0.5)
    context = MetaContext(torch.full((400,), 2), torch.zeros(400, TIME_FEATURES))
    encoder.train()
    trained = encoder(context)
    unknown_row = encoder.city.weight[UNKNOWN_CITY]
    dropped = (trained[:, :16] == unknown_row).all(dim=1).float().mean()
    assert 0.35 < dropped < 0.65
    encoder.eval()
    assert not (encoder(context)[:, :16] == unknown_row).all(dim=1).any()
