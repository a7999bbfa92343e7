"""A search space run as a bare Optuna study in a process pool: the reference `bench overhead`
measures ascbench's Ray tuner against, the leanest honest way to run the same search without Ray.

The parent asks the same seeded sampler (as Ray's driver-side `OptunaSearch` does, behind the same
concurrency limit); spawned workers run the same `Trial.run` epoch loop, report each epoch through a
`JournalStorage` file and ask `SuccessiveHalvingPruner` (ASHA's rule) whether to stop. What it lacks
is what Ray adds: per-epoch checkpoints, retry of a failed trial, resume, a multi-node cluster.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from ..data.handle import DataHandle, handle_key, prepare_handles
from ..tune.search import DefineByRun, make_sampler
from ..tune.space import Space

_STUDY: optuna.Study | None = None


def _storage(path: str) -> JournalStorage:
    return JournalStorage(JournalFileBackend(path))


def _init_worker(study_name: str, journal: str, pruner: optuna.pruners.BasePruner, threads: int) -> None:
    import torch

    global _STUDY
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a loaded study gets MedianPruner unless told otherwise
    _STUDY = optuna.load_study(study_name=study_name, storage=_storage(journal), pruner=pruner)


def _run_trial(trial_id: int, params: dict[str, Any], base: dict, metric: str, submitted: float,
               handles: dict[str, DataHandle]) -> dict:
    """One trial in a worker: train epoch by epoch, report, stop when the pruner says so."""
    from ..train.trial import Trial
    from ..tune.trainable import trial_config

    started = time.time()
    assert _STUDY is not None, "worker not initialised"
    trial = optuna.Trial(_STUDY, trial_id)
    cfg = trial_config(params, base, None)
    run = Trial(cfg, data=handles.get(handle_key(cfg)), progress=False)
    outcome: dict[str, Any] = {"epoch_s": [], "value": None, "pruned": False}

    def report(metrics: dict, final: dict | None) -> bool:
        outcome["epoch_s"].append(float(metrics["time/epoch_s"]))
        outcome.setdefault("first_epoch_start", time.time() - outcome["epoch_s"][0])
        outcome["value"] = float(metrics[metric])
        trial.report(outcome["value"], int(metrics["epoch"]))
        outcome["pruned"] = final is None and trial.should_prune()
        return not outcome["pruned"]

    run.run(report)
    return {"trial_id": trial_id, "pid": os.getpid(), "submitted": submitted, "started": started,
            "ended": time.time(), **outcome}


def run_bare_optuna(space: Space, workdir: str | os.PathLike) -> dict:
    """Run `space` (ASHA-equivalent pruning, the space's sampler and seed) to completion; per-trial
    timings on the wall clock (`time.time`, comparable across processes). The data is prepared once
    here and handed to every trial, as ascbench's tuner does."""
    from ..train.config import from_dict

    b = space.budget
    journal = str(Path(workdir) / "optuna-journal.log")
    name = "bare"
    t0 = time.time()
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=b["grace_period"],
                                                     reduction_factor=b["reduction_factor"])
              if space.strategy["scheduler"] == "asha" else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=_storage(journal), sampler=make_sampler(space),
                                pruner=pruner, direction="maximize" if space.mode == "max" else "minimize")
    sample = DefineByRun(space.search)
    handles = prepare_handles([from_dict(space.base)])
    threads = max(1, int(space.resources["cpu"]))
    rows: list[dict] = []
    running: dict[Future, optuna.Trial] = {}
    asked = 0
    with ProcessPoolExecutor(max_workers=b["max_concurrent"], mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(name, journal, pruner, threads)) as pool:
        while asked < b["samples"] or running:
            while asked < b["samples"] and len(running) < b["max_concurrent"]:
                trial = study.ask()
                sample(trial)
                running[pool.submit(_run_trial, trial._trial_id, dict(trial.params), space.base, space.metric,
                                    time.time(), handles)] = trial
                asked += 1
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                trial = running.pop(future)
                row = future.result()
                if row["pruned"]:
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, row["value"])
                rows.append({**row, "number": trial.number, "params": dict(trial.params)})
    wall = time.time() - t0
    return {"t0": t0, "wall_s": wall, "rows": sorted(rows, key=lambda r: r["number"]),
            "best_value": study.best_value, "best_params": study.best_params}
