"""`ascbench tune` end to end on real Ray and real Optuna: pruning reaches Optuna as PRUNED,
the results table lists every trial once, the best config reproduces, SIGKILL + --resume finishes."""
from __future__ import annotations

import glob
import json
import math
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from harness.bench.searches import cpmobile_space
from harness.engine.pruning import PruningOptunaSearch
from harness.tune.results import FINISHED, STOPPED
from harness.tune.search import DefineByRun
from harness.tune.space import build_space
from reports.build import build_report
from tests.support import REPO
from tests.support.processes import kill_group
from tests.support.tuning import micro_overrides, run_micro_tune

pytestmark = pytest.mark.ray   # every test here starts or joins a Ray runtime


SPACE = cpmobile_space({"train.lr": {"loguniform": [1.0e-3, 3.0e-2]}, "train.mixup_alpha": {"choice": [0.0, 0.3]}},
                       samples=4, max_epochs=3, grace_period=1, max_concurrent=2)


def space_file(tmp_path: Path, doc: dict = SPACE) -> Path:
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ------------------------------------------------------------ the pruning fix, driven directly
def test_stopped_trials_reach_optuna_as_pruned_with_intermediate_values(tmp_path):
    space = build_space(SPACE, "inline")
    searcher = PruningOptunaSearch(space=DefineByRun(space.search), metric=space.metric, mode="max",
                                   sampler=optuna.samplers.TPESampler(seed=0), study_name="t", max_epochs=3)
    for tid in ("a", "b", "c"):
        assert set(searcher.suggest(tid)) == {"train.lr", "train.mixup_alpha"}
    for epoch, value in ((1, 0.2), (2, 0.3), (3, 0.4)):
        searcher.on_trial_result("a", {"epoch": epoch, "training_iteration": epoch, space.metric: value})
    searcher.on_trial_complete("a", {"epoch": 3, space.metric: 0.4})
    searcher.on_trial_result("b", {"epoch": 1, "training_iteration": 1, space.metric: 0.1})
    searcher.on_trial_complete("b", {"epoch": 1, space.metric: 0.1})          # ASHA stopped it at the first rung
    searcher.on_trial_complete("c", {"epoch": 2, space.metric: math.nan})     # NaN metric
    restored = pickle.loads(pickle.dumps(searcher.__dict__))                  # what Ray's searcher snapshot does
    study: optuna.Study = restored["_ot_study"]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == pytest.approx(0.4)
    assert trials[0].intermediate_values == {1: 0.2, 2: 0.3, 3: 0.4}
    assert trials[1].state == TrialState.PRUNED   # stock OptunaSearch: COMPLETE with 0.1 as if final
    assert trials[1].value == pytest.approx(0.1)  # Optuna records a pruned trial at its last intermediate value
    assert trials[1].intermediate_values == {1: 0.1}
    assert trials[2].state == TrialState.FAIL                                 # stock leaves it RUNNING


# ------------------------------------------------------------ end to end in the session's Ray runtime
@pytest.fixture(scope="module")
def experiment(tmp_path_factory, ray_runtime, micro_data_config):
    return run_micro_tune(tmp_path_factory.mktemp("tune"), SPACE, "e2e", micro_data_config, confirm_top=2,
                          confirm_seeds=2)


def test_results_table_lists_each_trial_once_with_statuses(experiment):
    rc, exp = experiment
    assert rc == 0
    csv, parquet = pd.read_csv(exp / "results.csv"), pd.read_parquet(exp / "results.parquet")
    assert len(parquet) == len(csv) == SPACE["budget"]["samples"]
    assert parquet["trial_id"].is_unique
    assert set(parquet["status"]) <= {FINISHED, STOPPED}
    finished = parquet[parquet["status"] == FINISHED]
    assert len(finished) >= 1 and (finished["epochs"] == 3).all() and finished["stopped_at_epoch"].isna().all()
    stopped = parquet[parquet["status"] == STOPPED]
    assert (stopped["epochs"] < 3).all() and (stopped["stopped_at_epoch"] == stopped["epochs"]).all()
    assert parquet["best/val/best_macro_acc"].between(0, 1).all() and (parquet["wall_s"] > 0).all()
    assert {"config/train.lr", "config/train.mixup_alpha"} <= set(parquet.columns)


