"""The ablation tables as markdown: what `ascbench ablate` prints and REPORT.md embeds.

Each table carries its own legend (n, what ± means, which test a mark stands for), so a
table copied into a paper on its own still says what it shows.
"""
from __future__ import annotations

import math

import pandas as pd

from .results import AblationResults
from .stats import ALPHA, CONFIDENCE, significance_mark


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); cells are str()-ed as given."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def pct(x: float, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def pval(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def human(n: float, unit: str = "") -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


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
        rows.append({
            "arm": s.arm, "kind": s.kind, "n": s.n,
            "macro acc % (mean ± sd)": f"{pct(s.mean)} ± {pct(s.std)}",
            f"{int(CONFIDENCE * 100)}% CI": f"[{pct(s.ci_lo)}, {pct(s.ci_hi)}]",
            "Δ vs base (pp)": "–" if c is None else f"{100 * c['diff']:+.1f} [{100 * c['diff_lo']:+.1f}, {100 * c['diff_hi']:+.1f}]",
            "p boot (Holm)": "–" if c is None else pval(c["p_boot_holm"]),
            "p t (Holm)": "–" if c is None else pval(c["p_t_holm"]),
            "McNemar b/c": "–" if c is None else f"{c['base_only']}/{c['arm_only']}",
            "p McNemar (Holm)": "–" if c is None else pval(c["p_mcnemar_holm"]),
            "sig": "" if c is None else significance_mark(c),
            "rank": s.rank, "mean rank": f"{s.mean_rank:.1f}",
            "params": human(s.params), f"MACs/{seconds:g}s clip": human(s.macs),
        })
    n_seeds = int(summary["n"].max())
    legend = (
        f"Macro accuracy on the validation split at each run's best epoch; n = number of seeds per arm "
        f"(up to {n_seeds}); ± is the standard deviation over seeds (ddof 1); CI is the {int(CONFIDENCE * 100)}% "
        f"percentile bootstrap CI of the mean over seeds. Δ is the mean over seeds of the paired (same seed, same "
        f"split) difference to the base `{results.base}`, in percentage points, with its paired bootstrap "
        f"{int(CONFIDENCE * 100)}% CI. p boot: two-sided paired bootstrap p-value over seeds (blind to the spread of "
        f"a few seeds, shown for reference); p t: paired t-test over seeds; McNemar: exact/χ² test on "
        f"the pooled (seed, clip) validation predictions, b = clips only the base got right, c = only the arm. "
        f"All p-values Holm-adjusted across the {len(comp)} arms compared with the base; sig: * paired t-test, "
        f"† McNemar, at α = {ALPHA}. Rank: by mean (1 = best); mean rank: average within-seed rank."
    )
    return pd.DataFrame(rows), legend


def format_tables(results: AblationResults) -> str:
    if results.runs.empty:   # e.g. interrupted before the first run finished
        return "no finished runs yet"
    table, legend = ablation_table(results)
    if table.empty:
        return legend
    return markdown_table(table) + "\n\n" + legend
