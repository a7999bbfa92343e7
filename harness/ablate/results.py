"""Load an ablation folder into tables (no training): the runs frame, predictions, statistics.

The headline figures (and the clip predictions the paired tests use) are the test figures of each
run's validation-chosen checkpoint, `val_macro_acc` the selection figure beside them. A run without
a test set (`data.test_fraction=0`, or recorded before test sets existed) reports validation, and
`evaluated_on` says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..engine.store import ResultStore
from .stats import compare_to_base, summarise


@dataclass
class AblationResults:
    root: Path
    manifest: dict
    records: dict[str, dict]
    runs: pd.DataFrame                       # one row per (arm, seed) that finished
    predictions: dict[tuple[str, int], pd.DataFrame]

    @property
    def evaluated_on(self) -> str:
        """"test", "val", or "mixed" (some runs without a test set: their figures are not comparable)."""
        kinds = set(self.runs["evaluated_on"]) if len(self.runs) else {"test"}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def base(self) -> str:
        return self.manifest["grid"]["base"]["label"]

    def summary(self) -> pd.DataFrame:
        return summarise(self.runs)

    def comparisons(self) -> pd.DataFrame:
        return compare_to_base(self.runs, self.predictions, self.base)


def headline_split(final: dict) -> str:
    """"test" when the run has a test report, else "val"."""
    return "test" if final.get("test") else "val"


def load_ablation(root: str | Path) -> AblationResults:
    store = ResultStore(root)
    manifest = store.manifest()
    records = store.all()
    rows, predictions = [], {}
    for item in manifest["plan"]:
        rec = records.get(item["hash"])
        if rec is None:
            continue
        final = rec["final"]
        split = headline_split(final)
        head, val = final[split], final["val"]
        rows.append({
            "arm": item["arm"], "kind": item["kind"], "seed": item["seed"], "hash": item["hash"],
            "model": rec["config"]["model"]["name"], "evaluated_on": split, "macro_acc": head["macro_acc"],
            "acc": head["acc"], "log_loss": head["log_loss"], "n_eval": head["n"],
            "seen_macro_acc": head.get("seen_macro_acc"), "unseen_macro_acc": head.get("unseen_macro_acc"),
            "val_macro_acc": val["macro_acc"], "n_val": val["n"], "best_epoch": final["best_epoch"],
            "epochs": rec["final"]["epochs"], "params": rec["complexity"]["params"],
            "macs": rec["complexity"]["macs"], "clip_seconds": rec["complexity"]["seconds"],
            "wall_s": rec.get("wall_s"),
        })
        predictions[(item["arm"], item["seed"])] = pd.DataFrame(final[f"{split}_predictions"])
    return AblationResults(Path(root), manifest, records, pd.DataFrame(rows), predictions)
