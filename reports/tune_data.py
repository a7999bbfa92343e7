"""A tune experiment read offline: the results table, per-epoch histories, the search space, and
the Optuna study rebuilt from the table for parameter importance.

The report rebuilds the Optuna study from the stored trials (params + objective) with the stored
distributions: the same data Optuna's importance evaluators would see on the live study.
Everything is read from the files named in harness/schema.py, never from Ray's own files.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.schema import FINISHED, LEGACY_STATUSES, PROVENANCE, RECORDS


@dataclass
class TuneRun:
    root: Path
    results: pd.DataFrame
    space: dict                       # canonical space (metric, mode, budget, search, base), {} if absent
    histories: dict[str, pd.DataFrame]  # trial_id -> per-epoch metrics
    notes: list[str]
    confirmed: pd.DataFrame = None      # the top trials re-run over seeds (confirmed.csv), empty if none

    @property
    def metric(self) -> str:
        return self.space.get("metric", "val/best_macro_acc")

    @property
    def mode(self) -> str:
        return self.space.get("mode", "max")

    @property
    def max_epochs(self) -> int | None:
        b = self.space.get("budget", {})
        if "max_epochs" in b:
            return int(b["max_epochs"])
        return int(self.results["epochs"].max()) if "epochs" in self.results and len(self.results) else None


def _results(root: Path) -> pd.DataFrame:
    if (root / "results.parquet").is_file():
        df = pd.read_parquet(root / "results.parquet")
    elif (root / "results.csv").is_file():
        df = pd.read_csv(root / "results.csv")
    else:
        return pd.DataFrame()
    if "status" in df:   # tables written before statuses said what happened
        df["status"] = df["status"].replace(LEGACY_STATUSES)
    return df


def _histories(root: Path, notes: list[str]) -> dict[str, pd.DataFrame]:
    """Per-epoch metrics of each trial from the records the driver stored (results/<trial_id>.json)."""
    out: dict[str, pd.DataFrame] = {}
    for path in sorted((root / RECORDS).glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("history"):
            out[str(record["id"])] = pd.DataFrame(record["history"])
    if not out:
        notes.append(f"per-epoch histories unavailable (no trial records in {RECORDS}/)")
    return out


def stored_provenance(root: Path) -> dict | None:
    """Versions, commit and hardware the experiment recorded when it ran (None if it recorded none)."""
    path = Path(root) / PROVENANCE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_tune(root: str | Path) -> TuneRun:
    root = Path(root)
    notes: list[str] = []
    space = {}
    if (root / "space.json").is_file():
        stored = json.loads((root / "space.json").read_text(encoding="utf-8"))
        space = stored.get("canonical", stored)
    else:
        notes.append("no space.json: search distributions unknown, parameter importance skipped")
    confirmed = pd.read_csv(root / "confirmed.csv") if (root / "confirmed.csv").is_file() else pd.DataFrame()
    return TuneRun(root, _results(root), space, _histories(root, notes), notes, confirmed)


def rebuilt_study(run: TuneRun):
    """An in-memory Optuna study holding the finished trials (None with a note if not possible)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    search = run.space.get("search") or {}
    col = f"best/{run.metric}"
    if not search or col not in run.results:
        return None, "no search space or objective column stored"
    dists = {}
    for key, d in search.items():
        if d["kind"] == "choice":
            dists[key] = CategoricalDistribution([v if v is None or isinstance(v, (int, float, str, bool)) else str(v)
                                                  for v in d["values"]])
        elif d["kind"] == "int":
            dists[key] = IntDistribution(int(d["low"]), int(d["high"]), step=int(d.get("step") or 1))
        else:
            dists[key] = FloatDistribution(float(d["low"]), float(d["high"]), log=d["kind"] == "loguniform")
    status = run.results.get("status", pd.Series([FINISHED] * len(run.results)))
    complete = run.results[status == FINISHED]
    used, scope = complete, "trials that ran to the end"
    if len(complete) < 4:   # too few finished trials: use every trial's best value before it stopped
        used, scope = run.results[run.results[col].notna()], "all trials, best value reached before ASHA stopped them"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if run.mode == "max" else "minimize")
    for _, row in used.iterrows():
        params, trial_dists = {}, {}
        for key, dist in dists.items():
            v = row.get(f"config/{key}")
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue   # conditional key not active in this trial
            v = v.item() if hasattr(v, "item") else v
            if isinstance(dist, IntDistribution):
                v = int(v)
            params[key], trial_dists[key] = v, dist
        value = row[col]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=trial_dists, value=float(value)))
        except ValueError:
            continue
    return study, scope


def importance(run: TuneRun) -> tuple[pd.DataFrame, str]:
    """Optuna's fANOVA importance (default evaluator) per searched key, with what it was computed on."""
    import optuna

    study, scope = rebuilt_study(run)
    if study is None:
        return pd.DataFrame(), scope
    if len(study.trials) < 3:
        return pd.DataFrame(), f"only {len(study.trials)} usable trials: too few for parameter importance"
    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except Exception as exc:
        return pd.DataFrame(), f"optuna importance failed: {str(exc).splitlines()[0][:160]}"
    df = pd.DataFrame({"parameter": list(imp), "importance": list(imp.values())})
    return df, f"fANOVA (optuna.importance, seed 0) on {len(study.trials)} {scope}"
