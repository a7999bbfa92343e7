"""Statistics of an ablation: per-arm summaries over seeds and paired tests against the base.

Seeds are the unit of replication (initialisation, data order and split change with the seed).
Significance is the paired t-test's over seeds (scipy): the bootstrap p cannot see the variance of
2-5 values (two improving seeds give p ~ 1e-4) and is only reported. McNemar on the pooled (seed,
clip) predictions says whether the trained models err on different clips; blind to seed-to-seed
variability, it called a pure reseed (the planted null arm, 200 clips x 10 seeds) significant,
p = 0.0038 after Holm, where the t-test gave 0.28, so it is reported and never marks significance.
Holm corrects each family across the arms vs the base.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from ..errors import UserError

CONFIDENCE = 0.95
N_RESAMPLES = 9999
ALPHA = 0.05
POWER = 0.8


def bootstrap_ci(values, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy); NaN below two values, a point if all equal."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_bootstrap(diffs, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                     seed: int = 0) -> dict:
    """Mean of paired differences, its bootstrap CI, and a two-sided bootstrap p-value.

    The p-value resamples the differences re-centred on zero (the null of no mean
    difference) and counts resampled means at least as far from zero as the observed one:
    p = (1 + count) / (1 + n_resamples), so it is never exactly zero.
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        return {"n": n, "mean": float(d.mean()) if n else float("nan"),
                "lo": float("nan"), "hi": float("nan"), "p": float("nan"), "p_t": float("nan")}
    lo, hi = bootstrap_ci(d, confidence, n_resamples, seed)
    observed = float(d.mean())
    centred = d - observed
    rng = np.random.default_rng(seed + 1)
    means = centred[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    extreme = int(np.sum(np.abs(means) >= abs(observed) - 1e-12)) if observed != 0 else n_resamples
    with np.errstate(all="ignore"):
        t = sps.ttest_1samp(d, 0.0) if np.ptp(d) > 0 else None
    p_t = float(t.pvalue) if t is not None else (1.0 if observed == 0 else float("nan"))
    return {"n": n, "mean": observed, "lo": lo, "hi": hi, "p": (1 + extreme) / (1 + n_resamples), "p_t": p_t}


def mcnemar_test(correct_a, correct_b) -> dict:
    """McNemar's test on paired correctness (statsmodels): exact binomial below 25 discordant pairs,
    chi-square with continuity correction otherwise. b: only A right; c: only B right."""
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise UserError("mcnemar_test: both arms need the same paired clips")
    table = np.array([[np.sum(a & b_), np.sum(a & ~b_)], [np.sum(~a & b_), np.sum(~a & ~b_)]])
    b, c = int(table[0, 1]), int(table[1, 0])
    if b + c == 0:
        return {"n": int(a.size), "b": 0, "c": 0, "statistic": 0.0, "p": 1.0, "exact": True}
    exact = b + c < 25
    res = mcnemar(table, exact=exact, correction=True)
    return {"n": int(a.size), "b": b, "c": c, "statistic": float(res.statistic), "p": float(res.pvalue),
            "exact": exact}


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels); NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def summarise(runs: pd.DataFrame, metric: str = "macro_acc") -> pd.DataFrame:
    """Per arm: n seeds, mean, std (ddof=1), 95% bootstrap CI of the mean, params, MACs, ranks.

    `rank` orders arms by mean (1 = best); `mean_rank` averages each arm's rank within each
    seed over the seeds, which is less swayed by one lucky seed.
    """
    rows = []
    for arm, g in runs.groupby("arm", sort=False):
        values = g[metric].to_numpy(float)
        lo, hi = bootstrap_ci(values)
        rows.append({
            "arm": arm, "kind": g["kind"].iloc[0], "n": len(values), "mean": values.mean(),
            "std": values.std(ddof=1) if len(values) > 1 else float("nan"), "ci_lo": lo, "ci_hi": hi,
            "params": g["params"].iloc[0] if "params" in g else np.nan,
            "macs": g["macs"].iloc[0] if "macs" in g else np.nan,
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["rank"] = out["mean"].rank(ascending=False, method="min").astype(int)
    per_seed = runs.assign(_r=runs.groupby("seed")[metric].rank(ascending=False, method="average"))
    out["mean_rank"] = out["arm"].map(per_seed.groupby("arm")["_r"].mean())
    return out


def compare_to_base(runs: pd.DataFrame, predictions: dict[tuple[str, int], pd.DataFrame], base: str,
                    metric: str = "macro_acc") -> pd.DataFrame:
    """Every other arm against `base`, paired by seed; Holm across arms for each test.

    `predictions[(arm, seed)]` has columns clip_id, true, pred (the best model's validation
    predictions); McNemar pools the (seed, clip) pairs present in both arms.
    """
    base_runs = runs[runs["arm"] == base].set_index("seed")[metric]
    rows = []
    for arm, g in runs[runs["arm"] != base].groupby("arm", sort=False):
        other = g.set_index("seed")[metric]
        seeds = sorted(set(other.index) & set(base_runs.index))
        diffs = (other.loc[seeds] - base_runs.loc[seeds]).to_numpy()
        pb = paired_bootstrap(diffs)
        pairs = [predictions[(base, seed)].merge(predictions[(arm, seed)], on="clip_id", suffixes=("_b", "_v"))
                 for seed in seeds if (base, seed) in predictions and (arm, seed) in predictions]
        if pairs:
            m = pd.concat(pairs)
            mc = mcnemar_test(m["pred_b"] == m["true_b"], m["pred_v"] == m["true_v"])
        else:
            mc = {"n": 0, "b": 0, "c": 0, "statistic": float("nan"), "p": float("nan"), "exact": False}
        rows.append({"arm": arm, "kind": g["kind"].iloc[0], "n_seeds": pb["n"], "diff": pb["mean"],
                     "diff_lo": pb["lo"], "diff_hi": pb["hi"], "p_boot": pb["p"], "p_t": pb["p_t"],
                     "mcnemar_n": mc["n"], "base_only": mc["b"], "arm_only": mc["c"], "p_mcnemar": mc["p"],
                     "p_improve": probability_of_improvement(diffs), "mde": minimum_detectable_effect(diffs),
                     "diff_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for p in ("p_boot", "p_t", "p_mcnemar"):
        out[f"{p}_holm"] = holm(out[p])
    out["sig_seeds"] = out["p_t_holm"] < ALPHA
    out["sig_mcnemar"] = out["p_mcnemar_holm"] < ALPHA
    return out


def probability_of_improvement(diffs) -> float:
    """P(arm > base) over seeds: the share of paired seeds where the arm scored higher (ties count half)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    return float(np.mean((d > 0) + 0.5 * (d == 0))) if len(d) else float("nan")


def minimum_detectable_effect(diffs, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest mean paired difference a two-sided paired t-test over these many seeds detects
    with `power`, given the observed spread of the paired differences (statsmodels' power solver).

    Why: a non-significant difference says nothing unless the test could have seen an effect of
    the size that matters; this says which size it could see. NaN below 3 seeds or without spread.
    """
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 3 or np.ptp(d) == 0:
        return float("nan")
    effect = TTestPower().solve_power(nobs=len(d), alpha=alpha, power=power, alternative="two-sided")
    return float(effect * d.std(ddof=1))


def paired_power(effect_size: float, seeds: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t-test over `seeds` seeds at standardised effect `effect_size`:
    statsmodels' `TTestPower().power`, except that the far tail, which scipy's noncentral t gives as
    NaN once the noncentrality is large, counts as the ~0 it is (statsmodels returns NaN there)."""
    df, noncentrality = seeds - 1, effect_size * np.sqrt(seeds)
    critical = sps.t.isf(alpha / 2, df)
    far_tail = sps.nct.cdf(-critical, df, noncentrality)
    return float(sps.nct.sf(critical, df, noncentrality) + np.nan_to_num(far_tail))


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Seeds a paired t-test needs to detect a mean difference `effect` with paired spread `sd`: the
    fewest (at least 2) whose power reaches `power`, by bisection on the power, which grows with the
    seeds. (statsmodels' `solve_power` returns NaN for very small or very large effects.)"""
    if not (np.isfinite(effect) and np.isfinite(sd)) or sd <= 0 or effect == 0:
        return None
    effect_size = abs(effect) / sd
    low, high = 1, 2   # `high` always reaches the power once the first loop ends; `low` never does
    while paired_power(effect_size, high, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if paired_power(effect_size, mid, alpha) >= power else (mid, high)
    return high


def significance_mark(row: pd.Series) -> str:
    """`*`: paired t-test over seeds, Holm-adjusted, alpha 0.05 (McNemar is reported, not marked: see above)."""
    return "*" if row.get("sig_seeds") else ""
