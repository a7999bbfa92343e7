"""The results table (one row per trial, parquet and CSV) and the best config, rewritten whenever a trial
ends and once more at the end. Rows come from Ray's own trial records (config, status, last result,
per-metric min/max), so a resumed experiment lists each trial once however often epochs were replayed."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import yaml
from ray.tune import Callback

from ..engine.store import ended_status
from ..schema import (  # noqa: F401  (re-exported: the writers' names for the stored schema)
    BEST_CONFIG,
    BEST_INFO,
    ENDED,
    ERROR,
    FINISHED,
    INTERRUPTED,
    RESULTS,
    STOPPED,
    TEST_KEYS,
)
from ..train.config import from_dict, to_dict
from ..train.dotted import merge_params
from .space import Space
from .storage import ExperimentDir


def trial_status(trial: Any, max_epochs: int, experiment_over: bool = False) -> str:
    """What happened to `trial`, from Ray's record of it.

    Ray marks the result a trial ends on with `done`, both when the trainable returned and when
    the scheduler stopped it; a trial Ray terminated without such a result was cut off by the
    driver stopping (SIGINT, an exception in the driver). Before the experiment is over, a trial
    that has not ended is pending, running or paused; after, it was interrupted."""
    status = str(trial.status)
    ended = ended_status(status == "ERROR", (trial.last_result or {}) if status == "TERMINATED" else {}, max_epochs)
    if ended is not None:
        return ended
    if status == "TERMINATED" or experiment_over:
        return INTERRUPTED
    return status.lower()   # pending / running / paused: the experiment is not over


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def trial_row(trial: Any, space: Space, experiment_over: bool = False) -> dict:
    last = trial.last_result or {}
    analysis = trial.metric_analysis.get(space.metric, {}) if trial.last_result else {}
    status = trial_status(trial, space.budget["max_epochs"], experiment_over)
    epochs = int(last.get("epoch") or 0)
    row: dict[str, Any] = {"trial_id": trial.trial_id, "status": status, "epochs": epochs}
    for d in space.search:
        row[f"config/{d.key}"] = trial.config.get(d.key)
    row[f"best/{space.metric}"] = _num(analysis.get(space.mode))
    row[f"last/{space.metric}"] = _num(last.get(space.metric))
    # test/*: the test figures of the trial's validation-chosen checkpoint (reported, never chosen on)
    for key in ("val/macro_acc", "val/acc", "val/log_loss", "train/loss", *TEST_KEYS):
        if key != space.metric:
            row[f"last/{key}"] = _num(last.get(key))
    row["wall_s"] = _num(last.get("time_total_s"))
    row["stopped_at_epoch"] = epochs if status in (STOPPED, INTERRUPTED, ERROR) else None
    row["failures"] = int(getattr(trial, "num_failures", 0) or 0)   # crashes retried (or the last, if ERROR)
    row["error"] = (str(trial.error_file) if trial.error_file else "") if status == ERROR else ""
    row["path"] = trial.path
    return row


def results_frame(trials: list[Any], space: Space, experiment_over: bool = False) -> pd.DataFrame:
    rows = {t.trial_id: trial_row(t, space, experiment_over) for t in trials}   # keyed: a trial appears once
    return pd.DataFrame(list(rows.values()))


def best_row(df: pd.DataFrame, space: Space) -> pd.Series | None:
    col = f"best/{space.metric}"
    ok = df[df[col].notna()] if len(df) else df
    if not len(ok):
        return None
    return ok.loc[ok[col].idxmax() if space.mode == "max" else ok[col].idxmin()]


def best_params(row: pd.Series, space: Space) -> dict[str, Any]:
    values = {d.key: row.get(f"config/{d.key}") for d in space.search}   # None or NaN: not sampled (a conditional)
    return {k: v.item() if hasattr(v, "item") else v for k, v in values.items() if not pd.isna(v)}


def read_results(exp: ExperimentDir) -> pd.DataFrame:
    """The results table as written, through the experiment's own file system (a local folder or a URI)."""
    with exp.open(f"{RESULTS}.parquet") as fh:
        return pd.read_parquet(fh)


def write_results(exp: ExperimentDir, trials: list[Any], space: Space, experiment_over: bool = False) -> None:
    df = results_frame(trials, space, experiment_over)
    exp.write(f"{RESULTS}.parquet", lambda p: df.to_parquet(p, index=False))
    exp.write(f"{RESULTS}.csv", lambda p: df.to_csv(p, index=False))
    best = best_row(df, space)
    if best is not None:
        write_best(exp, space, best, {"status": best["status"], "value": float(best[f"best/{space.metric}"])})


def write_best(exp: ExperimentDir, space: Space, row: pd.Series, info: dict) -> None:
    """best_config.yaml (a whole run config for `ascbench train`) of the trial in results `row`, and
    best.yaml saying which trial it is and why it won (`info`)."""
    params = best_params(row, space)
    exp.write_text(BEST_CONFIG, yaml.safe_dump(to_dict(from_dict(merge_params(space.base, params))), sort_keys=False))
    info = {"trial_id": str(row["trial_id"]), "params": params, "metric": space.metric, "mode": space.mode, **info}
    exp.write_text(BEST_INFO, yaml.safe_dump(info, sort_keys=False))


class ResultsCallback(Callback):
    """Rewrites the table whenever a trial ends, so a crash at any moment leaves a current one."""

    def __init__(self, exp: ExperimentDir, space: Space):
        self.exp, self.space = exp, space

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        write_results(self.exp, trials, self.space)

    on_trial_error = on_trial_complete

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Called when Ray's loop ends: after every trial ended, or after a SIGINT or an exception
        in the driver (a trial still pending or running then was interrupted)."""
        write_results(self.exp, trials, self.space, experiment_over=True)
