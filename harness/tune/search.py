"""Optuna TPE behind Ray Tune, with ASHA-stopped trials told to Optuna as PRUNED.

Stock `OptunaSearch.on_trial_complete` tells every trial the scheduler stopped as
COMPLETE with the score it had when stopped: a 1-epoch score then competes with
4-epoch scores as if final, which biases TPE toward whatever looks good early.
Here each epoch's value is reported as an intermediate value and a trial that ends
before the epoch budget is told PRUNED, so TPE treats it the way Optuna's own
pruners do. A NaN or missing score is told FAIL (stock leaves such trials RUNNING).
"""
from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from .space import Dist, Space

EPOCH_KEY = "epoch"


class DefineByRun:
    """Optuna define-by-run space: a picklable object (the searcher state is pickled on every
    experiment snapshot, so a closure would break resume); conditionals sample a key only
    when the keys it depends on took one of the listed values."""

    def __init__(self, dists: tuple[Dist, ...]):
        self.dists = tuple(dists)

    def __call__(self, trial: optuna.Trial) -> None:
        for d in self.dists:
            if any(trial.params.get(k, object()) not in values for k, values in d.when.items()):
                continue
            if d.kind == "choice":
                trial.suggest_categorical(d.key, list(d.values))
            elif d.kind == "int":
                trial.suggest_int(d.key, int(d.low), int(d.high), step=int(d.step or 1))
            else:
                trial.suggest_float(d.key, float(d.low), float(d.high), log=d.kind == "loguniform")
        return None


class PruningOptunaSearch(OptunaSearch):
    """`OptunaSearch` that reports per-epoch intermediate values and tells early-stopped trials PRUNED."""

    def __init__(self, *args: Any, max_epochs: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._max_epochs = int(max_epochs)
        self._reported: dict[str, set[int]] = {}
        self._last_epoch: dict[str, int] = {}

    @staticmethod
    def _number(value: Any) -> float | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        step = int(result.get(EPOCH_KEY) or result.get("training_iteration") or 0)
        self._last_epoch[trial_id] = max(step, self._last_epoch.get(trial_id, 0))
        value = self._number(result.get(self.metric))
        done = self._reported.setdefault(trial_id, set())
        if value is None or step in done:  # a resumed trial may replay epochs; Optuna keeps the first
            return
        self._ot_trials[trial_id].report(value, step)
        done.add(step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if result:
            self.on_trial_result(trial_id, result)
        epoch = int((result or {}).get(EPOCH_KEY) or self._last_epoch.get(trial_id, 0))
        value = self._number((result or {}).get(self.metric))
        if error or value is None:
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        elif epoch < self._max_epochs:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        else:
            self._ot_study.tell(ot_trial, value, state=TrialState.COMPLETE)
        self._completed_trials.add(trial_id)

    @property
    def study(self) -> optuna.Study:
        return self._ot_study


def make_sampler(space: Space) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler the space's `strategy.searcher` names."""
    if space.strategy["searcher"] == "random":
        return optuna.samplers.RandomSampler(seed=space.seed)
    return optuna.samplers.TPESampler(seed=space.seed)


def journal_storage(path: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna's journal file at `path` (None: the study lives in memory only).

    Why a journal file: `optuna-dashboard PATH` opens it while the search runs and after, with no
    database server, and it is an append-only log that survives a killed driver. The searcher
    (study included) is still pickled into Ray's experiment snapshots for `--resume`; the journal
    is the study's permanent record.
    """
    if path is None:
        return None
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def make_searcher(space: Space, study_name: str, journal: str | None = None) -> ConcurrencyLimiter:
    """Seeded TPE (or uniform random), one study per experiment (OptunaSearch reuses a same-named
    study otherwise), recorded in the journal file `journal` when given."""
    sampler = make_sampler(space)
    searcher = PruningOptunaSearch(
        space=DefineByRun(space.search), metric=space.metric, mode=space.mode, sampler=sampler,
        study_name=study_name, storage=journal_storage(journal), max_epochs=space.budget["max_epochs"],
    )
    return ConcurrencyLimiter(searcher, max_concurrent=space.budget["max_concurrent"])
