"""Ray's environment and log levels, set in one place before any Tuner is built."""
from __future__ import annotations

import logging
import os

QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",          # the old output engine honours verbose=0
    "RAY_DEDUP_LOGS": "0",
    "TUNE_GLOBAL_CHECKPOINT_S": "1",    # snapshot often: SIGKILL then redoes at most ~1 s of bookkeeping
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",   # checkpoints every epoch are the point
    "RAY_TRAIN_V2_ENABLED": "0",
}


def quiet_ray(verbose: bool = False) -> None:
    """Ray's own output only with `verbose`; the engine prints its own progress lines."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    level = logging.INFO if verbose else logging.ERROR
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(level)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