def test_end_to_end_study_has_pruned_not_partial_complete(experiment):
    _, exp = experiment
    df = pd.read_parquet(exp / "results.parquet")
    state_file = sorted(glob.glob(str(exp / "searcher-state-*.pkl")))[-1]
    with open(state_file, "rb") as fh:
        state = pickle.load(fh)
    # the ConcurrencyLimiter's snapshot holds our searcher's __dict__ (with the study)
    study = state["searcher"]._ot_study if "searcher" in state else state["_ot_study"]
    states = sorted(t.state.name for t in study.get_trials(deepcopy=False))
    expected = sorted("COMPLETE" if s == FINISHED else "PRUNED" for s in df["status"])
    assert states == expected
    for t in study.get_trials(deepcopy=False):
        assert t.intermediate_values, "every trial carries its per-epoch values"
        if t.state == TrialState.COMPLETE:
            assert max(t.intermediate_values) == 3
    # the same study, read from the journal file optuna-dashboard opens (no Ray, no pickle)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = optuna.load_study(study_name="e2e", storage=JournalStorage(JournalFileBackend(str(exp / "optuna.log"))))
    assert sorted(t.state.name for t in journal.trials) == expected
    assert sorted(t.params["train.lr"] for t in journal.trials) == sorted(df["config/train.lr"])


def test_fifo_random_strategy_runs_every_trial_to_its_budget(tmp_path, ray_runtime, micro_data_config):
    # the baseline `ascbench bench asha` compares against: no early stopping, uniform random sampling
    from harness.tune.run import TuneOptions, run_tune

    doc = {**SPACE, "budget": {**SPACE["budget"], "samples": 3, "max_epochs": 2},
           "strategy": {"scheduler": "fifo", "searcher": "random"}}
    opts = TuneOptions(space=str(space_file(tmp_path, doc)), name="fifo", storage=str(tmp_path / "runs"),
                       overrides=micro_overrides(micro_data_config), confirm_top=0)
    assert run_tune(opts) == 0
    exp = tmp_path / "runs" / "fifo"
    df = pd.read_parquet(exp / "results.parquet")
    assert len(df) == 3 and (df["status"] == FINISHED).all() and (df["epochs"] == 2).all()
    with open(sorted(glob.glob(str(exp / "searcher-state-*.pkl")))[-1], "rb") as fh:
        state = pickle.load(fh)
    study = state["searcher"]._ot_study if "searcher" in state else state["_ot_study"]
    assert isinstance(study.sampler, optuna.samplers.RandomSampler)
    # seeded: the same three configurations as a fresh seeded random sampler draws
    expected = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    sample = DefineByRun(build_space(doc, "inline").search)
    lrs = []
    for _ in range(3):
        trial = expected.ask()
        sample(trial)
        lrs.append(trial.params["train.lr"])
    assert sorted(df["config/train.lr"]) == pytest.approx(sorted(lrs))
    text = build_report(exp, tmp_path / "rep").read_text()
    assert "search: uniform random sampling (seed 0), FIFO scheduling" in text
    assert "### How FIFO (no early stopping) spent the budget" in text and "0 epochs saved (0%)" in text


def test_report_of_a_tune_run_names_the_method_and_the_budget_spent(experiment, tmp_path):
    _, exp = experiment
    df = pd.read_parquet(exp / "results.parquet")
    text = build_report(exp, tmp_path / "rep").read_text()
    assert "search: Optuna TPE (seed 0), ASHA early stopping over epochs" in text
    spent = int(df["epochs"].sum())
    assert "### How ASHA spent the budget" in text
    assert f"epochs run: {spent} of {3 * len(df)}" in text
    assert "### Leaderboard" in text and str(df.sort_values("best/val/best_macro_acc").iloc[-1]["trial_id"]) in text


