"""A trial whose training loss becomes non-finite raises, is retried up to budget.max_failures,
then ends as `error` in the results table (and FAIL in Optuna) while the other trials finish.

The NaN is real, not injected: `train.lr=1e6` makes cpmobile's loss NaN within the first
epoch on the micro preset (AdamW moves every weight by ~lr per step, weight decay multiplies
them by (1 - lr*wd); measured: loss NaN from epoch 1, while lr 1e3 still gives finite losses).
"""
from __future__ import annotations

import glob
import math
import pickle
from pathlib import Path

import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from harness.bench.searches import cpmobile_space
from harness.tune.results import ERROR, FINISHED
from tests.support.tuning import run_micro_tune

pytestmark = pytest.mark.ray   # every test here starts or joins a Ray runtime

ABSURD_LR = 1.0e6
MAX_FAILURES = 1

# seed 2: the seeded TPE start-up samples draw lr = [1e6, 1e-3, 3e-3], one absurd trial of three
SPACE = cpmobile_space({"train.lr": {"choice": [1.0e-3, 3.0e-3, ABSURD_LR]}}, samples=3, max_epochs=2, grace_period=2,
                       max_concurrent=2, seed=2, max_failures=MAX_FAILURES)


def test_nonfinite_loss_raises_naming_epoch_and_batch(micro_data_config):
    from harness.train.config import from_dict
    from harness.train.trial import Trial

    cfg = from_dict({"model": {"name": "cpmobile"}, "pseudo": {"mode": "none"},
                     "train": {"batch_size": 16, "lr": ABSURD_LR, "epochs": 2},
                     "data": {"preset": "micro", "cache_dir": micro_data_config.cache_dir}})
    trial = Trial(cfg)
    with pytest.raises(FloatingPointError, match=r"non-finite training loss .* in epoch 1/2, batch \d+/\d+"):
        next(trial.epochs())
    assert trial.state.epoch == 0 and not trial.state.history   # nothing reported for the broken epoch


@pytest.fixture(scope="module")
def failing_experiment(tmp_path_factory, ray_runtime, micro_data_config):
    return run_micro_tune(tmp_path_factory.mktemp("tune-nan"), SPACE, "nan", micro_data_config, confirm_top=0)


def test_nan_trial_is_retried_then_marked_error_while_the_others_finish(failing_experiment):
    rc, exp = failing_experiment
    assert rc == 0   # the experiment carried on: not every trial failed
    df = pd.read_parquet(exp / "results.parquet")
    csv = pd.read_csv(exp / "results.csv")
    assert len(df) == len(csv) == SPACE["budget"]["samples"] and df["trial_id"].is_unique
    absurd = df["config/train.lr"] == ABSURD_LR
    assert absurd.sum() >= 1 and (~absurd).sum() >= 1, df["config/train.lr"].tolist()
    bad, good = df[absurd], df[~absurd]
    assert (bad["status"] == ERROR).all(), bad
    assert (bad["failures"] == MAX_FAILURES + 1).all(), bad["failures"]   # first run + MAX_FAILURES retries
    assert (bad["epochs"] == 0).all() and bad[f"best/{SPACE['metric']}"].isna().all()
    for err in bad["error"]:
        text = Path(err).read_text()
        assert "FloatingPointError" in text and "non-finite training loss" in text and "epoch 1/2" in text
    assert (good["status"] == FINISHED).all() and (good["epochs"] == 2).all() and (good["failures"] == 0).all()
    assert good[f"best/{SPACE['metric']}"].between(0, 1).all()
    best = yaml.safe_load((exp / "best.yaml").read_text())
    assert best["params"]["train.lr"] != ABSURD_LR and math.isfinite(best["value"])


def test_failed_trial_is_fail_in_optuna_not_running(failing_experiment):
    _, exp = failing_experiment
    state_file = sorted(glob.glob(str(exp / "searcher-state-*.pkl")))[-1]
    with open(state_file, "rb") as fh:
        state = pickle.load(fh)
    study = state["searcher"]._ot_study if "searcher" in state else state["_ot_study"]
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == SPACE["budget"]["samples"]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    by_lr = {t.params["train.lr"]: t.state for t in trials}
    assert by_lr[ABSURD_LR] == TrialState.FAIL
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "COMPLETE", "FAIL"]


def test_results_table_survives_all_nan_metric_columns():
    """pandas 3: Ray's `get_dataframe(filter_metric=...)` crashes when a trial's metric is all NaN;
    our table is built from trial records, and an all-NaN metric column must not break it."""
    from types import SimpleNamespace

    from harness.tune.results import best_row, results_frame
    from harness.tune.space import build_space

    space = build_space(SPACE, "inline")
    metric = space.metric

    def fake(tid, status, last):
        return SimpleNamespace(trial_id=tid, status=status, last_result=last, num_failures=0,
                               metric_analysis={metric: {"max": last.get(metric, math.nan)}} if last else {},
                               config={"train.lr": 1e-3}, error_file=None, path=f"/x/{tid}")

    trials = [fake("a", "TERMINATED", {"epoch": 2, metric: math.nan, "time_total_s": 1.0}),
              fake("b", "ERROR", {})]
    df = results_frame(trials, space)
    assert len(df) == 2 and df[f"best/{metric}"].isna().all()
    assert best_row(df, space) is None
