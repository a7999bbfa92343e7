"""`ascbench bench scale`, the parts that need no cluster: trial times from result rows, peak
concurrency, rates, the all-finished check, the ratio and its table. (The loopback cluster
itself is exercised by test_tune_cluster.py; starting two here would cost CI minutes.)"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.bench.scale import (
    GOAL,
    PhaseFailed,
    Sizes,
    compare,
    format_scale_table,
    peak_concurrency,
    per_hour,
    summarise_phase,
    trial_interval,
)
from harness.engine.store import ResultStore
from harness.tune.results import ERROR, FINISHED

pytestmark = pytest.mark.ray   # every test here starts or joins a Ray runtime

SIZES = Sizes("micro", samples=4, epochs=2)


def _rows(start: int, epoch_s: int, epochs: int, pid: int, lr: float) -> list[dict]:
    """Result rows of one trial whose first epoch starts at whole second `start`."""
    return [{"epoch": e, "timestamp": start + e * epoch_s, "time_this_iter_s": float(epoch_s),
             "time_total_s": float(e * epoch_s), "pid": pid, "node_ip": "127.0.0.1", "config": {"train.lr": lr}}
            for e in range(1, epochs + 1)]


def _phase(tmp_path: Path, nodes: int, starts: list[int], wall_s: float, statuses: list[str] | None = None,
           tune_rc: int = 0) -> tuple[dict, Path]:
    """A finished phase on disk, as `ascbench tune` leaves it: results.csv plus each trial's record."""
    exp = tmp_path / f"runs-{nodes}" / "scale"
    records = []
    for i, start in enumerate(starts):
        rows = _rows(start, epoch_s=5, epochs=SIZES.epochs, pid=100 + i % nodes, lr=1e-3 * (i + 1))
        ResultStore(exp).put({"id": f"t{i}", "config": rows[-1].pop("config"), "history": rows})
        records.append({"trial_id": f"t{i}", "status": (statuses or [FINISHED] * len(starts))[i],
                        "epochs": SIZES.epochs, "path": str(exp / f"t{i}")})
    pd.DataFrame(records).to_csv(exp / "results.csv", index=False)
    phase = {"nodes": nodes, "cpus_per_node": 1, "tune_rc": tune_rc, "tune_wall_s": wall_s,
             "cluster_start_s": 5.0, "log": str(tmp_path / "tune.log")}
    return phase, exp


def test_trial_interval_reads_whole_second_timestamps_at_mid_window():
    start, end = trial_interval(_rows(start=1000, epoch_s=5, epochs=3, pid=1, lr=1e-3))
    # first report at 1005 after a 5-s step: started in [1000, 1001); last report in [1015, 1016)
    assert start == pytest.approx(1000.5) and end == pytest.approx(1015.5)


def test_peak_concurrency_counts_only_overlaps_longer_than_the_timestamp_resolution():
    assert peak_concurrency([]) == 0
    assert peak_concurrency([(0.0, 10.0), (9.6, 20.0), (19.2, 30.0)]) == 1   # back to back, within 1 s
    assert peak_concurrency([(0.0, 10.0), (0.3, 10.2), (10.1, 20.0)]) == 2
    assert peak_concurrency([(0.0, 10.0), (2.0, 12.0), (4.0, 14.0), (11.5, 20.0)]) == 3
    assert peak_concurrency([(0.0, 0.5)]) == 1


def test_per_hour():
    assert per_hour(8, 60.0) == pytest.approx(480.0)


def test_two_nodes_twice_as_fast_meets_the_goal_and_the_table_says_so(tmp_path):
    one = summarise_phase(*_phase(tmp_path, 1, starts=[0, 10, 20, 30], wall_s=50.0), SIZES)
    two = summarise_phase(*_phase(tmp_path, 2, starts=[0, 0, 10, 10], wall_s=25.0), SIZES)
    assert (one["peak_concurrent"], two["peak_concurrent"]) == (1, 2)
    assert one["span_s"] == pytest.approx(40.0) and two["span_s"] == pytest.approx(20.0)
    assert (one["worker_processes"], two["worker_processes"]) == (1, 2)
    cmp = compare(one, two)
    assert cmp["ratio_wall"] == pytest.approx(2.0) and cmp["ratio_span"] == pytest.approx(2.0)
    assert cmp["goal_met"] and cmp["same_configs"]
    result = {"model": "cpmobile", "preset": "micro", "samples": 4, "epochs_per_trial": 2, "cpus_per_node": 1,
              "max_concurrent": 2, "strategy": "fifo + random (seed 0)", "machine_cpus": 2, "prepare_s": 1.0,
              "total_s": 90.0, "phases": [one, two], **cmp}
    table = format_scale_table(result)
    assert f"2.00x trials per hour by wall time (goal >= {GOAL:.1f}x: met)" in table
    assert "1 node       1         1      4    50.0" in table


def test_a_slower_second_phase_misses_the_goal(tmp_path):
    one = summarise_phase(*_phase(tmp_path, 1, starts=[0, 10, 20, 30], wall_s=50.0), SIZES)
    two = summarise_phase(*_phase(tmp_path, 2, starts=[0, 0, 12, 12], wall_s=32.0), SIZES)
    cmp = compare(one, two)
    assert cmp["ratio_wall"] == pytest.approx(50 / 32) and not cmp["goal_met"]


def test_a_phase_with_an_unfinished_trial_fails_loudly(tmp_path):
    phase, exp = _phase(tmp_path, 2, starts=[0, 0, 10, 10], wall_s=25.0, statuses=[FINISHED] * 3 + [ERROR])
    with pytest.raises(PhaseFailed, match="3/4 trials finished"):
        summarise_phase(phase, exp, SIZES)


def test_a_failed_tune_fails_loudly(tmp_path):
    phase, exp = _phase(tmp_path, 1, starts=[0, 10, 20, 30], wall_s=50.0, tune_rc=130)
    with pytest.raises(PhaseFailed, match="exited 130"):
        summarise_phase(phase, exp, SIZES)
