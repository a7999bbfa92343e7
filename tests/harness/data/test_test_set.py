"""The test role: held-out clips that no training, selection or pseudo-labelling ever sees."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from harness.data.apsipa import load_apsipa
from harness.data.prepare import DataConfig, prepare_data
from harness.data.splits import attach_test, session_split
from harness.data.synth import load_truth


@pytest.fixture(scope="module")
def official(apsipa_metadata_dir):
    return load_apsipa(apsipa_metadata_dir / "APSIPA2025_GC_ASC_dev_metadata.csv", None)


def _sessions(corpus, ids):
    return set(corpus.clips.set_index("clip_id").loc[list(ids), "session"])


def test_synthetic_test_set_is_the_eval_clips_with_true_classes_and_never_trained_on(micro_data_config):
    data = prepare_data(micro_data_config, seed=3, progress=False)
    split, clips = data.split, data.corpus.clips.set_index("clip_id")
    truth = load_truth(data.corpus.source.rsplit("/", 1)[0])
    evals = truth[truth["split"] == "eval"]
    assert set(split.test) == set(evals["filename"])
    assert not set(split.test) & set(split.train + split.val + split.unlabelled)
    # the pseudo-label pool holds no test clip and no clip of a test session
    assert not _sessions(data.corpus, split.test) & _sessions(data.corpus, split.unlabelled + split.train + split.val)
    true = dict(zip(evals["filename"], evals["scene_label"], strict=True))
    assert all(data.classes[clips.loc[c, "label"]] == true[c] for c in split.test)
    described = data.describe()
    assert described["n_test"] == len(evals) and described["test_cities_unseen"]   # micro has an unseen city
    # the same test clips for every run seed (paired comparisons score the same clips)
    assert set(prepare_data(micro_data_config, seed=4, progress=False).split.test) == set(split.test)


def test_apsipa_without_test_csv_holds_out_whole_sessions_the_same_for_every_seed(official):
    cfg = DataConfig(source="apsipa", test_fraction=0.2, test_seed=0)
    corpus, what = attach_test(official, cfg)
    assert "whole sessions" in what
    test = corpus.clips[corpus.clips["test"]]
    labelled = official.clips[official.labelled]
    assert 0.15 < len(test) / len(labelled) < 0.25 and (test["label"] >= 0).all()
    # whole sessions: no clip of a test session is left in development (unlabelled ones are dropped)
    dev = corpus.clips[~corpus.clips["test"]]
    assert not set(test["session"]) & set(dev["session"])
    for seed in (0, 1):
        split = session_split(corpus, 0.2, seed)
        assert set(split.test) == set(test["clip_id"])
        assert not set(split.test) & set(split.train + split.val + split.unlabelled)
    again, _ = attach_test(official, cfg)
    assert again.clips["test"].equals(corpus.clips["test"])
    none, _ = attach_test(official, dataclasses.replace(cfg, test_fraction=0.0))
    assert not none.clips["test"].any()


def test_apsipa_test_cities_are_held_out_whole_and_unseen(official):
    city = official.clips.loc[official.labelled, "location"].value_counts().index[-1]
    corpus, what = attach_test(official, DataConfig(source="apsipa", test_fraction=0.0, test_cities=[city]))
    assert city in what
    in_city = corpus.clips["location"] == city
    assert corpus.clips.loc[in_city, "test"].all() and (corpus.clips.loc[in_city, "label"] >= 0).all()
    split = session_split(corpus, 0.2, 0)
    assert city not in set(corpus.clips.set_index("clip_id").loc[list(split.train + split.unlabelled), "location"])
    with pytest.raises(ValueError, match="test_cities: 'Atlantis' does not occur"):
        attach_test(official, DataConfig(source="apsipa", test_cities=["Atlantis"]))


def test_apsipa_test_csv_is_appended_and_must_be_labelled(micro_data_config, tmp_path):
    data = prepare_data(micro_data_config, seed=0, progress=False)
    root = data.corpus.source.rsplit("/", 1)[0]
    truth = load_truth(root).set_index("filename")
    ev = pd.read_csv(f"{root}/eval_metadata.csv", dtype=str, keep_default_na=False)
    ev["scene_label"] = [truth.loc[f, "scene_label"] for f in ev["filename"]]
    test_csv = tmp_path / "test.csv"
    ev.to_csv(test_csv, index=False)
    cfg = DataConfig(source="apsipa", metadata=f"{root}/dev_metadata.csv", audio_dir=f"{root}/audio",
                     test_metadata=str(test_csv), cache_dir=micro_data_config.cache_dir)
    prepared = prepare_data(cfg, seed=0, progress=False)
    assert set(prepared.split.test) == set(ev["filename"])
    assert "labelled evaluation CSV" in prepared.test_source
    ev.loc[1, "scene_label"] = ""
    ev.to_csv(test_csv, index=False)
    with pytest.raises(ValueError, match=r"test.csv: row 3: a test clip needs a scene_label"):
        prepare_data(cfg, seed=0, progress=False)


def test_dcase_test_set_is_the_official_evaluation_fold(tmp_path):
    from tests.support.audio import write_wav

    names = [f"audio/{scene}-{city}-{loc}-{seg}-a.wav" for scene, city, loc, seg in (
        ("airport", "lisbon", 1, 10), ("airport", "lisbon", 2, 20), ("bus", "vienna", 3, 30), ("bus", "vienna", 4, 40),
        ("airport", "paris", 5, 50), ("bus", "paris", 6, 60))]
    (tmp_path / "audio").mkdir()
    for n in names:
        write_wav(tmp_path / n)
    (tmp_path / "meta.csv").write_text("filename\tscene_label\n"
                                       + "".join(f"{n}\t{n[6:].split('-')[0]}\n" for n in names))
    (tmp_path / "evaluation_setup").mkdir()
    (tmp_path / "evaluation_setup" / "fold1_evaluate.csv").write_text(
        "filename\tscene_label\n" + "".join(f"{n}\tx\n" for n in names[4:]))
    from harness.data.dcase import load_dcase

    cfg = DataConfig(source="dcase", metadata=str(tmp_path / "meta.csv"), audio_dir=str(tmp_path))
    corpus, what = attach_test(load_dcase(cfg.metadata, cfg.audio_dir), cfg)
    assert "fold1_evaluate.csv" in what
    assert corpus.clips.loc[corpus.clips["test"], "clip_id"].tolist() == names[4:]


def test_a_run_reports_test_of_the_validation_chosen_checkpoint_never_a_test_maximum(micro_data_config, tmp_path):
    from harness.train.config import load_config
    from harness.train.run import run_training, summarise

    cfg = load_config(None, ["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}",
                             "model.name=cpmobile", "train.epochs=4", "pseudo=none", "train.threads=1"])
    final = run_training(cfg, tmp_path / "run", progress=False)
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    best = final["best_epoch"]
    assert final["test"]["macro_acc"] == pytest.approx(history["test/macro_acc"].iloc[best - 1])
    assert final["val"]["macro_acc"] == pytest.approx(history["val/macro_acc"].iloc[best - 1])
    # between validation improvements the test column repeats the chosen checkpoint's figure
    for epoch in range(1, len(history)):
        if history["val/macro_acc"].iloc[epoch] <= history["val/best_macro_acc"].iloc[epoch - 1]:
            assert history["test/macro_acc"].iloc[epoch] == history["test/macro_acc"].iloc[epoch - 1]
    test = final["test"]
    assert test["n"] == len(final["test_predictions"]["clip_id"]) == final["data"]["n_test"]
    assert {"per_class_acc", "per_city", "confusion"} <= set(test) and "unseen_macro_acc" in test
    assert any(v["seen"] is False for v in test["per_city"].values())
    assert "test (that checkpoint, reported only)" in summarise(final)
    json.dumps(final)  # JSON-ready
    assert np.isfinite(test["log_loss"])


def test_test_options_that_cannot_apply_are_refused(micro_data_config):
    with pytest.raises(ValueError, match="synthetic corpus's test set is its evaluation clips"):
        prepare_data(dataclasses.replace(micro_data_config, test_cities=["Hefei"]), seed=0, progress=False)


def test_a_search_space_cannot_rank_trials_by_a_test_metric(tmp_path):
    import yaml

    from harness.errors import UserError
    from harness.tune.space import load_space

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"metric": "test/macro_acc", "mode": "max", "base": {"model": {"name": "cpmobile"}},
                                    "search": {"train.lr": {"loguniform": [1e-4, 1e-2]}}}))
    with pytest.raises(UserError, match=r"s.yaml: metric: 'test/macro_acc': test figures are only reported"):
        load_space(str(path))
