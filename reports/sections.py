"""REPORT.md sections. Each returns markdown and writes its figures into `out`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.ablate.results import AblationResults, headline_split
from harness.ablate.tables import ablation_table, human, markdown_table, pct
from harness.schema import FINISHED, STOPPED, STRATEGY_DEFAULTS

from . import figures
from .tune_data import TuneRun, importance, stored_provenance


def _fig(path: Path, out: Path, alt: str) -> str:
    return f"![{alt}]({path.relative_to(out).as_posix()})"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


# --------------------------------------------------------------------------- what was run
def _provenance_lines(tunes: list[TuneRun], ablations: list[AblationResults]) -> list[str]:
    """Commit, hardware and versions as the first experiment recorded them when it ran."""
    stored = [stored_provenance(x.root) for x in [*tunes, *ablations]]
    stored += [a.manifest.get("provenance") for a in ablations]   # ablations recorded before provenance.json
    prov = next((p for p in stored if p), None)
    if prov is None:
        return ["- provenance: not recorded (runs made before experiments recorded it)"]
    hw = prov["hardware"]
    return [
        f"- git commit: `{prov['git_commit']}` (recorded when the run started)",
        f"- hardware: {hw['cpu_count']} CPU cores ({hw['cpu']}), GPUs: {', '.join(hw['gpus']) or 'none'}; "
        f"host {hw['host']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
    ]


def run_section(tunes: list[TuneRun], ablations: list[AblationResults]) -> str:
    lines = ["## What was run", ""]
    lines += _provenance_lines(tunes, ablations)
    for run in tunes:
        r = run.results
        wall = float(r["wall_s"].sum()) if "wall_s" in r else float("nan")
        res = run.space.get("resources", {})
        lines += ["", f"**Tune run `{run.root.name}`** ({run.root})", "",
                  f"- {len(r)} trials, metric `{run.metric}` ({run.mode}), budget {run.space.get('budget', '?')}",
                  f"- {_strategy(run.space)}",
                  f"- trial time {wall:.0f} s summed; CPU hours {_hours(wall * float(res.get('cpu', 1)))}, "
                  f"GPU hours {_hours(wall * float(res.get('gpu', 0)))}"]
        base = run.space.get("base", {})
        if base:
            d = base.get("data", {})
            lines.append(
                f"- data: {d.get('source')} {d.get('preset', '')}, val fraction {d.get('val_fraction')}, split seed "
                f"{d.get('split_seed') if d.get('split_seed') is not None else 'run seed ' + str(base.get('seed'))}")
        lines += [f"- note: {n}" for n in run.notes]
    for res in ablations:
        m, runs = res.manifest, res.runs
        grid = m["grid"]
        wall_sessions = sum(s.get("wall_s", 0) for s in m.get("sessions", []))
        run_wall = float(runs["wall_s"].fillna(0).sum()) if len(runs) else 0.0
        cpu, gpu = grid["resources"]["cpu"], grid["resources"]["gpu"]
        grid_base = grid["base"]
        base_from = (f"config {grid_base['config']}" if grid_base["config"]
                     else "overrides " + " ".join(grid_base["overrides"]))
        lines += ["", f"**Ablation `{m['name']}`** ({res.root})", "",
                  f"- grid `{grid['path']}`: base `{grid_base['label']}` ({base_from}), "
                  f"{len(grid['arms']) - 1} other arms, seeds {grid['seeds']}; "
                  f"command-line overrides: {' '.join(grid['cli_overrides']) or 'none'}",
                  f"- {len(runs)} of {len(m['plan'])} planned runs finished ({len(m.get('missing', []))} distinct "
                  f"configs missing); resources per run: {cpu:g} CPU, {gpu:g} GPU",
                  f"- wall time {wall_sessions:.0f} s over {len(m.get('sessions', []))} session(s); run time "
                  f"{run_wall:.0f} s summed; CPU hours {_hours(run_wall * cpu)}, GPU hours {_hours(run_wall * gpu)}"]
        if res.records:
            data = next(iter(res.records.values()))["final"]["data"]
            lines.append(f"- data: {data['source']} `{data['corpus']}`, {len(data['classes'])} classes, cities "
                         f"{', '.join(data['cities'])}; per seed {data['n_train']} train / {data['n_val']} validation "
                         f"/ {data['n_unlabelled']} unlabelled clips, session-level split with split seed = run seed "
                         f"(paired), holdout cities {data['holdout_cities'] or 'none'}; test: "
                         + (f"{data['n_test']} clips, {data['test_source']}" if data.get("n_test") else "none"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- tune
def _stop_label(row: pd.Series, max_epochs: int | None) -> str:
    if row.get("status") == FINISHED or (max_epochs and row.get("epochs", 0) >= max_epochs):
        return f"ran to the end (epoch {row.get('epochs')})"
    if row.get("status") in ("error", "interrupted"):
        return str(row.get("status"))
    return f"epoch {int(row.get('epochs', 0))}"


def tune_section(run: TuneRun, out: Path) -> str:
    r = run.results
    lines = [f"## Tune: `{run.root.name}`", ""]
    if r.empty:
        return "\n".join(lines + ["No results table stored yet."])
    col = f"best/{run.metric}"
    top = r.sort_values(col, ascending=run.mode != "max").head(10)
    cfg_cols = [c for c in r.columns if c.startswith("config/")]
    board = pd.DataFrame({
        "trial": top["trial_id"], "status": top["status"], "epochs": top["epochs"],
        **{c[len("config/"):]: top[c].map(lambda v: f"{v:.3g}" if isinstance(v, float) else v) for c in cfg_cols},
        f"best {run.metric} (%)": top[col].map(lambda v: pct(v)),
        "test macro acc (%)": top["last/test/macro_acc"].map(pct) if "last/test/macro_acc" in top else "–",
        "wall s": top["wall_s"].map(lambda v: f"{v:.0f}") if "wall_s" in top else "–",
    })
    lines += ["### Leaderboard", "", f"Top {len(top)} of {len(r)} trials by the best `{run.metric}` reached "
              "(one validation split, one seed per trial; differences of a point or two between trials are within "
              "seed noise). Test: the held-out test figure of the trial's validation-chosen checkpoint at the "
              "epoch it ended (reported, never chosen on).", "", markdown_table(board), ""]
    if run.confirmed is not None and len(run.confirmed):
        lines += confirmed_lines(run)
    # ASHA budget
    max_e = run.max_epochs
    epochs = r["epochs"].astype(int)
    spent = int(epochs.sum())
    full = len(r) * max_e if max_e else spent
    per_rung = epochs.value_counts().sort_index()
    status = r["status"].value_counts()
    early = r["status"] == STOPPED   # stopped by the scheduler: the only epochs it saved
    saved = int((max_e - epochs[early]).clip(lower=0).sum()) if max_e else 0
    unended = int((~r["status"].isin([FINISHED, STOPPED])).sum())
    scheduler = "ASHA" if _strategy_of(run.space)["scheduler"] == "asha" else "FIFO (no early stopping)"
    lines += [f"### How {scheduler} spent the budget", "",
              f"- trials: {len(r)}; " + ", ".join(f"{k}: {v}" for k, v in status.items()),
              f"- epochs run: {spent} of {full} if every trial had run all {max_e} epochs: "
              f"{saved} epochs saved ({100 * saved / max(full, 1):.0f}%) by early stopping"
              + (f"; {unended} trials were interrupted or failed (their missing epochs are not savings)"
                 if unended else ""),
              "", markdown_table(pd.DataFrame({"trial ended at epoch": per_rung.index, "trials": per_rung.values})),
              ""]
    if run.histories:
        stops = {row["trial_id"]: _stop_label(row, max_e) for _, row in r.iterrows()}
        metric = "val/macro_acc"
        path = figures.learning_curves(run.histories, stops, metric, out / f"tune_{run.root.name}_curves.png")
        lines += [_fig(path, out, "learning curves"), ""]
    else:
        lines += ["Learning curves: no per-epoch histories could be read.", ""]
    imp, note = importance(run) if run.space else (pd.DataFrame(), "no search space stored")
    lines += ["### Parameter importance", ""]
    if imp.empty:
        lines += [f"Not computed: {note}.", ""]
    else:
        path = figures.importance_bars(imp, out / f"tune_{run.root.name}_importance.png")
        lines += [f"{note}.", "", markdown_table(imp.assign(importance=imp["importance"].map(lambda v: f"{v:.3f}"))),
                  "", _fig(path, out, "parameter importance"), ""]
    return "\n".join(lines)


def confirmed_lines(run: TuneRun) -> list[str]:
    """The top trials re-run over seeds: single-seed and confirmed figures side by side."""
    c = run.confirmed
    val_mean = next(k for k in c.columns if k.startswith("confirmed/val_") and k.endswith("_mean"))
    val_sd = val_mean[:-len("_mean")] + "_sd"
    single = next(k for k in c.columns if k.startswith("single_seed/"))
    table = pd.DataFrame({
        "trial": c["trial_id"], "rank (one seed)": c["rank_single_seed"],
        "rank (confirmed)": c["rank_confirmed"].map(lambda v: f"{v:.0f}"),
        f"one seed: {single[len('single_seed/'):]} %": c[single].map(pct),
        "n seeds": c["n_seeds"],
        "confirmed: val % (mean ± sd)": [f"{pct(m)} ± {pct(s)}" for m, s in zip(c[val_mean], c[val_sd], strict=True)],
        "confirmed: test % (mean ± sd)": [f"{pct(m)} ± {pct(s)}" for m, s in
                                         zip(c["confirmed/test_macro_acc_mean"], c["confirmed/test_macro_acc_sd"],
                                             strict=True)],
        "test, unseen cities %": c["confirmed/test_unseen_macro_acc_mean"].map(pct),
    })
    return ["### Confirmed winners", "",
            f"The top {len(c)} trials re-run over {int(c['n_seeds'].max())} seeds each (`--confirm-top`, "
            "`--confirm-seeds`); best_config.yaml is the configuration with the best mean validation figure over "
            "those seeds. ± is the standard deviation over seeds; test figures are those of each run's "
            "validation-chosen checkpoint and chose nothing.", "", markdown_table(table), ""]


# --------------------------------------------------------------------------- ablation
def protocol_paragraph(res: AblationResults) -> str:
    """Which clips are train, validation and test, what chose what, how many seeds, what ± means."""
    runs = res.runs
    data = next(iter(res.records.values()))["final"]["data"]
    n_seeds = int(runs.groupby("arm").size().max())
    if res.evaluated_on == "test":
        test = (f"**test**: {data['n_test']} clips, {data['test_source']}"
                + (f" (cities never in training: {', '.join(data['test_cities_unseen'])})"
                   if data.get("test_cities_unseen") else "")
                + "; test chose nothing, it is only reported")
    else:
        test = "**no test set** (the figures below are validation figures, which also chose the checkpoints)"
    return (f"**Protocol.** Per seed, development clips are split by whole recording sessions into **train** "
            f"(~{data['n_train']} labelled clips, plus pseudo-labels drawn only from unlabelled clips of training "
            f"sessions) and **validation** (~{data['n_val']} clips, split seed = run seed, so arms are paired); "
            f"{test}. Validation chose each run's epoch (the checkpoint reported), and in tune the configuration and "
            f"pseudo-label thresholds. {n_seeds} seeds per arm; ± is the standard deviation over seeds and CIs are "
            f"95% bootstrap intervals over seeds.")


def _mean_reports(res: AblationResults, arm: str) -> list[dict]:
    """Each run's headline report (test where the run has one, else validation)."""
    finals = [res.records[h]["final"] for h in res.runs.loc[res.runs["arm"] == arm, "hash"]]
    return [f[headline_split(f)] for f in finals]