def test_best_config_reproduces_with_train(experiment, tmp_path):
    from harness.train.config import load_config
    from harness.train.run import run_training

    _, exp = experiment
    best = yaml.safe_load((exp / "best.yaml").read_text())
    cfg = load_config(str(exp / "best_config.yaml"))
    assert cfg.train.lr == pytest.approx(best["params"]["train.lr"])
    final = run_training(cfg, tmp_path / "train", progress=False)
    history = pd.read_csv(tmp_path / "train" / "metrics.csv")
    # ASHA may have stopped the best trial early; the first epochs of the full run are the same epochs
    rows = pd.read_parquet(exp / "results.parquet").set_index("trial_id")
    epochs = int(rows.loc[best["trial_id"], "epochs"])
    # best.yaml's value is the confirmed mean over seeds; the search trial's own figure is kept beside it
    assert history["val/best_macro_acc"].iloc[epochs - 1] == pytest.approx(best["single_seed_value"], abs=1e-6)
    assert final["epochs"] == 3


def test_resume_refuses_a_changed_space(experiment, micro_data_config):
    from harness.tune.run import TuneOptions, resolve_experiment

    _, exp = experiment
    doc = yaml.safe_load(yaml.safe_dump(SPACE))
    doc["search"]["train.lr"] = {"loguniform": [1.0e-4, 3.0e-2]}
    changed = space_file(exp.parent.parent, doc)
    with pytest.raises(ValueError, match=r"refusing to resume; changed: search\.train\.lr\.low: 0\.001 -> 0\.0001"):
        resolve_experiment(TuneOptions(space=str(changed), name="e2e", storage=str(exp.parent), resume=True,
                                       overrides=micro_overrides(micro_data_config)))


