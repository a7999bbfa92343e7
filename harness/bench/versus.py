"""`ascbench bench versus`: the ASCMamba CPU preset against CP-Mobile, trained over paired seeds
through the ablation runner, with `num_blocks=0` and the frequency-mean head beside them to show what
the Mamba blocks and the head add, overall and on the planted long-range pair (Bar vs Restaurant,
told apart only by the order of two events seconds apart; chance 50 %). `--quick`: micro corpus,
2 epochs, 2 seeds (a plumbing check).
"""
from __future__ import annotations

from ..ablate.tables import format_tables
from ..data.synth import LONG_RANGE_EFFECT
from .common import run_grid

BASE = "ascmamba_tiny"
REFERENCE = "cpmobile"
GOAL_POINTS = 3.0
GOAL_TIME_RATIO = 2.0


def run_versus_benchmark(quick: bool = False, seeds: int = 5, epochs: int = 12, storage: str | None = None) -> dict:
    seeds, epochs, preset = (2, 2, "micro") if quick else (seeds, epochs, "tiny")
    results = run_grid("versus", seeds, epochs, preset, storage,
                       "ASCMamba CPU preset vs CP-Mobile (and without its Mamba blocks)",
                       {"label": BASE, "overrides": [f"model={BASE}"]},
                       variants={"no_blocks": ["model.num_blocks=0"], "head_freq_mean": ["model.head=freq_mean"]},
                       baselines={REFERENCE: []})
    runs = results.runs.assign(epoch_s=lambda d: d["wall_s"] / d["epochs"])
    pair = {(r.arm, r.seed): _pair_counts(results, r.arm, r.seed, r.hash) for r in runs.itertuples()}
    arms = {}
    for arm, rows in runs.groupby("arm"):
        right, total = (sum(pair[(arm, s)][i] for s in rows["seed"]) for i in (0, 1))
        arms[arm] = {"n": len(rows), "macro_acc_mean": 100 * rows["macro_acc"].mean(),
                     "macro_acc_sd": 100 * rows["macro_acc"].std(ddof=1) if len(rows) > 1 else 0.0,
                     "epoch_s_mean": rows["epoch_s"].mean(), "params": int(rows["params"].iloc[0]),
                     "macs": int(rows["macs"].iloc[0]),
                     "per_seed": (100 * rows.sort_values("seed")["macro_acc"]).round(1).tolist(),
                     "pair_right": right, "pair_n": total}
    ref = arms[REFERENCE]
    for a in arms.values():
        a["points_vs_ref"] = a["macro_acc_mean"] - ref["macro_acc_mean"]
        a["time_vs_ref"] = a["epoch_s_mean"] / ref["epoch_s_mean"]
    base = arms[BASE]
    goals = {
        f"{BASE} >= {REFERENCE} + {GOAL_POINTS:g} points": base["points_vs_ref"] >= GOAL_POINTS,
        f"{BASE} epoch time <= {GOAL_TIME_RATIO:g}x {REFERENCE}": base["time_vs_ref"] <= GOAL_TIME_RATIO,
    }
    return {"preset": preset, "epochs": epochs, "seeds": seeds, "arms": arms, "goals": goals,
            "ablation_table": format_tables(results), "root": str(results.root)}


def _pair_counts(results, arm: str, seed: int, run_hash: str) -> tuple[int, int]:
    """Headline (test) clips of the long-range pair predicted as one of the pair, and how many of those
    got the right one (chance: half)."""
    classes = results.records[run_hash]["final"]["data"]["classes"]
    pair = [classes.index(c) for c in LONG_RANGE_EFFECT["classes"]]
    p = results.predictions[(arm, seed)]
    inside = p[p["true"].isin(pair) & p["pred"].isin(pair)]
    return int((inside["true"] == inside["pred"]).sum()), len(inside)


def format_versus_table(r: dict) -> str:
    lines = [f"{r['preset']} synthetic corpus, {r['epochs']} epochs, no pseudo-labels, n = {r['seeds']} seeds per arm "
             f"(paired splits); ± is the standard deviation over seeds; epoch time is wall time per epoch "
             f"(one CPU thread per run, two runs at a time)",
             "| arm | params | MMACs/clip | test macro acc (%) | vs CP-Mobile | epoch s | time vs CP-Mobile "
             "| per seed | long-range pair |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm, a in sorted(r["arms"].items(), key=lambda kv: -kv[1]["macro_acc_mean"]):
        lines.append(f"| {arm} | {a['params']:,} | {a['macs'] / 1e6:.1f} "
                     f"| {a['macro_acc_mean']:.1f} ± {a['macro_acc_sd']:.1f} "
                     f"| {a['points_vs_ref']:+.1f} pp | {a['epoch_s_mean']:.2f} | {a['time_vs_ref']:.2f}x "
                     f"| {', '.join(f'{v:.1f}' for v in a['per_seed'])} "
                     f"| {a['pair_right']}/{a['pair_n']} ({100 * a['pair_right'] / max(1, a['pair_n']):.0f}%) |")
    lines.append(f"long-range pair ({' vs '.join(LONG_RANGE_EFFECT['classes'])}, told apart only by the order of two "
                 "events seconds apart): test clips of the pair predicted as one of the two, and how many of "
                 "those as the right one, pooled over seeds (chance: half)")
    lines.append("")
    lines += [f"{'MET ' if ok else 'MISSED'}  {goal}" for goal, ok in r["goals"].items()]
    lines += ["", "paired comparisons against the base (the ablation runner's statistics):", r["ablation_table"],
              f"results: {r['root']}"]
    return "\n".join(lines)
