"""`ascbench ablate`: run an ablation grid on Ray and print its statistics."""
from __future__ import annotations

import argparse
import os
import shlex

from .options import add_command, add_quiet, add_storage_argument, storage


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this ablation where it stopped."""
    parts = ["ascbench ablate --config", shlex.quote(args.config), "--resume"]
    for flag, value in (("--from-tune", args.from_tune), ("--seeds", args.seeds), ("--storage", args.storage),
                        ("--name", args.name), ("--address", args.address)):
        if value is not None:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts + [shlex.quote(o) for o in args.overrides])


def run(args: argparse.Namespace) -> int:
    from ..ablate.execute import run_ablation
    from ..ablate.grid import load_grid, resolve_from_tune
    from ..ablate.results import load_ablation
    from ..ablate.tables import format_tables
    from ..engine.outcome import INTERRUPTED_RC, resume_hint_on_failure

    runs = storage(args)
    tuned = resolve_from_tune(args.from_tune, runs) if args.from_tune else None
    grid = load_grid(args.config, from_tune_config=tuned, seeds=args.seeds, cli_overrides=args.overrides)
    with resume_hint_on_failure(resume_command(args)):   # what finished is kept: the rest can be resumed
        manifest = run_ablation(grid, runs, name=args.name, address=args.address, resume=args.resume,
                                progress=not args.quiet)
    session = manifest["sessions"][-1]
    root = os.path.join(runs, args.name or grid.name)
    print(format_tables(load_ablation(root)))
    print(f"\n{session['planned']} runs planned, {session['skipped']} already done, {session['ran']} ran now "
          f"in {session['wall_s']:.0f} s; results in {root}")
    for line in session["errors"]:
        print(f"failed: {line}")
    if session.get("interrupted"):
        print(f"interrupted: {len(manifest['missing'])} runs not finished; resume with: {resume_command(args)}")
        return INTERRUPTED_RC
    if manifest["missing"]:
        print(f"{len(manifest['missing'])} runs missing; re-run with --resume to continue them")
        return 1
    print(f"report: ascbench report {root}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "ablate", "Run an ablation grid (variants x seeds, and baselines) on Ray, paired by seed.", run,
        "Every (variant, seed) of the grid is one Ray run identified by the hash of its resolved "
        "config; finished runs are skipped, so re-running only does what is missing. Extra "
        "key=value arguments override every run (e.g. train.epochs=4 data.preset=micro).")
    p.add_argument("--config", required=True, help="ablation grid YAML (e.g. search_spaces/ablation.yaml)")
    p.add_argument("--from-tune", metavar="NAME_OR_DIR", help="use this tune run's best_config.yaml as the base")
    p.add_argument("--seeds", type=int, help="use seeds 0..N-1 instead of the grid's")
    add_storage_argument(p, "ablation and tune runs")
    p.add_argument("--name", help="ablation folder name under --storage (default: the grid's name)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their last epoch")
    add_quiet(p, "no progress output")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
