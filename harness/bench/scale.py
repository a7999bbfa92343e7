"""`ascbench bench scale`: trials per hour of one search on one Ray node vs. a two-node cluster on
loopback with the same CPUs per node (the reference: the one-node run of the same invocation).

Both phases train the same seeded configurations for the same fixed epochs (FIFO, random search:
equal work), each on a fresh cluster in its own child process (`run_phase`). `max_concurrent` is
the bigger cluster's CPU count, so the one-node run is held back by its CPUs, not by the limit.
Ray's `timestamp` is whole seconds: a trial's start and end are taken at the middle of their
one-second window, and `peak concurrent` counts only overlaps longer than that second, so two trials
run back to back on one CPU never count as concurrent. `--quick` is a smoke run: its sub-second
trials make the ratio all start-up cost.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io import write_json_atomic
from .searches import cpmobile_space, write_space

GOAL = 1.8                  # two nodes / one node, trials per hour
TIMESTAMP_RESOLUTION_S = 1.0
NAME = "scale"


@dataclass(frozen=True)
class Sizes:
    preset: str
    samples: int
    epochs: int


FULL = Sizes("tiny", 16, 4)
QUICK = Sizes("micro", 4, 2)


class PhaseFailed(UserError):
    """A phase did not finish every trial: its rate would not be comparable (a UserError so
    the command line reports it in one line)."""


def scale_space(sizes: Sizes, max_concurrent: int) -> dict:
    """The search both phases run: equal work (FIFO, fixed epochs, seeded random configurations)."""
    return cpmobile_space({"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}}, samples=sizes.samples,
                          max_epochs=sizes.epochs, grace_period=sizes.epochs, max_concurrent=max_concurrent,
                          scheduler="fifo", searcher="random")


def per_hour(trials: int, seconds: float) -> float:
    return trials / seconds * 3600.0 if seconds > 0 else math.nan


def trial_interval(rows: list[dict], resolution_s: float = TIMESTAMP_RESOLUTION_S) -> tuple[float, float]:
    """(start, end) in Unix seconds of one trial from its result rows (whole-second timestamps,
    each taken at the middle of its window)."""
    first, last = rows[0], rows[-1]
    start = first["timestamp"] + resolution_s / 2 - first["time_this_iter_s"]
    return start, last["timestamp"] + resolution_s / 2


def peak_concurrency(intervals: list[tuple[float, float]], tolerance_s: float = TIMESTAMP_RESOLUTION_S) -> int:
    """Most intervals overlapping at once, counting only overlaps longer than `tolerance_s`."""
    events = []
    for start, end in intervals:
        events += [(start, 1), (max(start, end - tolerance_s), -1)]
    running = peak = 0
    for _, step in sorted(events):   # at a tie an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return max(peak, 1) if intervals else 0


def summarise_phase(phase: dict, exp_dir: Path, sizes: Sizes) -> dict:
    """Rates, span and concurrency of one finished phase; PhaseFailed unless every trial finished."""
    import pandas as pd

    from ..engine.store import ResultStore
    from ..tune.results import FINISHED, RESULTS

    label = f"{phase['nodes']} node(s) x {phase['cpus_per_node']} CPU"
    kept = f"tune log kept at {phase['log']}"
    if phase["tune_rc"] != 0:
        raise PhaseFailed(f"bench scale: {label}: ascbench tune exited {phase['tune_rc']}; {kept}")
    csv = exp_dir / f"{RESULTS}.csv"
    if not csv.exists():
        raise PhaseFailed(f"bench scale: {label}: no {csv}; {kept}")
    df = pd.read_csv(csv)
    finished = int((df["status"] == FINISHED).sum())
    if len(df) != sizes.samples or finished != sizes.samples:
        counts = ", ".join(f"{v} {k}" for k, v in df["status"].value_counts().items())
        raise PhaseFailed(f"bench scale: {label}: {finished}/{sizes.samples} trials finished ({counts}); {kept}")
    trials = []
    for row in df.itertuples(index=False):
        record = ResultStore(exp_dir).get(row.trial_id)   # per-epoch history as the driver stored it
        rows = record["history"]
        start, end = trial_interval(rows)
        trials.append({"trial_id": row.trial_id, "lr": record["config"]["train.lr"],
                       "epochs": rows[-1]["epoch"], "pid": rows[-1]["pid"], "node_ip": rows[-1]["node_ip"],
                       "start": start, "end": end, "wall_s": end - start})
    intervals = [(t["start"], t["end"]) for t in trials]
    span_s = max(e for _, e in intervals) - min(s for s, _ in intervals)
    n = len(trials)
    return {**phase, "trials": n, "span_s": span_s,
            "per_hour_wall": per_hour(n, phase["tune_wall_s"]), "per_hour_span": per_hour(n, span_s),
            "peak_concurrent": peak_concurrency(intervals), "worker_processes": len({t["pid"] for t in trials}),
            "trial_wall_s_mean": sum(t["wall_s"] for t in trials) / n, "trial_rows": trials}


def compare(one: dict, two: dict) -> dict:
    """Two-node over one-node rates, by wall time (the goal) and in steady state."""
    ratio_wall = two["per_hour_wall"] / one["per_hour_wall"]
    ratio_span = two["per_hour_span"] / one["per_hour_span"]
    same = (sorted(round(t["lr"], 12) for t in one["trial_rows"])
            == sorted(round(t["lr"], 12) for t in two["trial_rows"]))
    return {"ratio_wall": ratio_wall, "ratio_span": ratio_span, "goal": GOAL, "goal_met": ratio_wall >= GOAL,
            "goal_met_steady": ratio_span >= GOAL, "same_configs": same}


def _run_phase(work: Path, nodes: int, cpus_per_node: int, tune_args: list[str], timeout_s: float) -> dict:
    tag = f"{nodes}x{cpus_per_node}"
    out, log = work / f"phase-{tag}.json", work / f"tune-{tag}.log"
    cmd = [sys.executable, "-m", "harness.bench.scale", "--nodes", str(nodes),
           "--cpus-per-node", str(cpus_per_node), "--out", str(out), "--log", str(log),
           "--timeout", str(timeout_s), "--", *tune_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0 or not out.exists():
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        raise PhaseFailed(f"bench scale: the {tag} cluster phase exited {proc.returncode}: {last.strip()} "
                          f"(work dir kept: {work})")
    return json.loads(out.read_text())


def run_phase(nodes: int, cpus_per_node: int, tune_args: list[str], log: str, timeout_s: float) -> dict:
    """In a phase's own process: time `ascbench tune TUNE_ARGS --address ADDR` on a fresh `nodes` x
    `cpus_per_node` loopback cluster. Its own process because the cluster's in-process GCS client
    aborts its process once the GCS is gone. The tuner is a further subprocess, the command a user
    would type, so its wall time is what the user waits for (start, imports, joining, search, table);
    it inherits the loopback environment that `loopback_cluster` sets."""
    from ..local_cluster import loopback_cluster

    t0 = time.monotonic()
    with loopback_cluster(nodes=nodes, cpus_per_node=cpus_per_node) as (cluster, _workers):
        cluster_start_s = time.monotonic() - t0
        cmd = [sys.executable, "-m", "harness.cli", "tune", *tune_args, "--address", cluster.address]
        with open(log, "w") as out:
            t1 = time.monotonic()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
            except subprocess.TimeoutExpired:
                rc = 124
            tune_wall_s = time.monotonic() - t1
        address = cluster.address
    return {"nodes": nodes, "cpus_per_node": cpus_per_node, "address": address, "tune_rc": rc,
            "tune_wall_s": tune_wall_s, "cluster_start_s": cluster_start_s, "log": log, "command": cmd}


def run_scale_benchmark(quick: bool = False, cpus_per_node: int = 1, timeout_s: float = 900.0) -> dict:
    """Run the search on 1 node, then on 2 nodes, `cpus_per_node` CPUs each; compare trials per hour."""
    from ascmamba import get_spec

    from ..data.prepare import prepare_data
    from ..train.config import from_dict
    from ..tune.space import load_space

    sizes = QUICK if quick else FULL
    t_all = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ascbench-scale-"))
    space_file = write_space(scale_space(sizes, max_concurrent=2 * cpus_per_node), work / "scale.yaml")
    overrides = [f"data.preset={sizes.preset}", f"data.cache_dir={work / 'cache'}"]
    # the cache the driver will look for: same config, same seed (run_tune's prepare then only opens it)
    cfg = from_dict(load_space(str(space_file), overrides=overrides).base)
    t0 = time.monotonic()
    prepare_data(cfg.data, seed=cfg.seed, progress=False, model_front_end=get_spec(cfg.model.name).front_end)
    prepare_s = time.monotonic() - t0

    phases = []
    for nodes in (1, 2):
        storage = work / f"runs-{nodes}x{cpus_per_node}"
        tune_args = ["--space", str(space_file), "--name", NAME, "--storage", str(storage), "--confirm-top", "0",
                     *overrides]
        phase = _run_phase(work, nodes, cpus_per_node, tune_args, timeout_s)
        phases.append(summarise_phase(phase, storage / NAME, sizes))
    shutil.rmtree(work, ignore_errors=True)   # kept above whenever a phase failed
    return {"benchmark": "scale", "model": "cpmobile", "preset": sizes.preset, "samples": sizes.samples,
            "epochs_per_trial": sizes.epochs, "cpus_per_node": cpus_per_node, "max_concurrent": 2 * cpus_per_node,
            "strategy": "fifo + random (seed 0)", "machine_cpus": os.cpu_count(), "prepare_s": prepare_s,
            "phases": phases, **compare(*phases), "total_s": time.monotonic() - t_all}


def format_scale_table(r: dict) -> str:
    lines = [
        f"trials per hour, one Ray node vs. two on loopback ({r['cpus_per_node']} CPU(s) per node, "
        f"{r['machine_cpus']} on this machine): {r['samples']} {r['model']} trials x {r['epochs_per_trial']} epochs "
        f"on the {r['preset']} preset, {r['strategy']}, 1 CPU per trial, at most {r['max_concurrent']} at once",
        f"{'phase':8s} {'nodes':>5s} {'CPUs/node':>9s} {'trials':>6s} {'wall s':>7s} {'trials/h':>8s} "
        f"{'span s':>7s} {'trials/h':>8s} {'peak concurrent':>15s} {'mean trial s':>12s} {'cluster start s':>15s}",
        f"{'':8s} {'':>5s} {'':>9s} {'':>6s} {'':>7s} {'(wall)':>8s} {'':>7s} {'(span)':>8s}",
    ]
    for p in r["phases"]:
        label = "1 node" if p["nodes"] == 1 else f"{p['nodes']} nodes"
        lines.append(f"{label:8s} {p['nodes']:5d} {p['cpus_per_node']:9d} {p['trials']:6d} {p['tune_wall_s']:7.1f} "
                     f"{p['per_hour_wall']:8.0f} {p['span_s']:7.1f} {p['per_hour_span']:8.0f} "
                     f"{p['peak_concurrent']:15d} {p['trial_wall_s_mean']:12.1f} {p['cluster_start_s']:15.1f}")
    verdict = "met" if r["goal_met"] else "NOT met"
    lines += [
        f"2 nodes / 1 node: {r['ratio_wall']:.2f}x trials per hour by wall time (goal >= {r['goal']:.1f}x: {verdict}); "
        f"{r['ratio_span']:.2f}x in steady state (span)",
        "wall: the `ascbench tune --address` subprocess, start to exit; span: first trial's first epoch start to the "
        "last trial's last report; same configurations in both phases: " + ("yes" if r["same_configs"] else "NO"),
        "mean trial: one trial's first epoch start to its last report; the work is the same in both phases, so a "
        "longer one means the trials competed for CPU",
        f"data preparation before both phases {r['prepare_s']:.1f}s; whole benchmark {r['total_s']:.0f}s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """One phase of `ascbench bench scale` (`run_phase`), its timings written as JSON."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.scale", description=main.__doc__)
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--cpus-per-node", type=int, required=True)
    p.add_argument("--out", required=True, help="JSON file for the phase's timings")
    p.add_argument("--log", required=True, help="where the tuner's output goes")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the tuner is killed")
    p.add_argument("tune_args", nargs=argparse.REMAINDER, help="-- then the arguments after `ascbench tune`")
    args = p.parse_args(argv)
    tune_args = args.tune_args[1:] if args.tune_args[:1] == ["--"] else args.tune_args
    write_json_atomic(args.out, run_phase(args.nodes, args.cpus_per_node, tune_args, args.log, args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
