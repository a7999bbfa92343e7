"""Load an ablation folder into tables (no training): the runs frame, predictions, statistics."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .stats import compare_to_base, summarise
from .store import ResultStore


@dataclass
class AblationResults:
    root: Path
    manifest: dict
    records: dict[str, dict]
    runs: pd.DataFrame                       # one row per (arm, seed) that finished
    predictions: dict[tuple[str, int], pd.DataFrame]

    @property
    def base(self) -> str:
        return self.manifest["grid"]["base"]["label"]

    def summary(self) -> pd.DataFrame:
        return summarise(self.runs)

    def comparisons(self) -> pd.DataFrame:
        return compare_to_base(self.runs, self.predictions, self.base)


def load_ablation(root: str | Path) -> AblationResults:
    store = ResultStore(root)
    manifest = store.manifest()
    records = store.all()
    rows, predictions = [], {}
    for item in manifest["plan"]:
        rec = records.get(item["hash"])
        if rec is None:
            continue
        val = rec["final"]["val"]
        rows.append({
            "arm": item["arm"], "kind": item["kind"], "seed": item["seed"], "hash": item["hash"],
            "model": rec["config"]["model"]["name"], "macro_acc": val["macro_acc"], "acc": val["acc"],
            "log_loss": val["log_loss"], "n_val": val["n"], "seen_macro_acc": val.get("seen_macro_acc"),
            "unseen_macro_acc": val.get("unseen_macro_acc"), "best_epoch": rec["final"]["best_epoch"],
            "epochs": rec["final"]["epochs"], "params": rec["complexity"]["params"],
            "macs": rec["complexity"]["macs"], "clip_seconds": rec["complexity"]["seconds"],
            "wall_s": rec.get("wall_s"),
        })
        predictions[(item["arm"], item["seed"])] = pd.DataFrame(rec["final"]["val_predictions"])
    return AblationResults(Path(root), manifest, records, pd.DataFrame(rows), predictions)
