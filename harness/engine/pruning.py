"""The adapter that tells Optuna an early-stopped trial was PRUNED, not COMPLETE.

Stock `OptunaSearch.on_trial_complete` tells every trial the scheduler stopped as COMPLETE with
the score it had when stopped: a 1-epoch score then competes with 4-epoch scores as if final,
which biases TPE toward whatever looks good early. Here each epoch's value is reported as an
intermediate value and a trial that ends before the epoch budget is told PRUNED, so TPE treats it
the way Optuna's own pruners do. A NaN or missing score is told FAIL (stock leaves it RUNNING).

Ray offers no hook for this, so the adapter reads three private attributes of `OptunaSearch`
(`_ot_trials`, `_ot_study`, `_completed_trials`) and nothing else;
tests/harness/engine/test_pruning.py fails if Ray changes them.
"""
from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

EPOCH_KEY = "epoch"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class PruningOptunaSearch(OptunaSearch):
    """`OptunaSearch` that reports per-epoch intermediate values and tells early-stopped trials PRUNED."""

    def __init__(self, *args: Any, max_epochs: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._max_epochs = int(max_epochs)
        self._reported: dict[str, set[int]] = {}
        self._last_epoch: dict[str, int] = {}

    def _open(self, trial_id: str) -> optuna.Trial | None:
        """The Optuna trial behind `trial_id` while it is still open (None once told or unknown)."""
        if trial_id in self._completed_trials:
            return None
        return self._ot_trials.get(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        ot_trial = self._open(trial_id)
        if ot_trial is None:
            return
        step = int(result.get(EPOCH_KEY) or result.get("training_iteration") or 0)
        self._last_epoch[trial_id] = max(step, self._last_epoch.get(trial_id, 0))
        value = _number(result.get(self.metric))
        done = self._reported.setdefault(trial_id, set())
        if value is None or step in done:  # a resumed trial may replay epochs; Optuna keeps the first
            return
        ot_trial.report(value, step)
        done.add(step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._open(trial_id)
        if ot_trial is None:
            return
        if result:
            self.on_trial_result(trial_id, result)
        epoch = int((result or {}).get(EPOCH_KEY) or self._last_epoch.get(trial_id, 0))
        value = _number((result or {}).get(self.metric))
        if error or value is None:
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        elif epoch < self._max_epochs:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        else:
            self._ot_study.tell(ot_trial, value, state=TrialState.COMPLETE)
        self._completed_trials.add(trial_id)
