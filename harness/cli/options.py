"""What more than one command shares: how a command is added, the data options and the one
place they become config, --storage, --quiet.

Only the standard library is imported here, so `ascbench --help` stays fast.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from ..errors import UserError

Command = Callable[[argparse.Namespace], int]
PRESETS = ("micro", "tiny", "small", "cas")
SOURCES = ("apsipa", "dcase", "synthetic")   # harness.data.prepare.SOURCES, without importing torch for --help


def add_command(sub: argparse._SubParsersAction, name: str, help: str, run: Command,
                description: str | None = None) -> argparse.ArgumentParser:
    """A sub-command whose parsed arguments go to `run`."""
    parser = sub.add_parser(name, help=help, description=description or help)
    parser.set_defaults(func=run)
    return parser


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--metadata/--audio-dir/--source/--test-*, for every command that reads a dataset."""
    parser.add_argument("--metadata", help="APSIPA metadata CSV (or DCASE meta file with --source dcase); "
                                           "default: built-in synthetic corpus")
    parser.add_argument("--audio-dir", help="folder of the audio (DCASE: the dataset root)")
    parser.add_argument("--source", choices=SOURCES,
                        help="dataset format (default: apsipa with --metadata, else synthetic)")
    parser.add_argument("--test-metadata", help="labelled test CSV (APSIPA format) or evaluation fold (DCASE; default "
                                                "evaluation_setup/fold1_evaluate.csv under the dataset root); without "
                                                "it APSIPA holds out whole sessions (data.test_fraction, default 0.2)")
    parser.add_argument("--test-city", action="append", metavar="CITY",
                        help="hold every labelled clip of CITY out as test (APSIPA; repeatable)")


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The data options as dotted `data.*` config keys: the one translation every command uses
    (`override_strings` writes them as `key=value` for train and tune).

    Only what was given is set; the front end and the clip length stay as the config has them
    (`auto`: the model's declared front end, and the corpus's own clip length)."""
    if bool(args.metadata) != bool(args.audio_dir):
        raise UserError("--metadata and --audio-dir go together")
    out: dict[str, Any] = {}
    if args.source or args.metadata:
        out["data.source"] = args.source or "apsipa"
    if args.metadata:
        out.update({"data.metadata": args.metadata, "data.audio_dir": args.audio_dir})
    if args.test_metadata:
        out["data.test_metadata"] = args.test_metadata
    if args.test_city:
        out["data.test_cities"] = list(args.test_city)
    return out


def override_strings(args: argparse.Namespace) -> list[str]:
    """The user's key=value arguments, then the data options as overrides (they win, as typed last)."""
    from ..train.overrides import format_override

    return list(args.overrides) + [format_override(k, v) for k, v in data_overrides(args).items()]


def add_storage_argument(parser: argparse.ArgumentParser, holds: str) -> None:
    parser.add_argument("--storage", help=f"where {holds} live (default $ASCBENCH_RUNS or ./runs)")


def storage(args: argparse.Namespace) -> str:
    """--storage, else $ASCBENCH_RUNS, else ./runs (as `harness.tune.storage.storage_root` reads it)."""
    return args.storage or os.environ.get("ASCBENCH_RUNS", "runs")
