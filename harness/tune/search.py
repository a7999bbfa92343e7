"""Optuna TPE (or random) behind Ray Tune: the define-by-run space, the seeded sampler, the journal
file, and the searcher (harness.engine.pruning tells ASHA-stopped trials to Optuna as PRUNED)."""
from __future__ import annotations

import optuna
from ray.tune.search import ConcurrencyLimiter

from ..engine.pruning import PruningOptunaSearch
from .space import Dist, Space


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
