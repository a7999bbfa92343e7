"""The benchmark arithmetic (targets, ratios, overhead shares) and the bare-Optuna reference run
for real on the micro corpus; the timed benchmarks themselves are run by hand (README "Measured")."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from harness.bench.asha import compare_rep, format_asha_table, time_to_target
from harness.bench.bare_optuna import run_bare_optuna
from harness.bench.overhead import _way
from harness.tune.space import build_space


def events(values: list[float], step_s: float = 1.0) -> list[dict]:
    return [{"t": (i + 1) * step_s, "trial": f"t{i % 3}", "epoch": 1 + i // 3, "value": v}
            for i, v in enumerate(values)]


def test_time_to_target_counts_reports_until_the_running_best_reaches_it():
    ev = events([0.1, 0.3, 0.2, 0.45, 0.5, 0.4])
    assert time_to_target(ev, 0.44) == {"reached": True, "trial_epochs": 4, "seconds": 4.0}
    assert time_to_target(ev, 0.3) == {"reached": True, "trial_epochs": 2, "seconds": 2.0}
    assert time_to_target(ev, 0.51)["reached"] is False


def test_compare_rep_targets_fifo_best_minus_one_point_and_never_counts_as_a_miss():
    fifo = events([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.61])          # best 0.61: target 0.60, reached at report 6
    asha_fast = events([0.2, 0.605], step_s=0.5)                   # reaches 0.60 at report 2
    rep = compare_rep(fifo, 10.0, asha_fast, 3.0)
    assert rep["target"] == pytest.approx(0.60)
    assert rep["fifo"]["to_target"]["trial_epochs"] == 6
    assert rep["epoch_ratio"] == pytest.approx(2 / 6) and rep["time_ratio"] == pytest.approx(1.0 / 6.0)
    slow = compare_rep(fifo, 10.0, events([0.2, 0.59]), 3.0)     # 0.59 is 2 points short: never
    assert slow["epoch_ratio"] is None and slow["asha"]["to_target"]["reached"] is False
    table = format_asha_table({
        "samples": 3, "model": "cpmobile", "preset": "tiny", "max_epochs": 3, "grace_period": 1,
        "reduction_factor": 3, "max_concurrent": 2, "tolerance": 0.01, "reps": [dict(rep, seed=0), dict(slow, seed=1)],
        "reached": 1, "goal_epoch_ratio": 1 / 3, "epoch_ratio_median": math.inf, "time_ratio_median": math.inf})
    assert "never" in table and "NOT met" in table


def test_overhead_share_counts_slot_time_outside_training():
    rows = [{"actor": "fresh", "epochs": 2, "epochs_s": 6.0, "wall_s": 9.0, "to_first_epoch_s": 5.0, "startup_s": 2.0},
            {"actor": "reused", "epochs": 2, "epochs_s": 6.0, "wall_s": 7.0, "to_first_epoch_s": 3.5, "startup_s": 0.5}]
    way = _way("x", wall_s=10.0, rows=rows, slots=2)
    assert way["outside_share"] == pytest.approx(1 - 12.0 / 20.0)
    assert way["wall_per_trial_epoch_s"] == pytest.approx(10.0 / 4)
    assert way["fresh"]["first_epoch_s_median"] == 5.0 and way["reused"]["startup_s_median"] == 0.5


@pytest.mark.slow   # a real study in a 2-process pool: ~13 s on 2 cores
def test_bare_optuna_reference_prunes_with_the_asha_rule(tmp_path, micro_data_config):
    doc = {"metric": "val/best_macro_acc", "mode": "max", "seed": 3,
           "budget": {"samples": 5, "max_epochs": 2, "grace_period": 1, "reduction_factor": 2, "max_concurrent": 2},
           "resources": {"cpu": 1},
           "base": {"model": {"name": "cpmobile"}, "pseudo": {"mode": "none"}, "train": {"batch_size": 16},
                    "data": {"preset": "micro", "cache_dir": micro_data_config.cache_dir}},
           "search": {"train.lr": {"loguniform": [1.0e-3, 1.0e-2]}}}
    space = build_space(doc, "inline")
    result = run_bare_optuna(space, tmp_path)
    rows = result["rows"]
    assert [r["number"] for r in rows] == list(range(5)) and len({r["pid"] for r in rows}) <= 2
    for r in rows:   # a trial stops early exactly when the pruner said so
        assert len(r["epoch_s"]) == (1 if r["pruned"] else 2)
        assert r["submitted"] <= r["started"] <= r["first_epoch_start"] <= r["ended"]
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "optuna-journal.log")))
    states = {t.number: t.state for t in optuna.load_study(study_name="bare", storage=journal).trials}
    assert states == {r["number"]: TrialState.PRUNED if r["pruned"] else TrialState.COMPLETE for r in rows}
    # the same seeded sampler as the tuner: the first draw is the seed's first random draw
    first = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3)).ask()
    assert rows[0]["params"]["train.lr"] == pytest.approx(first.suggest_float("train.lr", 1e-3, 1e-2, log=True))
    assert result["best_value"] == max(r["value"] for r in rows if not r["pruned"])


def test_every_listed_benchmark_has_its_run_and_format_functions():
    import importlib

    from harness.bench.runner import BENCHMARKS

    assert {"scan", "data", "train", "overhead", "asha", "scale"} <= set(BENCHMARKS)
    for name in BENCHMARKS:
        module = importlib.import_module(f"harness.bench.{name}")
        assert callable(getattr(module, f"run_{name}_benchmark")) and callable(getattr(module, f"format_{name}_table"))


def test_gpu_check_scan_checks_pass_on_the_cpu():
    """`make gpu-check` runs these on CUDA; here the same code path, on the CPU, must pass."""
    import torch

    from harness.bench.gpu_check import check_scans

    rows = check_scans(torch.device("cpu"))
    assert len(rows) == 4 and all(ok for _, ok, _ in rows), rows


@pytest.mark.slow
def test_versus_quick_trains_every_arm_and_states_the_goals(ray_runtime, tmp_path):
    from harness.bench.versus import format_versus_table, run_versus_benchmark

    r = run_versus_benchmark(quick=True, storage=str(tmp_path))
    assert set(r["arms"]) == {"ascmamba_tiny", "no_blocks", "head_freq_mean", "cpmobile"}
    ref = r["arms"]["cpmobile"]
    assert ref["time_vs_ref"] == 1.0 and ref["points_vs_ref"] == 0.0
    for arm in r["arms"].values():
        assert arm["n"] == 2 and 0 <= arm["pair_right"] <= arm["pair_n"]
    base = r["arms"]["ascmamba_tiny"]
    assert r["goals"]["ascmamba_tiny >= cpmobile + 3 points"] == (base["points_vs_ref"] >= 3.0)
    table = format_versus_table(r)
    assert "n = 2 seeds per arm" in table and "± is the standard deviation over seeds" in table
