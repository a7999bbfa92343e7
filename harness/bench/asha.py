"""`ascbench bench asha`: how much sooner ASHA + TPE gets to a good model than FIFO random search
(the reference), the same search otherwise; the target is FIFO's best validation figure less 1 point.

A run that never reaches the target counts as not reached (its whole budget, ratio undefined),
never as a partial success. Ray is started once for all runs, so start-up is in neither side's
wall time.
"""
from __future__ import annotations

import math
import statistics
from functools import partial
from pathlib import Path
from typing import Any

from .searches import METRIC, TrialLog, alternating, cpmobile_space, prepared_workdir, run_tune_timed, write_space

GOAL_RATIO = 1 / 3
TOLERANCE = 0.01          # "within 1 point" of macro accuracy


def bench_space(quick: bool, seed: int, scheduler: str, searcher: str) -> dict:
    """The searched space: training knobs of CP-Mobile with a wide learning-rate range, so that
    configurations differ a lot. The first rung is at epoch 3, chosen when validation used
    stale BatchNorm running averages and every CP-Mobile trial on `tiny` sat at chance after
    epochs 1 and 2; kept since, so results stay comparable across versions. Full: 24 trials
    of the default 12-epoch budget, rungs at 3 and 9; quick: 8 trials of 6 epochs, one rung at 3."""
    samples, epochs, rf = (8, 6, 2) if quick else (24, 12, 3)
    return cpmobile_space(
        {"train.lr": {"loguniform": [1.0e-4, 3.0e-2]},
         "train.weight_decay": {"loguniform": [1.0e-4, 1.0e-1]},
         "train.mixup_alpha": {"choice": [0.0, 0.3]},
         "train.label_smoothing": {"uniform": [0.0, 0.2]}},
        samples=samples, max_epochs=epochs, grace_period=3, reduction_factor=rf, max_concurrent=2,
        scheduler=scheduler, searcher=searcher, seed=seed)


def time_to_target(events: list[dict], target: float) -> dict:
    """Trial-epochs and seconds until the running best first reaches `target` (None if never)."""
    best = float("-inf")
    for count, event in enumerate(events, start=1):
        best = max(best, event["value"])
        if best >= target - 1e-9:
            return {"reached": True, "trial_epochs": count, "seconds": event["t"]}
    return {"reached": False, "trial_epochs": None, "seconds": None}


def summarise_run(events: list[dict], wall_s: float, target: float) -> dict:
    trials = {e["trial"] for e in events}
    return {"best": max((e["value"] for e in events), default=float("nan")), "trials": len(trials),
            "trial_epochs": len(events), "wall_s": wall_s, "to_target": time_to_target(events, target)}


def compare_rep(fifo_events: list[dict], fifo_wall: float, asha_events: list[dict], asha_wall: float) -> dict:
    """One repetition: the target from FIFO's best, both runs' cost to reach it, and the ratios."""
    target = max(e["value"] for e in fifo_events) - TOLERANCE
    fifo = summarise_run(fifo_events, fifo_wall, target)
    asha = summarise_run(asha_events, asha_wall, target)
    rep: dict[str, Any] = {"target": target, "fifo": fifo, "asha": asha, "epoch_ratio": None, "time_ratio": None}
    if asha["to_target"]["reached"]:
        rep["epoch_ratio"] = asha["to_target"]["trial_epochs"] / fifo["to_target"]["trial_epochs"]
        rep["time_ratio"] = asha["to_target"]["seconds"] / max(fifo["to_target"]["seconds"], 1e-9)
    return rep


def _tune_once(kind: str, rep: int, quick: bool, tmp: Path, preset: str, cache: str) -> tuple[list[dict], float]:
    doc = bench_space(quick, seed=rep, scheduler=kind, searcher="random" if kind == "fifo" else "tpe")
    log = TrialLog()
    wall = run_tune_timed(write_space(doc, tmp / f"{kind}{rep}.yaml"), tmp / "runs", f"{kind}{rep}", preset, cache,
                          callbacks=(log,))
    # every epoch report in the order the driver received it
    events = [{"t": t, "trial": trial, "epoch": int(result.get("epoch", 0)), "value": float(result[METRIC])}
              for t, trial, result in log.results]
    return events, wall


