"""The ablation tables as markdown: what `ascbench ablate` prints and REPORT.md embeds.

Each table carries its own legend (n, what ± means, which test a mark stands for), so a
table copied into a paper on its own still says what it shows.
"""
from __future__ import annotations

import pandas as pd

from .results import AblationResults
from .stats import ALPHA, CONFIDENCE, POWER, seeds_needed, significance_mark


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); cells are str()-ed as given."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def pct(x: float, digits: int = 1) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.{digits}f}"


def pval(p: float) -> str:
    if pd.isna(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def human(n: float, unit: str = "") -> str:
    if pd.isna(n):
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


SPLIT_WORDS = {
    "test": ("test", "Macro accuracy on the held-out test clips of each run's checkpoint chosen on validation "
                     "(test chose nothing)"),
    "val": ("val", "Macro accuracy on the validation split at each run's best epoch (no test set: these are "
                   "the selection figures, biased upward)"),
    "mixed": ("test/val", "Macro accuracy on test where a run has a test set and on validation where it has not: "
                          "NOT comparable across arms, rerun the runs without a test set"),
}


def _seeds_for(c: pd.Series) -> str:
    n = seeds_needed(c["diff"], c["diff_sd"])
    return "–" if n is None else f"{n} (have {int(c['n_seeds'])})"


def ablation_table(results: AblationResults) -> tuple[pd.DataFrame, str]:
    """Summary per arm joined with its comparison to the base; returns (table, legend)."""
    summary, comp = results.summary(), results.comparisons()
    if summary.empty:
        return pd.DataFrame(), "No finished runs yet."
    comp = comp.set_index("arm") if not comp.empty else pd.DataFrame()
    seconds = results.runs["clip_seconds"].iloc[0]
    rows = []
    for s in summary.sort_values(["kind", "rank"], key=lambda c: c.map({"base": 0, "variant": 1, "baseline": 2})
                                 if c.name == "kind" else c).itertuples():
        c = comp.loc[s.arm] if s.arm in comp.index else None
        val = results.runs.loc[results.runs["arm"] == s.arm, "val_macro_acc"].astype(float)
        rows.append({
            "arm": s.arm, "kind": s.kind, "n": s.n,
            f"{SPLIT_WORDS[results.evaluated_on][0]} macro acc % (mean ± sd)": f"{pct(s.mean)} ± {pct(s.std)}",
            f"{int(CONFIDENCE * 100)}% CI": f"[{pct(s.ci_lo)}, {pct(s.ci_hi)}]",
            "Δ vs base (pp)": "–" if c is None else (f"{100 * c['diff']:+.1f} [{100 * c['diff_lo']:+.1f}, "
                                                     f"{100 * c['diff_hi']:+.1f}]"),
            "p boot (Holm)": "–" if c is None else pval(c["p_boot_holm"]),
            "p t (Holm)": "–" if c is None else pval(c["p_t_holm"]),
            "McNemar b/c": "–" if c is None else f"{c['base_only']}/{c['arm_only']}",
            "p McNemar (Holm)": "–" if c is None else pval(c["p_mcnemar_holm"]),
            "sig": "" if c is None else significance_mark(c),
            "P(arm > base)": "–" if c is None else f"{c['p_improve']:.2f}",
            f"MDE {int(POWER * 100)}% (pp)": "–" if c is None else pct(c["mde"]),
            "seeds for Δ": "–" if c is None else _seeds_for(c),
            "val macro acc % (selection)": f"{pct(val.mean())} ± {pct(val.std())}",
            "rank": s.rank, "mean rank": f"{s.mean_rank:.1f}",
            "params": human(s.params), f"MACs/{seconds:g}s clip": human(s.macs),
        })
    n_seeds = int(summary["n"].max())
    legend = (
        f"{SPLIT_WORDS[results.evaluated_on][1]}; n = number of seeds per arm "
        f"(up to {n_seeds}); ± is the standard deviation over seeds (ddof 1); CI is the {int(CONFIDENCE * 100)}% "
        f"percentile bootstrap CI of the mean over seeds. Δ is the mean over seeds of the paired (same seed, same "
        f"split) difference to the base `{results.base}`, in percentage points, with its paired bootstrap "
        f"{int(CONFIDENCE * 100)}% CI. p boot: two-sided paired bootstrap p-value over seeds (blind to the spread of "
        f"a few seeds, shown for reference); p t: paired t-test over seeds; McNemar: exact/χ² test on "
        f"the pooled (seed, clip) {SPLIT_WORDS[results.evaluated_on][0]} predictions, b = clips only the base got "
        f"right, c = only the arm. "
        f"All p-values Holm-adjusted across the {len(comp)} arms compared with the base; sig: * paired t-test at "
        f"α = {ALPHA} (McNemar compares the trained models on these clips and ignores seed-to-seed variability, "
        f"so it does not mark significance: it flagged a pure reseed in the planted check). P(arm > base): share of "
        f"seeds where the arm beat the base (ties half). "
        f"MDE {int(POWER * 100)}%: the smallest mean difference a paired t-test over this many seeds detects with "
        f"{int(POWER * 100)}% power at α = {ALPHA}, from the observed spread of the paired differences (statsmodels); "
        f"a Δ below it that is not significant is not evidence of no effect. Seeds for Δ: seeds that test needs to "
        f"detect the observed Δ with that power. Val macro acc: the validation figure of the same checkpoints, which "
        f"chose them (biased upward). Rank: by mean (1 = best); mean rank: average within-seed rank."
    )
    return pd.DataFrame(rows), legend


def format_tables(results: AblationResults) -> str:
    if results.runs.empty:   # e.g. interrupted before the first run finished
        return "no finished runs yet"
    table, legend = ablation_table(results)
    if table.empty:
        return legend
    return markdown_table(table) + "\n\n" + legend
