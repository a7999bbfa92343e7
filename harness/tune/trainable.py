"""The one Ray Tune trainable of tune, confirmation and ablate runs: one `Trial` per Ray trial.

It reports every epoch through `ray.tune.report` with a checkpoint holding the whole
trial state, and resumes from `ray.tune.get_checkpoint()` after a crash or a node
loss, so an interrupted trial continues where it stopped and replays identically.
The feature cache is shared by path: each worker memory-maps it, nothing large goes
through Ray's object store.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.config import from_dict
from ..train.dotted import merge_params
from ..train.trial import Trial

STATE_FILE = "state.pt"
FINAL_FILE = "final.json"


def scalar_metrics(metrics: dict) -> dict:
    """Ray wants plain numbers; None (e.g. no pseudo-labels yet) becomes NaN."""
    return {k: (float("nan") if v is None else v) for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}


def trial_trainable(params: dict[str, Any], base: dict | None = None, configs: dict[str, dict] | None = None) -> None:
    """Ray Tune function trainable of every engine experiment: a fixed run's whole config
    (`configs[params["_run"]]`), or a search trial's `base` config with the searched `params` set."""
    from ray import tune

    if "_run" in params:
        cfg = from_dict(configs[params["_run"]])
    else:
        cfg = from_dict(merge_params(base, {k: v for k, v in params.items() if not k.startswith("_")}))
    trial = Trial(cfg, progress=False)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trial.load_state_dict(load_checkpoint(Path(d) / STATE_FILE), source=str(Path(d) / STATE_FILE))
    trial_dir = Path(tune.get_context().get_trial_dir())
    if trial.state.epoch >= cfg.train.epochs and trial.state.history:
        # restored from its final checkpoint (it finished after the last experiment snapshot
        # before the driver died): report the last epoch again instead of training
        write_json_atomic(trial_dir / FINAL_FILE, trial.final_report())
        tune.report(scalar_metrics(trial.state.history[-1]))
        return
    for metrics in trial.epochs():
        done = trial.state.epoch >= cfg.train.epochs
        if done:
            write_json_atomic(trial_dir / FINAL_FILE, trial.final_report())
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint(Path(d) / STATE_FILE, trial.state_dict())
            tune.report(scalar_metrics(metrics), checkpoint=tune.Checkpoint.from_directory(d))