def ablation_section(res: AblationResults, out: Path) -> str:
    name = res.manifest["name"]
    lines = [f"## Ablation: `{name}`", ""]
    if res.runs.empty:
        return "\n".join(lines + ["No finished runs yet."])
    table, legend = ablation_table(res)
    summary = res.summary()
    where = {"test": "test", "val": "validation"}.get(res.evaluated_on, "test or validation")
    lines += [protocol_paragraph(res), "", "### Ablation table", "", markdown_table(table), "", legend, ""]
    path = figures.ablation_bars(summary, res.base, out / f"ablation_{name}_bars.png", where)
    lines += [_fig(path, out, "ablation bars"), ""]
    base_rows = summary[summary["kind"].isin(["base", "baseline"])]
    lines += _baselines_block(res, summary, base_rows, out, where)
    lines += _per_class_and_city_block(res, summary, list(base_rows["arm"]), out, where)
    lines += _confusion_block(res, summary, out)
    return "\n".join(lines)


def _baselines_block(res: AblationResults, summary: pd.DataFrame, base_rows: pd.DataFrame, out: Path,
                     where: str) -> list[str]:
    """Base and baselines with accuracy, parameters and MACs, and the accuracy-vs-MACs figure."""
    name = res.manifest["name"]
    seconds = float(res.runs["clip_seconds"].iloc[0])
    models = res.runs.drop_duplicates("arm").set_index("arm")["model"]
    lines = ["### Baselines: accuracy, parameters and compute", "",
             markdown_table(pd.DataFrame({
                 "arm": base_rows["arm"], "model": base_rows["arm"].map(models), "n seeds": base_rows["n"],
                 f"{where} macro acc % (mean ± sd)": [f"{pct(m)} ± {pct(s)}" for m, s in
                                                      zip(base_rows["mean"], base_rows["std"], strict=True)],
                 "val macro acc % (selection)": [pct(res.runs.loc[res.runs["arm"] == a, "val_macro_acc"].astype(float)
                                                     .mean()) for a in base_rows["arm"]],
                 "params": base_rows["params"].map(human),
                 f"MACs per {seconds:g}-s clip": base_rows["macs"].map(human)})),
             "", f"MACs counted on one clip of {seconds:g} s at each model's front end, selective scan and attention "
             "included (ascmamba.complexity); ± is the standard deviation over seeds.", ""]
    path = figures.accuracy_vs_macs(summary, seconds, out / f"ablation_{name}_pareto.png", where)
    return lines + [_fig(path, out, "accuracy vs MACs"), ""]


