"""The one experiment engine (harness/engine): the Ray internals the pruning adapter relies on,
one Tuner builder for every experiment, and provenance recorded at run time read by the report."""
from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from tests.support import REPO

HARNESS = REPO / "harness"


def _stock_searcher():
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="m", mode="max",
                            sampler=optuna.samplers.RandomSampler(seed=0))
    searcher.suggest("a")
    return searcher


def test_the_optuna_search_internals_the_pruning_adapter_reads_are_still_there():
    # harness/engine/pruning.py reads these private attributes of Ray's OptunaSearch: a Ray
    # upgrade that renames or retypes them must fail here, not silently tell Optuna nothing
    searcher = _stock_searcher()
    assert isinstance(searcher._ot_study, optuna.Study)
    assert isinstance(searcher._ot_trials, dict) and isinstance(searcher._ot_trials["a"], optuna.Trial)
    assert isinstance(searcher._completed_trials, set) and "a" not in searcher._completed_trials
    assert searcher.metric == "m"
    from ray.tune.search.optuna import OptunaSearch

    assert list(inspect.signature(OptunaSearch.on_trial_result).parameters) == ["self", "trial_id", "result"]
    assert list(inspect.signature(OptunaSearch.on_trial_complete).parameters) == ["self", "trial_id", "result", "error"]


def test_stock_optuna_search_still_tells_a_stopped_trial_complete():
    # the reason the adapter exists: if Ray starts telling early-stopped trials PRUNED, drop it
    searcher = _stock_searcher()
    searcher.on_trial_complete("a", {"m": 0.1, "epoch": 1})
    assert searcher._ot_study.trials[0].state == TrialState.COMPLETE
    assert "a" in searcher._completed_trials


def _tuner_calls(path: Path) -> list[str]:
    """`Tuner(...)` / `Tuner.restore(...)` / `Tuner.can_restore(...)` calls in one module."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            text = ast.unparse(node.func)
            if text.split(".")[-1] == "Tuner" or ".Tuner." in f".{text}":
                calls.append(text)
    return calls


def test_tune_and_ablate_build_their_tuner_through_the_one_builder():
    import harness.ablate.execute as ablate
    import harness.engine.tuner as engine
    import harness.tune.run as tune_run

    assert tune_run.build_tuner is ablate.build_tuner is engine.build_tuner
    assert tune_run.fit is ablate.fit
    builders = {str(p.relative_to(HARNESS)) for p in HARNESS.rglob("*.py") if _tuner_calls(p)}
    assert builders == {"engine/tuner.py"}, builders
    # both bind the one trainable
    src = inspect.getsource(engine.trainable)
    assert "trial_trainable" in src and not hasattr(ablate, "_run_one")


def test_the_report_shows_the_provenance_recorded_when_the_run_started(tmp_path):
    from harness.cli import main
    from harness.schema import FINISHED, PROVENANCE, RECORDS

    exp = tmp_path / "t"
    (exp / RECORDS).mkdir(parents=True)
    pd.DataFrame({"trial_id": ["a"], "status": [FINISHED], "epochs": [2], "best/val/best_macro_acc": [0.5],
                  "wall_s": [3.0]}).to_csv(exp / "results.csv", index=False)
    (exp / PROVENANCE).write_text(json.dumps({
        "git_commit": "c0ffee1234", "versions": {"python": "3.x"},
        "hardware": {"host": "the-run-host", "platform": "p", "cpu": "c", "cpu_count": 64, "gpus": ["H200"]}}))
    (exp / RECORDS / "a.json").write_text(json.dumps({"id": "a", "history": [
        {"epoch": 1, "val/best_macro_acc": 0.4}, {"epoch": 2, "val/best_macro_acc": 0.5}]}))
    assert main(["report", str(exp), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "REPORT.md").read_text()
    assert "`c0ffee1234` (recorded when the run started)" in text and "host the-run-host" in text
    assert "64 CPU cores" in text and "H200" in text
    assert "per-epoch histories unavailable" not in text
