"""The `ascbench tune` driver: validate the space, prepare data once, run or resume the search
on the engine (harness/engine), record every trial, confirm the winners.

Order matters for cost: the space is validated and the data handle built before Ray starts, so
mistakes fail in a second and trials get their data prepared.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine.outcome import INTERRUPTED_RC, fit, resume_hint_on_failure
from ..engine.ray_env import quiet_ray
from ..engine.store import trial_record
from ..engine.tuner import Plan, build_tuner, restorable
from ..errors import UserError
from ..ray_runtime import ensure_ray
from .space import Space, diff_canonical, load_space, space_from_canonical
from .storage import ExperimentDir, storage_root

SPACE_FILE = "space.json"
OPTUNA_JOURNAL = "optuna.log"   # `optuna-dashboard runs/NAME/optuna.log`


@dataclass
class TuneOptions:
    space: str | None
    name: str | None = None
    storage: str | None = None
    samples: int | None = None
    address: str | None = None
    resume: bool = False
    overrides: list[str] | None = None   # key=value, Hydra grammar
    verbose: bool = False
    confirm_top: int = 3      # re-run the top K trials ...
    confirm_seeds: int = 3    # ... over N seeds and choose best_config.yaml by the mean (0: off)


def resolve_experiment(opts: TuneOptions) -> tuple[ExperimentDir, Space]:
    """The experiment dir and its space; refuses a fresh run over an existing dir and a resume
    with a space that differs from the stored one."""
    root = storage_root(opts.storage)
    if opts.resume:
        if not opts.name:
            raise UserError("--resume needs --name NAME (the experiment to continue)")
        exp = ExperimentDir(root, opts.name)
        if not exp.exists(SPACE_FILE):
            raise UserError(f"{exp.uri}: no experiment to resume (no {SPACE_FILE})")
        stored = json.loads(exp.read_text(SPACE_FILE))
        if opts.space is None and (opts.overrides or opts.samples is not None):
            raise UserError("to change overrides or --samples on resume, pass --space as well (changes are refused)")
        if opts.space is not None:
            space = load_space(opts.space, overrides=opts.overrides, samples=opts.samples)
            changed = diff_canonical(stored["canonical"], space.canonical())
            if changed:
                raise UserError(f"{opts.space}: differs from the space {opts.name} was started with "
                                 f"({stored['source']}), refusing to resume; changed: " + "; ".join(changed))
        return exp, space_from_canonical(stored["canonical"], stored["source"])
    if opts.space is None:
        raise UserError("--space is required (a YAML file or a shipped name such as quick)")
    space = load_space(opts.space, overrides=opts.overrides, samples=opts.samples)
    name = opts.name or f"{Path(space.source).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp = ExperimentDir(root, name)
    if exp.exists():
        raise UserError(f"{exp.uri} exists; resume it with --resume --name {name}, or choose another --name")
    return exp, space


def search_plan(exp: ExperimentDir, space: Space, resume: bool, verbose: bool, handles: dict, stream=None,
                callbacks: tuple = ()) -> Plan:
    """The search as an engine plan: Optuna behind a concurrency limit, ASHA (or FIFO), reused workers."""
    from ..engine.progress import TrialLines
    from .results import ResultsCallback

    b = space.budget
    plan = Plan(name=exp.name, storage=exp.storage, resources=dict(space.resources),
                inputs={"base": space.base, "handles": handles}, num_samples=b["samples"], reuse_actors=True,
                max_failures=b["max_failures"], keep_checkpoints=2, verbose=verbose,
                callbacks=[ResultsCallback(exp, space), *callbacks,
                           TrialLines(f"tune {exp.name}", b["samples"], metric=space.metric, mode=space.mode,
                                      stream=stream)])
    if not resume:   # a restored experiment brings its own searcher and scheduler
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

        from .search import make_searcher

        journal = None if exp.local is None else str(exp.local / OPTUNA_JOURNAL)   # none on a remote URI storage
        plan.search_alg = make_searcher(space, study_name=exp.name, journal=journal)
        plan.scheduler = FIFOScheduler() if space.strategy["scheduler"] == "fifo" else ASHAScheduler(
            time_attr="epoch", metric=space.metric, mode=space.mode, max_t=b["max_epochs"],
            grace_period=b["grace_period"], reduction_factor=b["reduction_factor"])
    return plan


def prepare(exp: ExperimentDir, space: Space, opts: TuneOptions) -> dict:
    """The data handle of the search's base config, prepared once in the driver before Ray starts; then
    a fresh experiment's space.json (so a failed preparation leaves the name free) and the provenance."""
    from ..data.handle import prepare_handles
    from ..train.config import from_dict

    if opts.resume and not restorable(exp.uri):
        raise UserError(f"{exp.uri}: Ray found no experiment state to resume (killed before the first snapshot?); "
                         "start it again under a new --name")
    handles = prepare_handles([from_dict(space.base)], progress=opts.verbose)
    if not opts.resume:
        exp.write_text(SPACE_FILE, json.dumps({"source": space.source, "canonical": space.canonical()},
                                              indent=2, sort_keys=True) + "\n")
    exp.store.write_provenance()
    return handles