def _per_class_and_city_block(res: AblationResults, summary: pd.DataFrame, arms: list[str], out: Path,
                              where: str) -> list[str]:
    """Per-class and per-city accuracy of the base and the baselines, seen and unseen cities apart."""
    pc_rows, city_rows = [], []
    for arm in arms:
        reports = _mean_reports(res, arm)
        classes = list(reports[0]["per_class_acc"])
        pc_rows.append({"arm": arm, **{c: np.nanmean([np.nan if r["per_class_acc"][c] is None else r["per_class_acc"][c]
                                                       for r in reports]) for c in classes}})
        for city in sorted({c for r in reports for c in r.get("per_city", {})}):
            vals = [r["per_city"][city] for r in reports if city in r.get("per_city", {})]
            city_rows.append({"arm": arm, "city": city, "seen": bool(vals[0]["seen"]),
                              "macro_acc": float(np.nanmean([v["macro_acc"] for v in vals])),
                              "n": int(sum(v["n"] for v in vals)), "seeds": len(vals)})
    pc = pd.DataFrame(pc_rows)
    lines = ["### Per-class accuracy (%)", "",
             f"Mean over seeds of each class's {where} accuracy (n = {int(summary['n'].max())} seeds).", "",
             markdown_table(pc.assign(**{c: pc[c].map(pct) for c in pc.columns if c != "arm"})), ""]
    if not city_rows:
        return lines
    cdf = pd.DataFrame(city_rows)
    seen_cols = []
    for arm in arms:
        rs = res.runs[res.runs["arm"] == arm]
        seen_cols.append({"arm": arm, "seen cities %": pct(rs["seen_macro_acc"].astype(float).mean()),
                          "unseen cities %": pct(rs["unseen_macro_acc"].astype(float).mean())
                          if rs["unseen_macro_acc"].notna().any() else f"– (none in {where})"})
    lines += ["### Per-city accuracy (seen vs unseen cities)", "",
              f"Macro accuracy per {where} city, mean over seeds; n = {where} clips summed over seeds. "
              "Unseen = a city with no training clips.", "",
              markdown_table(cdf.assign(macro_acc=cdf["macro_acc"].map(pct))
                             .rename(columns={"macro_acc": "macro acc %"})),
              "", markdown_table(pd.DataFrame(seen_cols)), ""]
    path = figures.per_city(cdf, out / f"ablation_{res.manifest['name']}_cities.png", where)
    return lines + [_fig(path, out, "per-city accuracy"), ""]


