"""Classification metrics. Macro (class-averaged) accuracy is the challenge metric.

Classes absent from the evaluated clips are left out of the macro average (and
reported as NaN per class) rather than counted as zero.
"""
from __future__ import annotations

import numpy as np

# metrics every epoch of a trial reports whatever the data (`Trial.epochs`): what a search space
# may rank trials by
RANKABLE_METRICS = ("val/best_macro_acc", "val/macro_acc", "val/acc", "val/log_loss", "train/loss")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(true, predicted) counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def macro_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    acc = per_class_accuracy(confusion_matrix(y_true, y_pred, num_classes))
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def log_loss(probs: np.ndarray, y_true: np.ndarray, eps: float = 1e-7) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0))))


def classification_report(
    probs: np.ndarray,
    y_true: np.ndarray,
    classes: tuple[str, ...],
    cities: np.ndarray | None = None,
    seen_cities: set[str] | None = None,
) -> dict:
    """Scalar metrics plus per-class, per-city and confusion-matrix details (JSON-ready)."""
    k = len(classes)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    per_class = per_class_accuracy(cm)
    out = {
        "macro_acc": float(np.nanmean(per_class)) if len(y_true) else float("nan"),
        "acc": float((y_pred == y_true).mean()) if len(y_true) else float("nan"),
        "log_loss": log_loss(probs, y_true) if len(y_true) else float("nan"),
        "n": int(len(y_true)),
        "per_class_acc": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, per_class, strict=True)},
        "confusion": cm.tolist(),
    }
    if cities is not None:
        per_city = {}
        for city in sorted(set(cities)):
            mask = cities == city
            per_city[str(city)] = {
                "macro_acc": macro_accuracy(y_true[mask], y_pred[mask], k),
                "acc": float((y_pred[mask] == y_true[mask]).mean()),
                "n": int(mask.sum()),
                "seen": None if seen_cities is None else city in seen_cities,
            }
        out["per_city"] = per_city
        if seen_cities is not None:
            seen = np.array([c in seen_cities for c in cities])
            for name, mask in (("seen", seen), ("unseen", ~seen)):
                if mask.any():
                    out[f"{name}_macro_acc"] = macro_accuracy(y_true[mask], y_pred[mask], k)
                    out[f"{name}_n"] = int(mask.sum())
    return out