def record_trials(exp: ExperimentDir, space: Space, grid) -> None:
    """Each trial's record (config, status, per-epoch history, metrics) from Ray's `ResultGrid`."""
    for result in grid:
        exp.store.put(trial_record(result, Path(result.path).name, space.budget["max_epochs"]))


def run_tune(opts: TuneOptions, stream=None, callbacks: tuple = ()) -> int:
    """Run (or resume) one experiment; 0 when every trial ended, 130 when interrupted.
    `callbacks` are extra Ray Tune callbacks (the benchmarks time trials with them)."""
    quiet_ray(opts.verbose)
    exp, space = resolve_experiment(opts)
    out = stream or sys.stdout
    handles = prepare(exp, space, opts)
    started = ensure_ray(opts.address, num_cpus=max(int(space.resources["cpu"]), os.cpu_count() or 1),
                         verbose=opts.verbose)
    t0 = time.monotonic()
    code: int | None = None
    try:
        with resume_hint_on_failure(resume_command(exp)):
            plan = search_plan(exp, space, opts.resume, opts.verbose, handles, stream=stream, callbacks=callbacks)
            grid = fit(build_tuner(plan, restore=exp.uri if opts.resume else None))
            if grid is not None:
                record_trials(exp, space, grid)
                code = report(exp, space, time.monotonic() - t0, out)
            if code == 0:
                from .confirm import confirm

                code = confirm(exp, space, opts.confirm_top, opts.confirm_seeds, resume_command(exp), out)
    except KeyboardInterrupt:   # a second Ctrl-C while Ray was stopping
        code = None
    finally:
        if started:
            import ray

            ray.shutdown()
    if code is None:
        code = report(exp, space, time.monotonic() - t0, out)
        if code == 0:   # every search trial had ended: the Ctrl-C cut the confirmation
            print(f"interrupted during the confirmation; resume with: {resume_command(exp)}", file=out)
            code = INTERRUPTED_RC
    if code == 0:
        from .results import BEST_CONFIG

        print(f"reproduce: ascbench train --config {exp.uri}/{BEST_CONFIG} --out OUT", file=out)
    return code


def resume_command(exp: ExperimentDir) -> str:
    return f"ascbench tune --resume --name {exp.name}" + (
        f" --storage {exp.storage}" if exp.storage != storage_root(None) else "")


def report(exp: ExperimentDir, space: Space, wall_s: float, out) -> int:
    """Print how the experiment ended; 0 when every trial ended (1 when all failed), 130 with the
    resume command when some trial was interrupted or never started."""
    from .results import BEST_CONFIG, ENDED, ERROR, RESULTS, read_results

    if not exp.exists(f"{RESULTS}.parquet"):
        print(f"interrupted before any trial ended; resume with: {resume_command(exp)}", file=out)
        return INTERRUPTED_RC
    df = read_results(exp)
    ended = df["status"].isin(ENDED)
    if len(df) < space.budget["samples"] or not ended.all():
        print(f"interrupted: {int(ended.sum())}/{space.budget['samples']} trials ended; "
              f"resume with: {resume_command(exp)}", file=out)
        return INTERRUPTED_RC
    counts = df["status"].value_counts().to_dict()
    print(f"done in {wall_s:.0f}s: " + ", ".join(f"{v} {k}" for k, v in counts.items()), file=out)
    print(f"results: {exp.uri}/{RESULTS}.parquet (+ .csv); best config: {exp.uri}/{BEST_CONFIG}", file=out)
    return 1 if counts.get(ERROR, 0) == len(df) else 0
