"""Run an ablation on Ray: each missing (arm, seed) is one trial with its own resources, in parallel.

Done runs are skipped by hash (the results store), so repeating the command is cheap and
adding a seed or a variant runs only what is new. Without `--resume`, a run that was cut
off restarts from its first epoch; with it, unfinished Ray experiments of this ablation are
restored first and their trials continue from their last epoch checkpoint.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from ..io import write_text_atomic
from ..ray_runtime import ensure_ray
from .costs import run_complexity
from .grid import Grid, PlannedRun, plan_runs
from .provenance import provenance
from .store import ResultStore, is_ablation_dir

RAY_DIR = "ray"
COMPLETE = ".complete"
HISTORY_KEYS = ("epoch", "stage", "train/loss", "val/macro_acc", "val/acc", "val/log_loss", "time/epoch_s")


def _history(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rows.append({k: r[k] for k in HISTORY_KEYS if k in r} | {"time_total_s": r.get("time_total_s")})
    return rows


def harvest(root: Path, configs: dict[str, dict], store: ResultStore) -> int:
    """Turn every finished Ray trial of this ablation (final.json present) into a store record."""
    added = 0
    for final_path in sorted((root / RAY_DIR).glob("*/*/final.json")):
        trial_dir = final_path.parent
        try:
            params = json.loads((trial_dir / "params.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        run_hash = params.get("_run")
        if run_hash not in configs or store.done(run_hash):
            continue
        final = json.loads(final_path.read_text(encoding="utf-8"))
        history = _history(trial_dir)
        store.put({
            "hash": run_hash,
            "config": configs[run_hash],
            "final": final,
            "complexity": run_complexity(configs[run_hash], final["data"]),
            "history": history,
            "wall_s": history[-1]["time_total_s"] if history else None,
            "trial_dir": str(trial_dir),
            "finished_at": datetime.fromtimestamp(final_path.stat().st_mtime, timezone.utc).isoformat(),
        })
        added += 1
    return added


def _prepare(runs: list[PlannedRun], progress: bool) -> dict:
    """Prepare the data once in the driver, one handle per distinct data, split seed and front end."""
    from ..data.handle import prepare_handles
    from ..train.config import from_dict

    return prepare_handles((from_dict(run.config) for run in runs), progress)


def _fit(tuner, exp_dir: Path) -> tuple[list[str], bool]:
    """Run a Tuner; returns one line per errored trial, and whether the driver was interrupted
    (a trial neither errored nor ended with Ray's `done` mark: Ctrl-C stopped it). Only an
    experiment whose every trial ended is marked complete; --resume restores the others."""
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:   # a second Ctrl-C while Ray was stopping
        return [], True
    errors = [f"{r.config.get('_run')}: {str(r.error).strip().splitlines()[-1] if str(r.error).strip() else r.error}"
              for r in grid if r.error is not None]
    interrupted = any(r.error is None and not (r.metrics or {}).get("done") for r in grid)
    if not errors and not interrupted:
        write_text_atomic(exp_dir / COMPLETE, datetime.now(timezone.utc).isoformat() + "\n")
    return errors, interrupted


def _progress_callback(name: str, total: int, skipped: int):
    """One line per finished run instead of Ray's status table."""
    from ray.tune import Callback

    class AblationProgress(Callback):
        def __init__(self) -> None:
            self.done, self.errors, self.start = skipped, 0, time.perf_counter()

        def _line(self) -> None:
            print(f"ablate {name}: {self.done}/{total} runs done, {self.errors} errors, "
                  f"{time.perf_counter() - self.start:.0f}s", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.done += 1
            self._line()

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.errors += 1
            self._line()

    return AblationProgress()


def run_ablation(grid: Grid, storage: str | Path, name: str | None = None, address: str | None = None,
                 resume: bool = False, progress: bool = True) -> dict:
    """Run what is missing; returns the manifest (plan, sessions, failures)."""
    # checkpoints every epoch are the point (resume); Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the old output engine honours verbose=0
    from ray import tune

    root = (Path(storage) / (name or grid.name)).resolve()
    store = ResultStore(root)
    runs = plan_runs(grid)
    configs = {r.hash: r.config for r in runs}
    manifest = store.manifest() if is_ablation_dir(root) else {"sessions": []}
    manifest.update({
        "kind": "ablation",
        "name": name or grid.name,
        "grid": grid.to_dict(),
        "plan": [{"arm": r.arm, "kind": r.kind, "seed": r.seed, "hash": r.hash} for r in runs],
        "configs": configs,
        "provenance": provenance(),
    })
    store.write_manifest(manifest)
    harvest(root, configs, store)  # trials that finished after a previous driver died
    pending = [h for h in dict.fromkeys(r.hash for r in runs) if not store.done(h)]
    session = {"started": datetime.now(timezone.utc).isoformat(), "planned": len(configs),
               "skipped": len(configs) - len(pending), "resources": grid.resources}
    start = time.perf_counter()
    errors: list[str] = []
    interrupted = False
    if pending:
        handles = _prepare([r for r in runs if r.hash in pending], progress)
        ensure_ray(address)
        from ..tune.trainable import trial_trainable

        trainable = tune.with_resources(tune.with_parameters(trial_trainable, configs=configs, handles=handles),
                                        {"cpu": grid.resources["cpu"], "gpu": grid.resources["gpu"]})
        ray_root = root / RAY_DIR
        if resume and ray_root.is_dir():
            for exp_dir in sorted(p for p in ray_root.iterdir() if p.is_dir() and not (p / COMPLETE).exists()):
                if tune.Tuner.can_restore(str(exp_dir)) and not interrupted:
                    tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_errored=True)
                    new_errors, interrupted = _fit(tuner, exp_dir)
                    errors += new_errors
            harvest(root, configs, store)
            pending = [h for h in pending if not store.done(h)]
        if pending and not interrupted:
            exp_name = "run-" + datetime.now().strftime("%Y%m%d-%H%M%S")
            tuner = tune.Tuner(
                trainable,
                param_space={"_run": tune.grid_search(pending)},
                tune_config=tune.TuneConfig(num_samples=1),
                run_config=tune.RunConfig(
                    name=exp_name,
                    storage_path=str(ray_root),
                    failure_config=tune.FailureConfig(max_failures=1),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    verbose=0,
                    callbacks=[_progress_callback(name or grid.name, len(configs), len(configs) - len(pending))]
                    if progress else [],
                ),
            )
            new_errors, interrupted = _fit(tuner, ray_root / exp_name)
            errors += new_errors
        harvest(root, configs, store)
    session.update({"finished": datetime.now(timezone.utc).isoformat(), "wall_s": time.perf_counter() - start,
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
    import yaml

    from .grid import load_grid
    from .results import load_ablation

    grid_path = Path(storage) / f"{file_stem}.yaml"
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(grid_path, yaml.safe_dump(doc, sort_keys=False))
    grid = load_grid(grid_path)
    run_ablation(grid, storage, progress=False)
    return load_ablation(Path(storage) / grid.name)
