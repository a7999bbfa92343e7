"""Confirm tune winners (README, "Confirmed winners": one seed per trial makes the winner partly luck):
the top K trials re-run over N seeds as an ablation (resumable by config hash), and `best_config.yaml`
becomes the configuration with the best mean validation figure; test figures choose nothing."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TextIO

import pandas as pd
import yaml

from ..ablate.execute import run_grid_document
from ..engine.outcome import INTERRUPTED_RC
from ..io import write_text_atomic
from ..train.config import from_dict, to_dict
from ..train.dotted import get_dotted, merge_params
from ..train.overrides import format_override
from .results import ERROR, best_params, read_results, write_best
from .space import Space
from .storage import ExperimentDir, storage_root

CONFIRM = "confirm"          # the grid (confirm.yaml) and its ablation folder (confirm/)
CONFIRMED = "confirmed"      # confirmed.csv: the leaderboard of the confirmed configurations


def selection_key(metric: str) -> str:
    """The validation report's key for the space's metric (val/best_macro_acc -> macro_acc)."""
    return metric.split("/", 1)[-1].removeprefix("best_")


def top_trials(df: pd.DataFrame, space: Space, k: int) -> pd.DataFrame:
    col = f"best/{space.metric}"
    ok = df[(df["status"] != ERROR) & df[col].notna()]
    return ok.sort_values(col, ascending=space.mode != "max").head(k)


def arm_name(rank: int, trial_id: str) -> str:
    """The confirmation arm of the trial ranked `rank` by the search."""
    return f"rank{rank}_{trial_id}"


def confirm_grid(top: pd.DataFrame, space: Space, seeds: int, folder: Path) -> dict:
    """An ablation grid: the winner's whole config (saved in `folder`) as base, the runners-up as
    variants of it with every searched key set."""
    arms = []
    resolved_base = to_dict(from_dict(space.base))
    for rank, (_, row) in enumerate(top.iterrows(), start=1):
        params = best_params(row, space)
        config = from_dict(merge_params(space.base, params))   # validates like a trial would
        full = {d.key: params.get(d.key, get_dotted(resolved_base, d.key)) for d in space.search}
        arms.append((arm_name(rank, row["trial_id"]), [format_override(k, v) for k, v in full.items()],
                     to_dict(config)))
    (label, _, winner), rest = arms[0], arms[1:]
    base_file = folder / f"{CONFIRM}_base.yaml"
    write_text_atomic(base_file, yaml.safe_dump(winner, sort_keys=False))
    return {
        "name": CONFIRM,
        "description": f"the top {len(arms)} trials of the search, {seeds} seeds each",
        "seeds": seeds,
        "resources": dict(space.resources),
        "base": {"label": label, "config": str(base_file)},
        "variants": {name: overrides for name, overrides, _ in rest},
    }


def confirm(exp: ExperimentDir, space: Space, top_k: int, seeds: int, resume: str, out: TextIO) -> int:
    """Run (or finish) the confirmation of the top `top_k` trials over `seeds` seeds and print it; 130 when
    runs are missing (`resume`: the command that continues the experiment)."""
    top = pd.DataFrame()
    if top_k > 0 and seeds > 0:
        print(f"confirming the top {top_k} trials over {seeds} seeds each "
              f"(full {space.budget['max_epochs']}-epoch runs) ...", file=out, flush=True)
        top = top_trials(read_results(exp), space, top_k)
    if top.empty:
        print("best config chosen on one seed per trial (confirmation off)", file=out)
        return 0
    # the experiment folder when it is local; beside the local runs otherwise (runs write files)
    manifest_root = exp.local or Path(storage_root(None)) / f"{exp.name}-confirm"
    results = run_grid_document(confirm_grid(top, space, seeds, manifest_root), manifest_root, CONFIRM)
    board = confirmed_board(results, top, space)
    exp.write(f"{CONFIRMED}.csv", lambda p: board.to_csv(p, index=False))
    missing = len(results.manifest.get("missing", []))
    if missing == 0:
        _write_best(exp, space, top, board)
    print(format_confirmation(board, manifest_root / CONFIRM, space), file=out)
    if missing:
        print(f"interrupted: {missing} confirmation runs missing; best_config.yaml is still the single-seed "
              f"winner; resume with: {resume} --confirm-top {top_k} --confirm-seeds {seeds}", file=out)
        return INTERRUPTED_RC
    return 0


def confirmed_board(results, top: pd.DataFrame, space: Space) -> pd.DataFrame:
    """One row per confirmed configuration: single-seed search figure, mean validation (which
    chooses) and mean test (which reports) over the confirmation seeds."""
    key = selection_key(space.metric)
    rows = []
    for rank, (_, trial) in enumerate(top.iterrows(), start=1):
        arm = arm_name(rank, trial["trial_id"])
        runs = results.runs[results.runs["arm"] == arm]
        vals = pd.Series([results.records[h]["final"]["val"].get(key, math.nan) for h in runs["hash"]], dtype=float)
        on_test = (runs["evaluated_on"] == "test").all()
        tests = runs["macro_acc"].astype(float) if on_test else pd.Series(dtype=float)
        unseen = runs["unseen_macro_acc"].astype(float) if on_test else pd.Series(dtype=float)
        rows.append({
            "rank_single_seed": rank, "trial_id": trial["trial_id"], "arm": arm,
            f"single_seed/{space.metric}": float(trial[f"best/{space.metric}"]),
            # pandas skips NaN in mean and std; std (ddof 1) of one value is NaN
            "n_seeds": len(runs), f"confirmed/val_{key}_mean": vals.mean(), f"confirmed/val_{key}_sd": vals.std(),
            "confirmed/test_macro_acc_mean": tests.mean(), "confirmed/test_macro_acc_sd": tests.std(),
            "confirmed/test_unseen_macro_acc_mean": unseen.mean(),
            **{c: trial[c] for c in top.columns if c.startswith("config/")},
        })
    board = pd.DataFrame(rows)
    col = f"confirmed/val_{key}_mean"
    board["rank_confirmed"] = board[col].rank(ascending=space.mode != "max", method="min")
    return board


def _write_best(exp: ExperimentDir, space: Space, top: pd.DataFrame, board: pd.DataFrame) -> None:
    """best_config.yaml and best.yaml from the configuration with the best confirmed mean."""
    key = selection_key(space.metric)
    col = f"confirmed/val_{key}_mean"
    winner = board.sort_values(col, ascending=space.mode != "max").iloc[0]
    trial = top[top["trial_id"] == winner["trial_id"]].iloc[0]
    write_best(exp, space, trial, {
        "chosen_by": f"mean validation {key} over {int(winner['n_seeds'])} confirmation seeds",
        "value": float(winner[col]), "single_seed_value": float(winner[f"single_seed/{space.metric}"]),
        "test_macro_acc_mean": float(winner["confirmed/test_macro_acc_mean"])})


def format_confirmation(board: pd.DataFrame, root: Path, space: Space) -> str:
    """The confirmed leaderboard in a few lines (what `ascbench tune` prints at the end)."""
    key = selection_key(space.metric)
    lines = [f"confirmed over seeds (validation chooses, test reports; ± is the sd over seeds): {root}"]
    for _, r in board.sort_values("rank_confirmed").iterrows():
        lines.append(
            f"  {r['arm']}: single seed {100 * r[f'single_seed/{space.metric}']:.1f}; n={int(r['n_seeds'])} seeds: "
            f"val {key} {100 * r[f'confirmed/val_{key}_mean']:.1f} ± {100 * r[f'confirmed/val_{key}_sd']:.1f}, "
            f"test macro acc {100 * r['confirmed/test_macro_acc_mean']:.1f} ± "
            f"{100 * r['confirmed/test_macro_acc_sd']:.1f}")
    return "\n".join(lines)
