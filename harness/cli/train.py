"""`ascbench train`: one semi-supervised training run (resumable) from the run config and overrides."""
from __future__ import annotations

import argparse

from .options import add_command, add_data_arguments, add_quiet, override_strings


def overrides(args: argparse.Namespace) -> list[str]:
    """The user's key=value overrides, then the ones the options stand for."""
    given = {"model.name": args.model or None, "train.epochs": args.epochs, "seed": args.seed}
    return override_strings(args) + [f"{key}={value}" for key, value in given.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.run import run_training, summarise

    cfg = load_config(args.config, overrides(args))
    final = run_training(cfg, args.out, progress=not args.quiet)
    print(summarise(final))
    print(f"wrote {args.out}: config.yaml, metrics.csv, final.json, best.pt")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", "Train one model (semi-supervised, resumable) and write its results.", run,
                    "Train one model with two-step pseudo-labelling; re-running with the same --out resumes from "
                    "the last epoch. Extra key=value arguments override the config (Hydra syntax, e.g. "
                    "model=cpmobile pseudo=one_step train.lr=0.001).")
    p.add_argument("--model", help="registered model name (see `ascbench models`)")
    add_data_arguments(p)
    p.add_argument("--epochs", type=int, help="total epochs over all pseudo-label stages")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order, augmentation and split")
    p.add_argument("--config", help="a saved run config (e.g. best_config.yaml of a tune run)")
    p.add_argument("--out", required=True, help="output folder")
    add_quiet(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
