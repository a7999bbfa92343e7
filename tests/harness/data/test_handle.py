"""The data handle: prepared once by a driver, enough for a trial that never reads the corpus."""
from __future__ import annotations

import pickle
import shutil

import numpy as np

from harness.data import prepare
from harness.data.handle import handle_key, prepare_handle, prepare_handles
from harness.train.config import compose_config
from harness.train.trial import Trial


def _cfg(cache_dir: str, *extra: str):
    return compose_config(["data.preset=micro", f"data.cache_dir={cache_dir}", "model=cpmobile", "pseudo=none",
                           "train.epochs=1", "train.batch_size=16", *extra])


def test_trial_from_a_handle_reads_no_csv_and_no_audio(tmp_path, micro_data_config, monkeypatch):
    root = tmp_path / "corpus"
    cfg = _cfg(micro_data_config.cache_dir, f"data.root={root}")
    handle = pickle.loads(pickle.dumps(prepare_handle(cfg)))   # as it travels to a Ray worker
    shutil.move(root, tmp_path / "gone")                       # no CSV, no wav left to read
    calls = []
    for name in ("load_corpus", "probe_audio"):
        real = getattr(prepare, name)
        monkeypatch.setattr(prepare, name,
                            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    trial = Trial(cfg, data=handle)
    metrics = list(trial.epochs())
    assert len(metrics) == 1 and np.isfinite(metrics[0]["train/loss"])
    assert trial.final_report()["data"] == handle.describe()
    assert calls == []
    Trial(cfg)      # without a handle the trial reads the corpus (here: writes it anew) itself
    assert calls == ["load_corpus", "probe_audio"]


def test_handle_holds_the_split_and_what_the_trial_used_to_compute(micro_data_config):
    cfg = _cfg(micro_data_config.cache_dir)
    handle = prepare_handle(cfg)
    data = prepare.prepare_data(micro_data_config, seed=0, progress=False)
    assert handle.split == data.split and handle.classes == data.classes
    for role in ("train", "val", "unlabelled", "test"):
        assert handle.sets[role].clip_ids == tuple(getattr(data.split, role))
        np.testing.assert_array_equal(handle.sets[role].rows, data.features.rows(getattr(data.split, role)))
    train = np.asarray(data.features.features[np.sort(handle.sets["train"].rows)], dtype=np.float64)
    np.testing.assert_allclose(handle.norm_mean, train.mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(handle.norm_std, train.std(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    truth = [data.truth[c] for c in handle.sets["unlabelled"].clip_ids]
    assert handle.pool_truth.tolist() == truth
    assert len(pickle.dumps(handle)) < 200_000    # small: clip arrays, never the features


def test_configs_share_a_handle_when_data_split_seed_and_front_end_agree(micro_data_config):
    a, b = _cfg(micro_data_config.cache_dir, "seed=0"), _cfg(micro_data_config.cache_dir, "seed=1")
    assert handle_key(a) != handle_key(b)     # the split follows the run's seed by default
    fixed = [_cfg(micro_data_config.cache_dir, f"seed={s}", "data.split_seed=0") for s in (0, 1)]
    assert handle_key(fixed[0]) == handle_key(fixed[1]) == handle_key(a)
    other = _cfg(micro_data_config.cache_dir, "data.front_end=apsipa")
    assert handle_key(other) != handle_key(a)
    handles = prepare_handles([a, *fixed, b])
    assert set(handles) == {handle_key(a), handle_key(b)}


def test_searched_training_keys_keep_the_drivers_handle_and_data_keys_do_not(micro_data_config):
    from harness.train.config import to_dict
    from harness.tune.trainable import trial_config

    base = to_dict(_cfg(micro_data_config.cache_dir))
    driver = handle_key(_cfg(micro_data_config.cache_dir))
    assert handle_key(trial_config({"train.lr": 0.02, "train.mixup_alpha": 0.1}, base, None)) == driver
    assert handle_key(trial_config({"data.val_fraction": 0.3}, base, None)) != driver   # the trial prepares its own
    assert handle_key(trial_config({"_run": "h"}, None, {"h": base})) == driver
