"""`ascbench ablate`: statistics with known answers, grid errors, hash identity, a real micro ablation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.ablate.grid import load_grid, plan_runs
from harness.ablate.identity import run_hash
from harness.ablate.stats import (
    bootstrap_ci,
    compare_to_base,
    holm,
    mcnemar_test,
    paired_bootstrap,
    paired_power,
    seeds_needed,
    summarise,
)
from tests.support.ablation_fixture import GRID, micro_ablation


# ------------------------------------------------------------------ statistics, known answers
def test_mcnemar_exact_matches_binomial():
    # 10 clips only A gets right, 0 only B: exact two-sided binomial p = 2 * 0.5**10
    a = np.array([1] * 10 + [1] * 5 + [0] * 3, bool)
    b = np.array([0] * 10 + [1] * 5 + [0] * 3, bool)
    res = mcnemar_test(a, b)
    assert (res["b"], res["c"]) == (10, 0)
    assert res["p"] == pytest.approx(2 * 0.5**10)
    assert mcnemar_test(a, a)["p"] == 1.0



@pytest.mark.parametrize("effect, sd", [(1e-8, 5.0), (0.08, 0.01), (0.5, 5.0), (3.0, 3.0), (100.0, 5.0)])
def test_seeds_needed_is_the_fewest_seeds_with_80_percent_power(effect, sd):
    # tiny and huge effects: statsmodels' solve_power returns NaN there (the table used to crash), and
    # for 0.08 / 0.01 it answered 2 seeds, whose power is 0.64
    from statsmodels.stats.power import TTestPower

    n = seeds_needed(effect, sd)
    assert n >= 2 and paired_power(effect / sd, n) >= 0.8
    assert n == 2 or paired_power(effect / sd, n - 1) < 0.8
    reference = TTestPower().power(effect_size=effect / sd, nobs=n, alpha=0.05, alternative="two-sided")
    if np.isfinite(reference):
        assert paired_power(effect / sd, n) == pytest.approx(reference, abs=1e-12)

def test_mcnemar_chi2_for_many_discordant_pairs():
    a = np.array([1] * 40 + [0] * 10, bool)
    b = np.array([0] * 40 + [1] * 10, bool)
    res = mcnemar_test(a, b)
    # continuity-corrected chi2 = (|40 - 10| - 1)^2 / 50
    assert not res["exact"] and res["statistic"] == pytest.approx(29**2 / 50)


def test_holm_known_values_and_nan():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = holm([0.01, np.nan, 0.02])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_bootstrap_ci_brackets_the_mean():
    lo, hi = bootstrap_ci([1, 2, 3, 4, 5])
    assert 1 <= lo < 3 < hi <= 5
    assert np.isnan(bootstrap_ci([1.0])[0])
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_paired_bootstrap_effect_and_null():
    strong = paired_bootstrap([0.05, 0.04, 0.06, 0.05, 0.045])
    assert strong["mean"] == pytest.approx(0.049) and strong["lo"] > 0 and strong["p"] < 0.01
    null = paired_bootstrap([0.03, -0.03, 0.01, -0.01, 0.0])
    assert null["lo"] < 0 < null["hi"] and null["p"] > 0.5
    assert strong["p_t"] == pytest.approx(
        __import__("scipy").stats.ttest_1samp([0.05, 0.04, 0.06, 0.05, 0.045], 0).pvalue)
    # two seeds that both improve: the bootstrap p cannot see their spread, the t-test can
    two = paired_bootstrap([0.1, 0.2])
    assert two["p"] < 0.01 and two["p_t"] > 0.2


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"arm": arm, "kind": "base" if arm == "base" else "variant", "seed": s, "macro_acc": v,
             "params": 1, "macs": 1} for arm, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_summary_and_comparison_on_constructed_runs():
    runs = _runs({"base": [0.5, 0.6, 0.55], "better": [0.6, 0.7, 0.65], "same": [0.5, 0.6, 0.55]})
    truth = np.arange(40) % 2
    preds = {}
    for seed in range(3):
        preds[("base", seed)] = pd.DataFrame({"clip_id": range(40), "true": truth,
                                              "pred": np.where(np.arange(40) < 20, truth, 1 - truth)})
        preds[("better", seed)] = pd.DataFrame({"clip_id": range(40), "true": truth, "pred": truth})
        preds[("same", seed)] = preds[("base", seed)]
    summary = summarise(runs).set_index("arm")
    assert summary.loc["better", "mean"] == pytest.approx(0.65) and summary.loc["better", "rank"] == 1
    assert summary.loc["base", "std"] == pytest.approx(np.std([0.5, 0.6, 0.55], ddof=1))
    assert summary.loc["base", "rank"] == summary.loc["same", "rank"] == 2
    comp = compare_to_base(runs, preds, "base").set_index("arm")
    assert comp.loc["better", "diff"] == pytest.approx(0.1)
    assert (comp.loc["better", "base_only"], comp.loc["better", "arm_only"]) == (0, 60)
    assert comp.loc["better", "sig_mcnemar"] and not comp.loc["same", "sig_mcnemar"]
    assert comp.loc["same", "p_mcnemar"] == 1.0 and comp.loc["same", "diff"] == 0


# ------------------------------------------------------------------ grid parsing and identity
def _write(tmp_path, text: str):
    p = tmp_path / "grid.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,key", [
    ("seeds: 2\nvariants:\n  bad: [model.fusoin=none]\n", "variants.bad"),
    ("seeds: 2\nvariants:\n  bad: [model.fusion=bogus]\n", "variants.bad"),
    ("seeds: 0\n", "seeds"),
    ("seeds: 2\nvariantz: {}\n", "variantz"),
    ("seeds: 2\nbaselines:\n  nosuchmodel: []\n", "baselines.nosuchmodel"),
    ("seeds: 2\nvariants:\n  bad: model.fusion=none\n", "variants.bad"),
])
def test_bad_grid_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_grid(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {key}:"), msg


def test_grid_resolution_pairs_seeds_and_hashes_identity(tmp_path):
    path = _write(tmp_path, "seeds: 2\nbase: {overrides: [model=ascmamba_small, model.fusion=concat]}\nvariants:\n"
                            "  deeper: [model.num_blocks+=1]\n  reseeded: ['seed+=1000']\n"
                            "  same: [model.fusion=concat]\nbaselines:\n  cpmobile: []\n")
    runs = {(r.arm, r.seed): r for r in plan_runs(load_grid(path))}
    assert runs[("deeper", 0)].config["model"]["num_blocks"] == 3      # ascmamba_small default is 2
    assert runs[("reseeded", 1)].config["seed"] == 1001
    assert all(r.config["data"]["split_seed"] == seed for (_, seed), r in runs.items())  # paired splits
    assert runs[("cpmobile", 0)].config["model"]["fusion"] is None      # a baseline does not inherit knobs
    assert runs[("same", 0)].hash == runs[("base", 0)].hash            # same resolved config: one run
    assert runs[("base", 0)].hash != runs[("base", 1)].hash
    cfg = dict(runs[("base", 0)].config, train=dict(runs[("base", 0)].config["train"], threads=7))
    assert run_hash(cfg) == runs[("base", 0)].hash                      # thread count is not identity


def test_shipped_grids_resolve():
    from importlib import resources

    for name, n_arms in (("ablation.yaml", 17), ("ablation_quick.yaml", 6), ("ablation_blocks.yaml", 6)):
        grid = load_grid(resources.files("search_spaces") / name, seeds=1)
        assert len({r.arm for r in plan_runs(grid)}) == n_arms


# ------------------------------------------------------------------ a real ablation on Ray
@pytest.mark.slow
def test_micro_ablation_runs_and_rerun_skips(ray_runtime, micro_data_config, tmp_path_factory):
    from harness.ablate.execute import run_ablation
    from harness.ablate.grid import load_grid as lg
    from harness.ablate.results import load_ablation
    from harness.engine.store import ResultStore

    root, manifest = micro_ablation(tmp_path_factory, micro_data_config)
    assert manifest["missing"] == [] and manifest["sessions"][-1]["errors"] == []
    res = load_ablation(root)
    assert len(res.runs) == 6 and set(res.runs["arm"]) == {"tiny", "fusion_none", "cpmobile"}
    rec = ResultStore(root).get(res.runs["hash"].iloc[0])
    assert rec["complexity"]["macs"] > 0 and len(rec["final"]["val_predictions"]["pred"]) == rec["final"]["val"]["n"]
    # same split for every arm of a seed
    for seed in (0, 1):
        ids = {tuple(sorted(res.predictions[(arm, seed)]["clip_id"])) for arm in ("tiny", "fusion_none", "cpmobile")}
        assert len(ids) == 1
    mtimes = {p: p.stat().st_mtime_ns for p in (root / "results").glob("*.json")}
    grid = lg(root.parent.parent / "grid.yaml",
              cli_overrides=["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"])
    again = run_ablation(grid, root.parent, progress=False)
    assert again["sessions"][-1]["skipped"] == 6 and again["sessions"][-1]["ran"] == 0
    assert {p: p.stat().st_mtime_ns for p in (root / "results").glob("*.json")} == mtimes
    assert len(GRID["variants"]) == 1
