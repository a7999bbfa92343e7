"""`ascbench report`: REPORT.md and figures from a tune run, an ablation run, or a folder of both."""
from __future__ import annotations

import argparse

from .options import add_command


def run(args: argparse.Namespace) -> int:
    from reports.build import build_report

    print(f"wrote {build_report(args.run_dir, args.out)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "report", "Write REPORT.md and PNG figures from stored tune/ablation results (no training).", run,
        "Rebuilds tables and figures entirely from what a tune or ablation run stored. RUN_DIR is "
        "a tune experiment folder, an ablation folder, or a folder holding several of them.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="tune or ablation folder (or a parent of several)")
    p.add_argument("--out", help="output folder (default: RUN_DIR/report)")