def _confusion_block(res: AblationResults, summary: pd.DataFrame, out: Path) -> list[str]:
    """The confusion matrix of the best arm's best seed."""
    best_arm = summary.sort_values("mean", ascending=False).iloc[0]["arm"]
    runs = res.runs[res.runs["arm"] == best_arm].sort_values("macro_acc", ascending=False).iloc[0]
    final = res.records[runs["hash"]]["final"]
    val = final[headline_split(final)]
    title = f"{best_arm}, seed {runs['seed']}: macro acc {pct(val['macro_acc'])}% (n={val['n']} clips)"
    path = figures.confusion(np.array(val["confusion"]), list(val["per_class_acc"]), title,
                             out / f"ablation_{res.manifest['name']}_confusion.png")
    return ["### Best model's confusion matrix", "",
            f"The best arm by mean (`{best_arm}`), its best seed; cells: clip counts, colour: % of the true class.",
            "", _fig(path, out, "confusion matrix"), ""]


def _strategy_of(space: dict) -> dict[str, str]:
    """The stored space's strategy (spaces stored before `strategy` existed get the defaults: ASHA + TPE)."""
    return {**STRATEGY_DEFAULTS, **space.get("strategy", {})}


def _strategy(space: dict) -> str:
    """The search method in words."""
    strategy = _strategy_of(space)
    scheduler = ("ASHA early stopping over epochs" if strategy["scheduler"] == "asha"
                 else "FIFO scheduling (every trial runs its whole budget)")
    searcher = "Optuna TPE" if strategy["searcher"] == "tpe" else "uniform random sampling"
    return f"search: {searcher} (seed {space.get('seed', '?')}), {scheduler}"
