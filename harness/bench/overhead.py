"""`ascbench bench overhead`: what Ray Tune costs per trial, measured on a small real tune.

Runs `ascbench tune` (the real driver: ASHA, Optuna, checkpoints every epoch, reused actors)
on cpmobile with a handful of trials, and times every trial from the driver's side with a
Tune callback (monotonic clock): trial start (Ray launches it) -> first epoch reported ->
trial end. Each reported epoch carries `time/epoch_s` (its training and validation steps,
measured inside the trial), so per trial

    time to first epoch  = first report - start
    start-up             = time to first epoch - the first epoch's own `time/epoch_s`
    outside share        = 1 - sum(time/epoch_s) / (end - start)

the rest being worker start or reuse, building the `Trial` (opening the cache, the model),
checkpoint writes and reports. A trial on a fresh worker process (the first `max_concurrent`,
or one after a crash) is timed from that process's own start (from /proc, by the result's
`pid`), since Ray's trial-start event comes only once the actor exists; later trials reuse
those workers (`reuse_actors=True`) and are timed from Ray's trial start. Both groups are
summarised apart.
"""
from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from ray.tune import Callback

EPOCH_KEY = "time/epoch_s"


def _space(quick: bool) -> dict:
    epochs = 2 if quick else 3
    return {
        "metric": "val/best_macro_acc", "mode": "max", "seed": 0,
        # grace_period = max_epochs: no ASHA stops, every trial runs its whole budget
        "budget": {"samples": 6, "max_epochs": epochs, "grace_period": epochs, "reduction_factor": 2,
                   "max_concurrent": 2, "max_failures": 0},
        "resources": {"cpus": 1},
        "base": {"model": {"name": "cpmobile"}, "pseudo": {"mode": "none"}, "train": {"batch_size": 16}},
        "search": {"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}},
    }


class TrialTimer(Callback):
    """A Ray Tune callback recording, per trial, driver-side times and each epoch's `time/epoch_s`."""

    def __init__(self) -> None:
        self.trials: dict[str, dict] = {}
        self.order: list[str] = []

    def _rec(self, trial: Any) -> dict:
        if trial.trial_id not in self.trials:
            self.order.append(trial.trial_id)
            self.trials[trial.trial_id] = {"trial_id": trial.trial_id, "start": None, "first": None,
                                           "end": None, "epoch_s": [], "first_iter_s": None,
                                           "pid": None, "process_age_s": None}
        return self.trials[trial.trial_id]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        rec = self._rec(trial)
        if rec["start"] is None:
            rec["start"] = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        rec = self._rec(trial)
        if rec["first"] is None:
            rec["first"] = time.monotonic()
            rec["first_iter_s"] = float(result.get("time_this_iter_s") or 0.0)
            rec["pid"] = result.get("pid")
            rec["process_age_s"] = _process_age(result.get("pid"))
        rec["epoch_s"].append(float(result.get(EPOCH_KEY) or 0.0))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._rec(trial)["end"] = time.monotonic()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._rec(trial)["end"] = time.monotonic()


def _process_age(pid: Any) -> float | None:
    """Seconds since process `pid` started (Linux /proc; None elsewhere or if it is gone)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])   # field 22: start time, clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, TypeError, IndexError):
        return None


def _summary(rows: list[dict]) -> dict:
    if not rows:
        return {"trials": 0}
    wall = sum(r["wall_s"] for r in rows)
    inside = sum(r["epochs_s"] for r in rows)
    return {
        "trials": len(rows),
        "first_epoch_s_median": statistics.median(r["to_first_epoch_s"] for r in rows),
        "startup_s_median": statistics.median(r["startup_s"] for r in rows),
        "outside_share": 1.0 - inside / wall if wall > 0 else float("nan"),
        "outside_share_median": statistics.median(r["outside_share"] for r in rows),
    }


def run_overhead_benchmark(quick: bool = False) -> dict:
    """Run a 6-trial cpmobile tune (micro preset when quick, tiny otherwise), 2 trials at once."""
    import ray

    from ..data.prepare import DataConfig, prepare_data
    from ..tune import run as tune_run

    space = _space(quick)
    preset = "micro" if quick else "tiny"
    timer = TrialTimer()
    original = tune_run.build_tuner

    def build_with_timer(*args: Any, **kwargs: Any):
        tuner = original(*args, **kwargs)
        # the driver builds its own RunConfig; add the timer to its callbacks (same list object)
        tuner._local_tuner.get_run_config().callbacks.append(timer)
        return tuner

    with tempfile.TemporaryDirectory(prefix="ascbench-overhead-") as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(yaml.safe_dump(space, sort_keys=False))
        cache = str(Path(tmp) / "cache")
        t_prep = time.monotonic()
        prepare_data(DataConfig(preset=preset, cache_dir=cache), seed=0, progress=False)
        prep_s = time.monotonic() - t_prep
        opts = tune_run.TuneOptions(space=str(path), name="overhead", storage=str(Path(tmp) / "runs"),
                                    overrides={"data.preset": preset, "data.cache_dir": cache})
        started_here = not ray.is_initialized()
        tune_run.build_tuner = build_with_timer
        t0 = time.monotonic()
        try:
            rc = tune_run.run_tune(opts, stream=io.StringIO())
        finally:
            tune_run.build_tuner = original
        total_s = time.monotonic() - t0

    rows = []
    seen_pids: set = set()
    for tid in timer.order:
        rec = timer.trials[tid]
        if rec["start"] is None or rec["first"] is None or rec["end"] is None:
            continue
        # Ray calls on_trial_start once the actor exists; for a trial on a fresh worker process,
        # count from the process's own start (fork, `import ray`, `import torch`) instead
        fresh = rec["pid"] not in seen_pids
        seen_pids.add(rec["pid"])
        start = rec["start"]
        if fresh and rec["process_age_s"] is not None:
            start = min(start, rec["first"] - rec["process_age_s"])
        wall = rec["end"] - start
        to_first = rec["first"] - start
        epochs_s = sum(rec["epoch_s"])
        rows.append({
            "trial_id": tid, "actor": "fresh" if fresh else "reused", "pid": rec["pid"],
            "epochs": len(rec["epoch_s"]), "wall_s": wall, "epochs_s": epochs_s,
            "to_first_epoch_s": to_first, "first_epoch_s": rec["epoch_s"][0],
            "startup_s": to_first - rec["epoch_s"][0],
            "in_trainable_setup_s": rec["first_iter_s"] - rec["epoch_s"][0],
            "outside_share": 1.0 - epochs_s / wall if wall > 0 else float("nan"),
        })
    return {
        "rc": rc, "model": "cpmobile", "preset": preset, "samples": space["budget"]["samples"],
        "epochs_per_trial": space["budget"]["max_epochs"], "max_concurrent": space["budget"]["max_concurrent"],
        "ray_started_here": started_here, "prepare_s": prep_s, "total_s": total_s,
        "rows": rows, "all": _summary(rows),
        "fresh": _summary([r for r in rows if r["actor"] == "fresh"]),
        "reused": _summary([r for r in rows if r["actor"] == "reused"]),
    }


def format_overhead_table(r: dict) -> str:
    lines = [
        f"per-trial Ray Tune overhead: {r['samples']} trials of {r['model']} on the {r['preset']} preset, "
        f"{r['epochs_per_trial']} epochs each, {r['max_concurrent']} at once (reuse_actors on)",
        f"total {r['total_s']:.1f}s for the tune call "
        f"({'incl. starting Ray' if r['ray_started_here'] else 'Ray already up'}); "
        f"data preparation before it {r['prepare_s']:.1f}s; exit code {r['rc']}",
        f"{'trial':10s} {'actor':7s} {'epochs':>6s} {'wall s':>7s} {'train+eval s':>12s} {'to 1st ep s':>11s} "
        f"{'start-up s':>10s} {'in-trial setup s':>16s} {'outside':>8s}",
    ]
    for row in r["rows"]:
        lines.append(f"{row['trial_id']:10s} {row['actor']:7s} {row['epochs']:6d} {row['wall_s']:7.1f} "
                     f"{row['epochs_s']:12.1f} {row['to_first_epoch_s']:11.1f} {row['startup_s']:10.1f} "
                     f"{row['in_trainable_setup_s']:16.2f} {row['outside_share']:7.0%}")
    for group in ("fresh", "reused", "all"):
        s = r[group]
        if not s.get("trials"):
            continue
        lines.append(f"{group:7s} ({s['trials']} trials): median time to first epoch {s['first_epoch_s_median']:.1f}s "
                     f"(start-up {s['startup_s_median']:.1f}s before the first epoch's own steps); share of trial "
                     f"wall time outside training+evaluation {s['outside_share']:.0%} (pooled), "
                     f"{s['outside_share_median']:.0%} (median)")
    return "\n".join(lines)