# ------------------------------------------------------------ SIGKILL the driver, then --resume
def _driver(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "tune", *args, "--confirm-top", "0"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _finished_trials(exp) -> int:
    """Trials recorded as finished so far (the results table is written atomically, or not yet)."""
    results = exp / "results.csv"
    return int((pd.read_csv(results)["status"] == FINISHED).sum()) if results.exists() else 0


def _snapshot_after_results(exp) -> bool:
    """Tune's experiment snapshot (TUNE_GLOBAL_CHECKPOINT_S=1) was written after the results table."""
    snapshots = glob.glob(str(exp / "experiment_state-*.json"))
    return bool(snapshots) and max(os.path.getmtime(f) for f in snapshots) > os.path.getmtime(exp / "results.csv")


def test_sigkill_then_resume_finishes_without_rerunning(tmp_path, micro_data_config):
    doc = yaml.safe_load(yaml.safe_dump(SPACE))
    doc["budget"].update(samples=3, grace_period=3, max_concurrent=1)   # no ASHA stops; one trial at a time
    path = space_file(tmp_path, doc)
    storage = tmp_path / "runs"
    exp = storage / "killed"
    common = ["--space", str(path), "--name", "killed", "--storage", str(storage),
              *micro_overrides(micro_data_config)]
    proc = _driver(common)
    deadline = time.monotonic() + 120
    try:   # kill once at least one trial finished and another one has checkpoints: mid-run
        while time.monotonic() < deadline:
            if _finished_trials(exp) == 1 and _snapshot_after_results(exp):
                break   # trial 1 is in Tune's experiment snapshot; trials 2 and 3 are not finished
            assert _finished_trials(exp) < 2, "missed the window: two trials finished before a snapshot"
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        else:
            pytest.fail("no trial finished within 120 s")
    finally:
        kill_group(proc)
    before = pd.read_csv(exp / "results.csv")
    finished_before = before[before["status"] == FINISHED].set_index("trial_id")
    assert 1 <= len(finished_before) < 3

    resumed = _driver(["--resume", "--name", "killed", "--storage", str(storage)])
    out, _ = resumed.communicate(timeout=180)
    kill_group(resumed)
    assert resumed.returncode == 0, out
    after = pd.read_csv(exp / "results.csv")
    assert len(after) == 3 and after["trial_id"].is_unique and (after["status"] == FINISHED).all(), after
    after = after.set_index("trial_id")
    for tid, row in finished_before.iterrows():   # finished trials kept their numbers: never rerun
        assert after.loc[tid, "best/val/best_macro_acc"] == row["best/val/best_macro_acc"]
        assert after.loc[tid, "wall_s"] == pytest.approx(row["wall_s"])
    assert (exp / "best_config.yaml").exists()


def test_confirmation_reruns_the_top_trials_over_seeds_and_chooses_by_their_mean(experiment):
    # --confirm-top 2 --confirm-seeds 2: the two best trials re-run over seeds 0 and 1 through the
    # ablation runner; best_config.yaml is the one with the better mean validation figure
    from harness.tune.confirm import CONFIRMED

    rc, exp = experiment
    assert rc == 0
    results = pd.read_parquet(exp / "results.parquet")
    board = pd.read_csv(exp / f"{CONFIRMED}.csv")
    top2 = results.sort_values("best/val/best_macro_acc", ascending=False).head(2)["trial_id"].tolist()
    assert board["trial_id"].tolist() == top2 and (board["n_seeds"] == 2).all()
    assert board["confirmed/test_macro_acc_mean"].between(0, 1).all()
    winner = board.sort_values("confirmed/val_macro_acc_mean", ascending=False).iloc[0]
    info = yaml.safe_load((exp / "best.yaml").read_text())
    assert info["trial_id"] == winner["trial_id"] and "confirmation seeds" in info["chosen_by"]
    assert info["value"] == pytest.approx(winner["confirmed/val_macro_acc_mean"])
    best = yaml.safe_load((exp / "best_config.yaml").read_text())
    params = results.set_index("trial_id").loc[winner["trial_id"]]
    assert best["train"]["lr"] == pytest.approx(params["config/train.lr"])
    # every trial row carries the test figures of its validation-chosen checkpoint
    assert results["last/test/macro_acc"].between(0, 1).all()


def test_resume_after_a_finished_confirmation_reruns_nothing(experiment, micro_data_config):
    from harness.engine.store import ResultStore
    from harness.tune.run import TuneOptions, run_tune

    _, exp = experiment
    before = (exp / "best_config.yaml").read_text()
    opts = TuneOptions(space=None, name="e2e", storage=str(exp.parent), resume=True, confirm_top=2, confirm_seeds=2)
    assert run_tune(opts) == 0
    session = ResultStore(exp / "confirm").manifest()["sessions"][-1]
    assert session["ran"] == 0 and session["skipped"] == session["planned"] == 4
    assert (exp / "best_config.yaml").read_text() == before


def test_the_driver_records_provenance_and_every_trials_history(experiment):
    # the one results store: provenance taken when the run started, one record per trial with its
    # status and per-epoch history (read back through Ray's ResultGrid), which the report reads
    from harness.schema import PROVENANCE, RECORDS

    _, exp = experiment
    prov = json.loads((exp / PROVENANCE).read_text())
    assert prov["git_commit"] and prov["hardware"]["cpu_count"] >= 1 and "ray" in prov["versions"]
    table = pd.read_parquet(exp / "results.parquet")
    for _, row in table.iterrows():
        record = json.loads((exp / RECORDS / f"{row['trial_id']}.json").read_text())
        assert record["status"] == row["status"]
        assert [h["epoch"] for h in record["history"]] == list(range(1, row["epochs"] + 1))
        assert record["metrics"]["test/macro_acc"] == pytest.approx(row["last/test/macro_acc"])
