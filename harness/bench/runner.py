"""Dispatch for `ascbench bench NAME`: run, print the table, optionally write JSON atomically.

Each benchmark is a module of this package with a `run_<name>_benchmark(quick=...)` returning
a JSON-able dict and a `format_<name>_table(result)`; modules are imported only when chosen
(some start Ray or clusters, one needs mambapy).
"""
from __future__ import annotations

import importlib

from ..io import write_json_atomic

BENCHMARKS: dict[str, str] = {
    "scan": "selective-scan backends vs. the sequential reference and mambapy",
    "data": "an epoch's data time from the feature cache vs. on-the-fly log-mels; trial start-up",
    "train": "training throughput of every registered model vs. CP-Mobile",
    "overhead": "ascbench's Ray tuner vs. a bare Optuna study on the same search",
    "asha": "ASHA + TPE vs. FIFO random search: trial-epochs to FIFO's best",
    "scale": "trials per hour, two loopback Ray nodes vs. one",
    "versus": "ASCMamba CPU preset vs. CP-Mobile trained over 5 seeds: accuracy and epoch time",
}


def run_benchmark(name: str, quick: bool = False, out: str | None = None) -> int:
    module = importlib.import_module(f"{__package__}.{name}")
    result = getattr(module, f"run_{name}_benchmark")(quick=quick)
    print(getattr(module, f"format_{name}_table")(result))
    if out:
        write_json_atomic(out, result)
        print(f"wrote {out}")
    return 0
