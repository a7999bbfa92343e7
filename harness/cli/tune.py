"""`ascbench tune`: the options of the tuning driver (`harness.tune.run`)."""
from __future__ import annotations

import argparse

from ..errors import UserError
from .options import add_command, add_data_arguments, add_storage_argument, override_strings


def run(args: argparse.Namespace) -> int:
    from ..tune.run import TuneOptions, run_tune

    if args.confirm_top < 0 or args.confirm_seeds < 0:
        raise UserError("--confirm-top and --confirm-seeds take a whole number >= 0 (0 turns confirmation off)")
    opts = TuneOptions(space=args.space, name=args.name, storage=args.storage, samples=args.samples,
                       address=args.address, resume=args.resume, overrides=override_strings(args), verbose=args.verbose,
                       confirm_top=args.confirm_top, confirm_seeds=args.confirm_seeds)
    return run_tune(opts)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "tune", "Search hyperparameters with Ray Tune (ASHA + Optuna TPE); resumable, local or on a cluster.", run,
        "Run a search space (YAML) with ASHA early stopping and a seeded Optuna TPE searcher. Writes "
        "results.parquet/.csv and best_config.yaml into STORAGE/NAME. Extra key=value arguments fix "
        "config keys on top of the space's base (e.g. data.preset=micro).")
    p.add_argument("--space", help="search-space YAML, or a shipped name (quick, ascmamba, cpmobile, ...)")
    p.add_argument("--name", help="experiment name (default: <space>-<timestamp>); needed with --resume")
    add_storage_argument(p, "experiments (a local folder or a URI Ray accepts)")
    p.add_argument("--samples", type=int, help="number of trials (overrides the space's budget.samples)")
    p.add_argument("--address", help="join a Ray cluster (auto or HOST:PORT) instead of starting a local runtime")
    p.add_argument("--resume", action="store_true", help="continue the experiment --name after a crash or Ctrl-C")
    p.add_argument("--confirm-top", type=int, default=3, metavar="K",
                   help="after the search, re-run the top K trials over --confirm-seeds seeds and choose "
                        "best_config.yaml by their mean validation figure (default 3; 0: off)")
    p.add_argument("--confirm-seeds", type=int, default=3, metavar="N",
                   help="seeds per confirmed configuration (default 3)")
    add_data_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="Ray's own logs and progress as well")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="fixed config overrides")
