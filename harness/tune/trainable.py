"""The one Ray Tune trainable of tune, confirmation and ablate runs: one `Trial` per Ray trial.

It reports every epoch through `ray.tune.report` with a checkpoint holding the whole
trial state, and resumes from `ray.tune.get_checkpoint()` after a crash or a node
loss, so an interrupted trial continues where it stopped and replays identically.
The data comes prepared by the driver as a `DataHandle` (split, vocabulary, normalisation,
the feature cache entry's path): each worker memory-maps the cache, nothing large goes
through Ray's object store and no trial parses a CSV or opens a wav.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..data.handle import DataHandle, handle_key
from ..io import write_json_atomic
from ..train.checkpoint import save_checkpoint
from ..train.config import RunConfig, from_dict
from ..train.dotted import merge_params
from ..train.trial import Trial

STATE_FILE = "state.pt"
FINAL_FILE = "final.json"


def scalar_metrics(metrics: dict) -> dict:
    """Ray wants plain numbers; None (e.g. no pseudo-labels yet) becomes NaN."""
    return {k: (float("nan") if v is None else v) for k, v in metrics.items()
            if isinstance(v, (int, float)) or v is None}


def trial_config(params: dict[str, Any], base: dict | None, configs: dict[str, dict] | None) -> RunConfig:
    """`configs[params["_run"]]` for a run planned whole (ablation, confirmation), else `base` with
    the searched keys of `params` set (tune)."""
    if "_run" in params:
        return from_dict(configs[params["_run"]])
    return from_dict(merge_params(base, {k: v for k, v in params.items() if not k.startswith("_")}))


def trial_trainable(params: dict[str, Any], base: dict | None = None, configs: dict[str, dict] | None = None,
                    handles: dict[str, DataHandle] | None = None) -> None:
    """Ray Tune function trainable on the config `trial_config` resolves.

    The trial uses `handles[handle_key(cfg)]` when the driver prepared it; a config with no handle
    there (a searched `data.*` or `model.name` key can change which data and front end a trial
    needs) prepares its own data in the trial, as `ascbench train` does.
    """
    from ray import tune

    cfg = trial_config(params, base, configs)
    trial = Trial(cfg, data=(handles or {}).get(handle_key(cfg)), progress=False)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trial.resume(Path(d) / STATE_FILE)
    trial_dir = Path(tune.get_context().get_trial_dir())

    def report(metrics: dict, final: dict | None) -> bool:
        if final is not None:   # before the last report: the driver may harvest the trial right after it
            write_json_atomic(trial_dir / FINAL_FILE, final)
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint(Path(d) / STATE_FILE, trial.state_dict())
            tune.report(scalar_metrics(metrics), checkpoint=tune.Checkpoint.from_directory(d))
        return True   # Ray's scheduler stops a trial by not resuming it

    trial.run(report)
