"""What the tuner benchmarks (overhead, asha, scale) share: the CP-Mobile search they run, its data
prepared before any timed run, timed runs of the real `ascbench tune` driver and what it saw of them.

CP-Mobile is the cheapest model that learns on the `tiny` corpus within a few CPU epochs, so the
benchmarks measure the tuner rather than a slow model.
"""
from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from ray.tune import Callback

METRIC = "val/best_macro_acc"


def cpmobile_space(search: dict[str, dict], *, samples: int, max_epochs: int, grace_period: int,
                   max_concurrent: int, reduction_factor: int = 2, scheduler: str = "asha",
                   searcher: str = "tpe", seed: int = 0, max_failures: int = 0) -> dict:
    """A search-space document: CP-Mobile, no pseudo-labels, batch 16, one CPU per trial."""
    return {
        "metric": METRIC, "mode": "max", "seed": seed,
        "budget": {"samples": samples, "max_epochs": max_epochs, "grace_period": grace_period,
                   "reduction_factor": reduction_factor, "max_concurrent": max_concurrent,
                   "max_failures": max_failures},
        "resources": {"cpu": 1},
        "strategy": {"scheduler": scheduler, "searcher": searcher},
        "base": {"model": {"name": "cpmobile"}, "pseudo": {"mode": "none"}, "train": {"batch_size": 16}},
        "search": search,
    }


def write_space(doc: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def prepared_workdir(prefix: str, preset: str) -> Iterator[tuple[Path, str]]:
    """A temporary folder and the feature cache of `preset` built in it, so that no timed run pays for it."""
    from ..data.prepare import DataConfig, prepare_data

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        cache = str(tmp / "cache")
        prepare_data(DataConfig(preset=preset, cache_dir=cache), seed=0, progress=False)
        yield tmp, cache


def alternating(reps: int, first: str, second: str,
                run: Callable[[str, int], Any]) -> Iterator[tuple[int, list[str], dict[str, Any]]]:
    """(repetition, order, {way: run(way, repetition)}) for both ways, alternating which goes first:
    the first of a pair meets colder caches and other jobs' tails."""
    for rep in range(reps):
        order = [first, second] if rep % 2 == 0 else [second, first]
        yield rep, order, {way: run(way, rep) for way in order}


class TrialLog(Callback):
    """What the driver saw, on its monotonic clock: every result in arrival order, with seconds since
    the experiment began, and per trial (in the order first seen) its start, first report and end,
    its worker's pid and that process's age at the first report, and each epoch's `time/epoch_s`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.results: list[tuple[float, str, dict]] = []
        self.trials: dict[str, dict] = {}

    def setup(self, **info: Any) -> None:
        self.t0 = time.monotonic()

    def _rec(self, trial: Any) -> dict:
        return self.trials.setdefault(trial.trial_id, {"trial": trial.trial_id, "handed": None, "first": None,
                                                       "end": None, "epoch_s": [], "pid": None, "process_age_s": None})

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rec = self._rec(trial)
        if rec["handed"] is None:
            rec["handed"] = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        now = time.monotonic()
        self.results.append((now - self.t0, trial.trial_id, result))
        rec = self._rec(trial)
        if rec["first"] is None:
            rec.update(first=now, pid=result.get("pid"), process_age_s=_process_age(result.get("pid")))
        rec["epoch_s"].append(float(result.get("time/epoch_s") or 0.0))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._rec(trial)["end"] = time.monotonic()

    on_trial_error = on_trial_complete


def _process_age(pid: Any) -> float | None:
    """Seconds since process `pid` started (Linux /proc; None elsewhere or if it is gone)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])   # field 22: start time, clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, TypeError, IndexError):
        return None


def run_tune_timed(space_file: Path, storage: Path, name: str, preset: str, cache: str,
                   callbacks: tuple[Any, ...] = ()) -> float:
    """Run `ascbench tune` in this process on `space_file` with the given preset and feature cache,
    output swallowed; returns its wall seconds, raises unless every trial ended."""
    from ..tune import run as tune_run

    opts = tune_run.TuneOptions(space=str(space_file), name=name, storage=str(storage),
                                overrides=[f"data.preset={preset}", f"data.cache_dir={cache}"], confirm_top=0)
    t0 = time.monotonic()
    rc = tune_run.run_tune(opts, stream=io.StringIO(), callbacks=callbacks)
    wall = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"bench: the tune run {name} exited {rc}")
    return wall
