"""`ascbench`: one sub-command per module of this package, each a thin layer over a library module.

`main` is the one place where a `UserError` becomes one line on stderr and exit status 2;
every other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import UserError

# the modules of this package that add a command, in the order `ascbench --help` lists them
COMMANDS = ("models", "data", "train", "predict", "tune", "ablate", "report", "demo", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ascbench",
        description="Tune, ablate and report on ASCMamba against CNN and transformer baselines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:   # only the user's problems; anything else is a bug and keeps its traceback
        print(f"ascbench: error: {exc}", file=sys.stderr)
        return 2
