"""Run an ablation on the engine: each missing (arm, seed) is one trial with its own resources, in parallel.

Done runs are skipped by hash (the results store), so repeating the command is cheap and
adding a seed or a variant runs only what is new. Without `--resume`, a run that was cut
off restarts from its first epoch; with it, unfinished Ray experiments of this ablation are
restored first and their trials continue from their last epoch checkpoint.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ascmamba import create_model
from ascmamba.complexity import model_complexity
from ascmamba.frontend import FrontEnd

from ..engine.outcome import fit
from ..engine.ray_env import quiet_ray
from ..engine.store import ResultStore, ended_status, is_ablation_dir, read_results, trial_record
from ..engine.tuner import Plan, build_tuner, restorable
from ..io import write_text_atomic
from ..ray_runtime import ensure_ray
from ..schema import ERROR, FINISHED
from ..tune.trainable import FINAL_FILE
from .grid import Grid, load_grid, plan_runs
from .results import load_ablation

RAY_DIR = "ray"
COMPLETE = ".complete"


def run_complexity(config: dict, data: dict) -> dict:
    """Params and MACs of a run's model at the run's own front end, clip length and class count;
    `data` is the provenance block of a final report (classes, cities, front_end, seconds)."""
    kwargs = {k: v for k, v in config["model"].items() if k != "name" and v is not None}
    kwargs["num_classes"] = len(data["classes"])
    kwargs["num_cities"] = max(1, len(data["cities"]))
    model = create_model(config["model"]["name"], **kwargs)
    seconds = float(data["seconds"])
    cx = model_complexity(model, FrontEnd(**data["front_end"]), seconds)
    return {"params": cx.params, "macs": cx.macs, "macs_by_kind": cx.macs_by_kind, "seconds": seconds}


def run_record(result, run: str, config: dict) -> dict:
    """The store record of a finished run: the engine's trial record plus the final report and complexity."""
    final_path = Path(result.path) / FINAL_FILE
    final = json.loads(final_path.read_text(encoding="utf-8"))
    return trial_record(result, run, config["train"]["epochs"]) | {
        "config": config, "status": FINISHED, "final": final, "complexity": run_complexity(config, final["data"]),
        "finished_at": datetime.fromtimestamp(final_path.stat().st_mtime, UTC).isoformat(),
    }


def harvest(root: Path, configs: dict[str, dict], store: ResultStore) -> None:
    """Record every finished run of this ablation's Ray experiments (final report written) not yet stored."""
    ray_root = root / RAY_DIR
    for exp_dir in sorted(p for p in ray_root.iterdir() if p.is_dir()) if ray_root.is_dir() else []:
        for result in read_results(exp_dir):
            run = (result.config or {}).get("_run")
            if run in configs and not store.done(run) and (Path(result.path) / FINAL_FILE).is_file():
                store.put(run_record(result, run, configs[run]))


def _fit(tuner, exp_dir: Path) -> tuple[list[str], bool]:
    """Run a Tuner; returns one line per errored run, and whether the driver was interrupted
    (a run neither errored nor ended: Ctrl-C stopped it). Only an experiment whose every run
    ended is marked complete; --resume restores the others."""
    grid = fit(tuner)
    if grid is None:
        return [], True
    statuses = [(r, ended_status(r.error is not None, r.metrics or {}, 0)) for r in grid]
    errors = [f"{r.config.get('_run')}: {str(r.error).strip().splitlines()[-1] if str(r.error).strip() else r.error}"
              for r, status in statuses if status == ERROR]
    interrupted = any(status is None for _, status in statuses)
    if not errors and not interrupted:
        write_text_atomic(exp_dir / COMPLETE, datetime.now(UTC).isoformat() + "\n")
    return errors, interrupted


