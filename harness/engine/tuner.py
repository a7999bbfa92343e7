"""The one Tuner builder: a search (searcher + scheduler) and fixed runs (a grid over run hashes) alike, on
the one trainable (`harness.tune.trainable.trial_trainable`), so every experiment gets the same
checkpointing, retries, folder names and resume."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (Ray's default embeds every param and overflows paths). Pickled by name
    into every experiment's tuner.pkl: renaming it breaks `--resume` of existing experiments."""
    return trial.trial_id


@dataclass
class Plan:
    """What one Ray experiment runs and where it keeps its state."""
    name: str
    storage: str
    resources: dict[str, float]             # per trial: {"cpu": n, "gpu": n}
    inputs: dict[str, Any]                  # trial_trainable's keywords: base= or configs=
    param_space: dict | None = None         # fixed runs: {"_run": tune.grid_search(hashes)}
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    reuse_actors: bool | None = None       # None: Ray's default
    max_failures: int = 1
    keep_checkpoints: int = 1
    callbacks: list = field(default_factory=list)
    verbose: bool = False


def trainable(plan: Plan):
    from ray import tune

    from ..tune.trainable import trial_trainable

    return tune.with_resources(tune.with_parameters(trial_trainable, **plan.inputs), plan.resources)


def restorable(path: str) -> bool:
    """Ray kept enough experiment state at `path` to restore it."""
    from ray import tune

    return tune.Tuner.can_restore(path)


def build_tuner(plan: Plan, restore: str | None = None):
    """A new Tuner for `plan`, or the experiment at `restore` continued (errored trials retried)."""
    from ray import tune

    if restore is not None:
        return tune.Tuner.restore(restore, trainable=trainable(plan), resume_errored=True)
    return tune.Tuner(
        trainable(plan),
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(search_alg=plan.search_alg, scheduler=plan.scheduler, num_samples=plan.num_samples,
                                    reuse_actors=plan.reuse_actors, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=plan.name, storage_path=plan.storage, verbose=1 if plan.verbose else 0, callbacks=plan.callbacks,
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=plan.keep_checkpoints),
        ),
    )
