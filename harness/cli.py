"""`ascbench` command line: one sub-command per job, each a thin layer over a module."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .errors import UserError


def _cmd_models(args: argparse.Namespace) -> int:
    from .model_table import format_registry_table, registry_table

    df = registry_table(args.family)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    else:
        print(format_registry_table(df))
        print("\nMACs per 10-s clip and per 1-s clip (DCASE's unit) at each model's declared front end; "
              "the selective scan is counted analytically.")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.out)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench.runner import run_benchmark

    return run_benchmark(args.name, quick=args.quick, out=args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ascbench",
        description="Tune, ablate and report on ASCMamba against CNN and transformer baselines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("models", "List the model registry: family, parameters, MACs per 10-s clip, metadata use.", _cmd_models)
    p.add_argument("--family", help="only models of this family (ascmamba, cnn, transformer, official)")
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")

    from .data_cli import add_data_parser

    add_data_parser(sub)

    from .train_cli import add_train_parsers

    add_train_parsers(sub)

    from .ablate_cli import add_ablate_parser
    from .report_cli import add_report_parser
    from .tune.cli import add_tune_parser

    add_tune_parser(sub)
    add_ablate_parser(sub)
    add_report_parser(sub)

    p = add("demo", "Run the main job end to end on embedded defaults (CPU, built-in synthetic data).", _cmd_demo)
    p.add_argument("--out", default="runs/demo", help="where the runs and the report go (default runs/demo)")

    from .bench.runner import BENCHMARKS

    p = add("bench", "Run a benchmark that prints ratios against named references measured in the same run.", _cmd_bench)
    p.add_argument("name", choices=list(BENCHMARKS), metavar="NAME",
                   help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run, not a measurement)")
    p.add_argument("--out", help="also write the results as JSON to this file")
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


if __name__ == "__main__":
    raise SystemExit(main())
