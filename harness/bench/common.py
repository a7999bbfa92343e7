"""What several benchmarks share: wall-clock timing after a warm-up call, and the ablation grid that
the trained comparisons (`versus`, `planted`) run through `ascbench ablate`."""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def times_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> list[float]:
    """Wall times of fn in ms, after one untimed warm-up call (allocators, kernels, caches)."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    return statistics.median(times_ms(fn, repeats, device))


def run_grid(kind: str, seeds: int, epochs: int, preset: str, storage: str | None, description: str,
             base: dict, **arms: dict):
    """Run (or finish) an ablation grid: `seeds` paired seeds of `epochs` epochs on the synthetic
    `preset`, no pseudo-labels, one CPU per run. `storage` defaults to a fixed folder under the temp
    dir, so that a rerun finishes what an interrupted one left; returns the loaded results."""
    from ..ablate.execute import run_grid_document

    overrides = [*base["overrides"], f"data.preset={preset}", f"train.epochs={epochs}", "pseudo=none"]
    doc = {"name": f"{kind}_{preset}_e{epochs}_s{seeds}", "description": description, "seeds": seeds,
           "resources": {"cpu": 1, "gpu": 0}, "base": {**base, "overrides": overrides}, **arms}
    storage = storage or str(Path(tempfile.gettempdir()) / f"ascbench-{kind}")
    return run_grid_document(doc, storage, f"{kind}_{preset}")
