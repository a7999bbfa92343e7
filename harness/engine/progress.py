"""The one progress display: a line each time a trial ends (finished, stopped early or failed).

A Tune `Callback` rather than a `ProgressReporter`: with Ray's own output silenced (verbose=0)
the callback still sees every trial end, and the same lines read well on a terminal and in a log.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback


class TrialLines(Callback):
    def __init__(self, label: str, total: int, done: int = 0, metric: str | None = None, mode: str = "max",
                 stream: TextIO | None = None):
        self.label, self.total, self.done, self.errors = label, total, done, 0
        self.metric, self.mode, self.stream = metric, mode, stream
        self.best: tuple[float, str] | None = None
        self.start = time.monotonic()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["stream"] = None   # not picklable; sys.stdout is used after a restore
        return state

    def setup(self, **info: Any) -> None:
        self.start = time.monotonic()   # a restored experiment's clock starts again (monotonic is per process)

    def _best(self, trial: Any) -> str:
        if self.metric is None:
            return ""
        value = trial.metric_analysis.get(self.metric, {}).get(self.mode) if trial.last_result else None
        if isinstance(value, (int, float)) and math.isfinite(value) and (
                self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])):
            self.best = (float(value), trial.trial_id)
        return "" if self.best is None else f", best {self.metric} = {self.best[0]:.4f} ({self.best[1]})"

    def _line(self, trial: Any, error: bool) -> None:
        self.done += 1
        self.errors += error
        print(f"{self.label}: {self.done}/{self.total} done, {self.errors} errors{self._best(trial)}, "
              f"{time.monotonic() - self.start:.0f}s", file=self.stream or sys.stdout, flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, error=True)
