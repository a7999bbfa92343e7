"""One progress table that updates in place: running, stopped, finished, errors, best so far.

A Tune `Callback` rather than a `ProgressReporter`: with Ray's own output silenced
(verbose=0) the callback still sees every step, and it prints nothing but our table.
On a terminal it redraws in place; in a log (no tty) it prints a line only when
something changed.
"""
from __future__ import annotations

import math
import re
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from .results import ERROR, FINISHED, INTERRUPTED, STOPPED, trial_status
from .space import Space


class ProgressCallback(Callback):
    def __init__(self, space: Space, name: str, stream: TextIO | None = None, interval_s: float = 1.0):
        self.space, self.name = space, name
        self.stream = stream
        self.interval_s = interval_s
        self._last_draw = 0.0
        self._last_text = ""
        self._lines = 0
        self._start = time.monotonic()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["stream"] = None   # not picklable; sys.stdout is used after a restore
        return state

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def render(self, trials: list[Any], experiment_over: bool = False) -> str:
        max_epochs = self.space.budget["max_epochs"]
        counts = {k: 0 for k in ("pending", "running", FINISHED, STOPPED, INTERRUPTED, ERROR)}
        best_value, best_trial = math.nan, None
        running = []
        for t in trials:
            status = trial_status(t, max_epochs, experiment_over)
            counts[status if status in counts else "pending"] = counts.get(status, 0) + 1
            if status in ("running", "paused") and t.last_result:
                running.append(f"{t.trial_id}@{int(t.last_result.get('epoch') or 0)}/{max_epochs}")
            if t.last_result:
                value = t.metric_analysis.get(self.space.metric, {}).get(self.space.mode)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    better = value > best_value if self.space.mode == "max" else value < best_value
                    if best_trial is None or better:
                        best_value, best_trial = value, t
        total = self.space.budget["samples"]
        elapsed = time.monotonic() - self._start
        lines = [
            f"tune {self.name}: {counts[FINISHED] + counts[STOPPED] + counts[ERROR]}/{total} done | "
            f"running {counts['running']} | finished {counts[FINISHED]} | stopped {counts[STOPPED]} | "
            f"errors {counts[ERROR]} | {elapsed:.0f}s" + (f" | interrupted {counts[INTERRUPTED]}" if counts[INTERRUPTED] else ""),
        ]
        if best_trial is not None:
            params = ", ".join(f"{d.key}={_fmt(best_trial.config.get(d.key))}" for d in self.space.search
                               if d.key in best_trial.config)
            lines.append(f"  best {self.space.metric} = {best_value:.4f} ({best_trial.trial_id}: {params})")
        if running:
            lines.append("  running: " + " ".join(running))
        return "\n".join(lines)

    def draw(self, trials: list[Any], force: bool = False, experiment_over: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.interval_s:
            return
        self._last_draw = now
        text = self.render(trials, experiment_over)
        out = self._out()
        tty = hasattr(out, "isatty") and out.isatty()
        if tty:
            if self._lines:
                out.write(f"\x1b[{self._lines}F\x1b[J")
            out.write(text + "\n")
            self._lines = text.count("\n") + 1
        elif force or re.sub(r"\| \d+s", "", text) != re.sub(r"\| \d+s", "", self._last_text):
            out.write(text + "\n")
        self._last_text = text
        out.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.draw(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.draw(trials, force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.draw(trials, force=True, experiment_over=True)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
