"""Dispatch for `ascbench bench NAME`: run, print the table, optionally write JSON atomically."""
from __future__ import annotations

from collections.abc import Callable

from ..io import write_json_atomic


def _scan(quick: bool) -> tuple[dict, str]:
    from .scan import format_scan_table, run_scan_benchmark

    result = run_scan_benchmark(quick=quick)
    return result, format_scan_table(result)


def _data(quick: bool) -> tuple[dict, str]:
    from .data import format_data_table, run_data_benchmark

    result = run_data_benchmark(quick=quick)
    return result, format_data_table(result)


def _train(quick: bool) -> tuple[dict, str]:
    from .train import format_train_table, run_train_benchmark

    result = run_train_benchmark(quick=quick)
    return result, format_train_table(result)


def _overhead(quick: bool) -> tuple[dict, str]:
    from .overhead import format_overhead_table, run_overhead_benchmark

    result = run_overhead_benchmark(quick=quick)
    return result, format_overhead_table(result)


def _scale(quick: bool) -> tuple[dict, str]:
    from .scale import format_scale_table, run_scale_benchmark

    result = run_scale_benchmark(quick=quick)
    return result, format_scale_table(result)


def _asha(quick: bool) -> tuple[dict, str]:
    from .asha import format_asha_table, run_asha_benchmark

    result = run_asha_benchmark(quick=quick)
    return result, format_asha_table(result)


BENCHMARKS: dict[str, Callable[[bool], tuple[dict, str]]] = {"scan": _scan, "data": _data, "train": _train,
                                                             "overhead": _overhead, "asha": _asha, "scale": _scale}


def run_benchmark(name: str, quick: bool = False, out: str | None = None) -> int:
    result, table = BENCHMARKS[name](quick)
    print(table)
    if out:
        write_json_atomic(out, result)
        print(f"wrote {out}")
    return 0
