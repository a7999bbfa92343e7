"""`ascbench bench NAME`: a benchmark that prints ratios against references measured in the same run."""
from __future__ import annotations

import argparse

from .options import add_command


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import run_benchmark

    return run_benchmark(args.name, quick=args.quick, out=args.out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..bench.runner import BENCHMARKS

    p = add_command(sub, "bench", "Run a benchmark that prints ratios against named references measured in the "
                                  "same run.", run)
    p.add_argument("name", choices=list(BENCHMARKS), metavar="NAME",
                   help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and fewer repeats (a smoke run, not a measurement)")
    p.add_argument("--out", help="also write the results as JSON to this file")
