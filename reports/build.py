"""Build REPORT.md and its figures from whatever runs live under RUN_DIR (no training)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from harness.ablate.results import load_ablation
from harness.io import write_text_atomic

from .discover import discover
from .sections import ablation_section, run_section, tune_section
from .tune_data import load_tune


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write `out/REPORT.md` (default RUN_DIR/report) and its PNGs; returns the REPORT.md path."""
    found = discover(run_dir)
    out = Path(out) if out else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    tunes = [load_tune(p) for p in found.tune]
    ablations = [load_ablation(p) for p in found.ablation]
    parts = [f"# ascbench report: {Path(run_dir).resolve().name}", "",
             f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} from the stored results in `{Path(run_dir).resolve()}` "
             "(nothing was retrained).", "", run_section(tunes, ablations), ""]
    parts += [tune_section(t, out) for t in tunes]
    parts += [ablation_section(a, out) for a in ablations]
    return write_text_atomic(out / "REPORT.md", "\n".join(parts).rstrip() + "\n")
