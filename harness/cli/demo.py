"""`ascbench demo` / `make demo`: the main job end to end on embedded defaults (CPU, a local Ray
runtime, the built-in synthetic corpus). Every step (`demo_steps`) is the same command a user
would type, so the demo exercises exactly the public CLI.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .options import add_command


def demo_steps(root: Path) -> list[tuple[str, list[str]]]:
    resume = ["--resume"] if (root / "tune").exists() else []  # a second `make demo` finishes or reuses the first
    return [
        ("model registry", ["models"]),
        ("tune: quick space, tiny synthetic corpus",
         ["tune", "--space", "quick", "--storage", str(root), "--name", "tune",
          "--confirm-top", "2", "--confirm-seeds", "2", *resume]),
        ("ablate: the tuned config vs. its ablations and a baseline, 3 seeds",
         ["ablate", "--config", "ablation_quick", "--from-tune", "tune", "--storage", str(root), "--name", "ablation"]),
        ("report", ["report", str(root), "--out", str(root / "report")]),
    ]


def run(args: argparse.Namespace) -> int:
    from . import main

    root = Path(args.out)
    start = time.perf_counter()
    for title, argv in demo_steps(root):
        print(f"\n== {title}: ascbench {' '.join(argv)} ==", flush=True)
        rc = main(argv)
        if rc:
            print(f"demo stopped: `ascbench {' '.join(argv)}` exited {rc}")
            return rc
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; report: {root / 'report' / 'REPORT.md'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo",
                    "Run the main job end to end on embedded defaults (CPU, built-in synthetic data).", run)
    p.add_argument("--out", default="runs/demo", help="where the runs and the report go (default runs/demo)")