def run_asha_benchmark(quick: bool = False, reps: int = 3) -> dict:
    """`reps` repetitions of FIFO + random vs ASHA + TPE (the order alternates per repetition)."""
    import ray

    from ..engine.ray_env import quiet_ray
    from ..ray_runtime import ensure_ray

    preset = "tiny"   # micro is too small to learn anything in a few epochs: every trial ties at chance
    with prepared_workdir("ascbench-asha-", preset) as (tmp, cache):
        quiet_ray(False)
        started = ensure_ray()
        try:
            run = partial(_tune_once, quick=quick, tmp=tmp, preset=preset, cache=cache)
            results = [{**compare_rep(*runs["fifo"], *runs["asha"]), "seed": rep, "order": order}
                       for rep, order, runs in alternating(reps, "fifo", "asha", run)]
        finally:
            if started:
                ray.shutdown()
    doc = bench_space(quick, 0, "asha", "tpe")
    # a repetition where ASHA never reached the target counts as infinitely costly in the median
    medians = {f"{key}_median": statistics.median(math.inf if r[key] is None else r[key] for r in results)
               for key in ("epoch_ratio", "time_ratio")}
    b = doc["budget"]
    return {"model": "cpmobile", "preset": preset, "reps": results, "samples": b["samples"],
            "max_epochs": b["max_epochs"], "grace_period": b["grace_period"], "reduction_factor": b["reduction_factor"],
            "max_concurrent": b["max_concurrent"], "search": doc["search"], "tolerance": TOLERANCE,
            "goal_epoch_ratio": GOAL_RATIO, "reached": sum(r["epoch_ratio"] is not None for r in results), **medians}


def format_asha_table(r: dict) -> str:
    lines = [
        f"ASHA + TPE vs FIFO random search (reference): {r['samples']} trials of {r['model']} on the {r['preset']} "
        f"preset, {r['max_epochs']} epochs each at most, ASHA grace {r['grace_period']} reduction "
        f"{r['reduction_factor']}, {r['max_concurrent']} at a time; target = FIFO's best "
        f"{METRIC} - {r['tolerance'] * 100:.0f} point",
        f"{'seed':>4s} {'target':>7s} {'FIFO best':>9s} {'ASHA best':>9s} {'FIFO ep to tgt/all':>18s} "
        f"{'ASHA ep to tgt/all':>18s} {'FIFO s to tgt':>13s} {'ASHA s to tgt':>13s} {'epochs':>7s} {'time':>6s}",
    ]
    for rep in r["reps"]:
        f, a = rep["fifo"], rep["asha"]

        def cost(run: dict, key: str, fmt: str) -> str:
            value = run["to_target"][key]
            return "never" if value is None else format(value, fmt)

        lines.append(
            f"{rep['seed']:4d} {rep['target']:7.1%} {f['best']:9.1%} {a['best']:9.1%} "
            f"{cost(f, 'trial_epochs', 'd') + '/' + str(f['trial_epochs']):>18s} "
            f"{cost(a, 'trial_epochs', 'd') + '/' + str(a['trial_epochs']):>18s} "
            f"{cost(f, 'seconds', '.0f'):>13s} {cost(a, 'seconds', '.0f'):>13s} "
            f"{_ratio(rep['epoch_ratio']):>7s} {_ratio(rep['time_ratio']):>6s}")
    met = r["epoch_ratio_median"] <= r["goal_epoch_ratio"]
    lines.append(
        f"median ASHA / FIFO trial-epochs to the target: {_ratio(r['epoch_ratio_median'])} over {len(r['reps'])} "
        f"repetitions (ASHA reached it in {r['reached']}); goal <= 0.33x: {'met' if met else 'NOT met'}; "
        f"wall time to the target: {_ratio(r['time_ratio_median'])}")
    return "\n".join(lines)


def _ratio(x: float | None) -> str:
    return "never" if x is None or x == float("inf") else f"{x:.2f}x"
