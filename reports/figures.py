"""The report's figures (seaborn), each written atomically as a PNG sized for embedding at 100%."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness.io import write_atomic  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return path


def learning_curves(histories: dict[str, pd.DataFrame], stops: dict[str, str], metric: str, path: Path) -> Path:
    """Validation metric per epoch, one line per trial, coloured by where ASHA stopped it."""
    frames = []
    for tid, df in histories.items():
        if metric in df and "epoch" in df:
            frames.append(pd.DataFrame({"epoch": df["epoch"], "value": 100 * df[metric], "trial": tid,
                                        "stopped": stops.get(tid, "?")}))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if frames:
        data = pd.concat(frames)
        order = sorted(data["stopped"].unique(), key=lambda s: (not s.startswith("epoch"), s))
        sns.lineplot(data=data, x="epoch", y="value", hue="stopped", hue_order=order, units="trial",
                     estimator=None, marker="o", alpha=0.8, ax=ax)
        ax.legend(title="trial ended", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title("Tune learning curves, by where ASHA stopped each trial")
    return save(fig, path)


def importance_bars(df: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(df) + 1.5))
    sns.barplot(data=df, y="parameter", x="importance", color="tab:blue", ax=ax)
    ax.set_xlabel("importance (fANOVA share of objective variance)")
    ax.set_ylabel("parameter")
    ax.set_title("Hyperparameter importance")
    return save(fig, path)


def ablation_bars(summary: pd.DataFrame, base: str, path: Path, split: str = "test") -> Path:
    """Mean macro accuracy per arm with its 95% bootstrap CI over seeds; base line dashed."""
    s = summary.sort_values("mean", ascending=True)
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(s) + 1.6))
    palette = {"base": "tab:green", "variant": "tab:blue", "baseline": "tab:gray"}
    y = np.arange(len(s))
    ax.barh(y, 100 * s["mean"], color=[palette.get(k, "tab:blue") for k in s["kind"]])
    lo = 100 * (s["mean"] - s["ci_lo"]).fillna(0).clip(lower=0)
    hi = 100 * (s["ci_hi"] - s["mean"]).fillna(0).clip(lower=0)
    ax.errorbar(100 * s["mean"], y, xerr=[lo, hi], fmt="none", ecolor="black", capsize=3)
    base_mean = summary.loc[summary["arm"] == base, "mean"]
    if len(base_mean):
        ax.axvline(100 * base_mean.iloc[0], ls="--", color="tab:green", lw=1)
    ax.set_yticks(y, [f"{a} (n={n})" for a, n in zip(s["arm"], s["n"], strict=True)])
    ax.set_xlabel(f"{split} macro accuracy (%), mean over seeds, 95% bootstrap CI")
    ax.set_title("Ablation: green = base, blue = variants, grey = baselines")
    return save(fig, path)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Arms no other arm beats on both fewer MACs and higher accuracy."""
    p = points.sort_values(["macs", "mean"], ascending=[True, False])
    return p[p["mean"] > p["mean"].cummax().shift(fill_value=-np.inf)]


def accuracy_vs_macs(summary: pd.DataFrame, seconds: float, path: Path, split: str = "test") -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=summary.assign(acc=100 * summary["mean"], mmacs=summary["macs"] / 1e6), x="mmacs", y="acc",
                    hue="kind", s=70, ax=ax)
    front = pareto_front(summary)
    ax.plot(front["macs"] / 1e6, 100 * front["mean"], "k--", lw=1, drawstyle="steps-post", label="Pareto front")
    for _, r in summary.iterrows():
        ax.annotate(r["arm"], (r["macs"] / 1e6, 100 * r["mean"]), fontsize=8, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"MMACs per {seconds:g}-s clip (log scale)")
    ax.set_ylabel(f"{split} macro accuracy (%), mean over seeds")
    ax.legend(fontsize=9)
    ax.set_title("Accuracy against compute")
    return save(fig, path)


def confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> Path:
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(100 * norm, annot=cm.astype(int), fmt="d", cmap="Blues", vmin=0, vmax=100, xticklabels=classes,
                yticklabels=classes, cbar_kws={"label": "% of true class"}, ax=ax)
    ax.set_xlabel("predicted scene")
    ax.set_ylabel("true scene")
    ax.set_title(title, fontsize=11)
    return save(fig, path)


def per_city(df: pd.DataFrame, path: Path, split: str = "test") -> Path:
    """df: arm, city, macro_acc, seen (one row per arm and city, mean over seeds)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    d = df.assign(acc=100 * df["macro_acc"], city_label=df["city"] + np.where(df["seen"], "", " (unseen)"))
    sns.barplot(data=d, x="city_label", y="acc", hue="arm", ax=ax)
    ax.set_xlabel("city (unseen = not in training)")
    ax.set_ylabel(f"{split} macro accuracy (%)")
    ax.set_title("Per-city accuracy, mean over seeds")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=8, title="arm")
    return save(fig, path)