def _run_pending(plan: Plan, root: Path, pending: list[str], resume: bool) -> tuple[list[str], bool]:
    """Restore this ablation's unfinished Ray experiments (with --resume), then run what is still missing."""
    from ray import tune

    store, ray_root = ResultStore(root), root / RAY_DIR
    errors: list[str] = []
    interrupted = False
    if resume and ray_root.is_dir():
        for exp_dir in sorted(p for p in ray_root.iterdir() if p.is_dir() and not (p / COMPLETE).exists()):
            if restorable(str(exp_dir)) and not interrupted:
                new_errors, interrupted = _fit(build_tuner(plan, restore=str(exp_dir)), exp_dir)
                errors += new_errors
        harvest(root, plan.inputs["configs"], store)
        pending = [h for h in pending if not store.done(h)]
    if pending and not interrupted:
        plan.param_space = {"_run": tune.grid_search(pending)}
        new_errors, interrupted = _fit(build_tuner(plan), ray_root / plan.name)
        errors += new_errors
    return errors, interrupted


def run_ablation(grid: Grid, storage: str | Path, name: str | None = None, address: str | None = None,
                 resume: bool = False, progress: bool = True) -> dict:
    """Run what is missing; returns the manifest (plan, sessions, failures)."""
    from ..data.handle import prepare_handles
    from ..engine.progress import TrialLines
    from ..train.config import from_dict

    quiet_ray()
    root = (Path(storage) / (name or grid.name)).resolve()
    store = ResultStore(root)
    runs = plan_runs(grid)
    configs = {r.hash: r.config for r in runs}
    manifest = store.manifest() if is_ablation_dir(root) else {"sessions": []}
    manifest.update({"kind": "ablation", "name": name or grid.name, "grid": asdict(grid),
                     "plan": [{"arm": r.arm, "kind": r.kind, "seed": r.seed, "hash": r.hash} for r in runs],
                     "configs": configs})
    store.write_manifest(manifest)
    store.write_provenance()
    harvest(root, configs, store)  # trials that finished after a previous driver died
    pending = [h for h in dict.fromkeys(r.hash for r in runs) if not store.done(h)]
    session = {"started": datetime.now(UTC).isoformat(), "planned": len(configs),
               "skipped": len(configs) - len(pending), "resources": grid.resources}
    start = time.perf_counter()
    errors, interrupted = [], False
    if pending:
        # the data once in the driver: one handle per distinct data, split seed and front end
        handles = prepare_handles((from_dict(configs[h]) for h in pending), progress)
        ensure_ray(address)
        lines = TrialLines(f"ablate {name or grid.name}", len(configs), done=len(configs) - len(pending))
        plan = Plan(name="run-" + datetime.now().strftime("%Y%m%d-%H%M%S"), storage=str(root / RAY_DIR),
                    resources={"cpu": grid.resources["cpu"], "gpu": grid.resources["gpu"]},
                    inputs={"configs": configs, "handles": handles}, callbacks=[lines] if progress else [])
        errors, interrupted = _run_pending(plan, root, pending, resume)
        harvest(root, configs, store)
    session.update({"finished": datetime.now(UTC).isoformat(), "wall_s": time.perf_counter() - start,
                    "ran": sum(store.done(h) for h in pending), "errors": errors, "interrupted": interrupted})
    manifest["sessions"].append(session)
    manifest["missing"] = sorted(h for h in configs if not store.done(h))
    store.write_manifest(manifest)
    return manifest


def run_grid_document(doc: dict, storage: str | Path, file_stem: str):
    """Write a grid built in code as `storage/<file_stem>.yaml`, run what is missing and load the results.

    The benchmarks' way into the one runner: a grid they build is saved next to its results, so a
    later `ascbench ablate --config` of that file, or a rerun, finds and finishes the same runs.
    """
    grid_path = Path(storage) / f"{file_stem}.yaml"
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(grid_path, yaml.safe_dump(doc, sort_keys=False))
    grid = load_grid(grid_path)
    run_ablation(grid, storage, progress=False)
    return load_ablation(Path(storage) / grid.name)
