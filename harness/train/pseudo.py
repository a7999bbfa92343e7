"""Pseudo-label selection for the two-step scheme (and the official one-step baseline).

Only clips of the unlabelled pool are ever labelled here; the pool excludes every
session that has a clip in validation (see `harness.data.splits`).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np


def select(
    probs: np.ndarray, sessions: np.ndarray, tau: float, tau_session: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, predicted class) for pool clips with probabilities `probs` (n, k).

    A clip is kept when its confidence reaches `tau`; with `tau_session > 0` also when the
    share of its session's confident clips voting for the same class reaches `tau_session`.
    `tau=0` and `tau_session=0` keep every clip (the official baseline's one-step scheme).
    """
    pred = probs.argmax(axis=1)
    keep = probs.max(axis=1) >= tau
    if tau_session > 0 and keep.any():
        votes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for s, c in zip(sessions[keep], pred[keep]):
            votes[s][int(c)] += 1
        share = np.array([
            votes[s][int(c)] / max(1, sum(votes[s].values())) if k else 0.0
            for s, c, k in zip(sessions, pred, keep)
        ])
        keep &= share >= tau_session
    return keep, pred


def summarise(keep: np.ndarray, pred: np.ndarray, truth: np.ndarray | None, num_classes: int) -> dict:
    """How many clips a step kept and, where true classes are known, how many were right."""
    out = {
        "pool": int(len(keep)),
        "kept": int(keep.sum()),
        "kept_share": float(keep.mean()) if len(keep) else 0.0,
        "per_class": np.bincount(pred[keep], minlength=num_classes).tolist(),
    }
    if truth is not None and len(keep):
        known = truth >= 0
        right = (pred == truth) & known
        out["accuracy_kept"] = float(right[keep].sum() / max(1, (keep & known).sum())) if keep.any() else None
        out["accuracy_pool"] = float(right.sum() / max(1, known.sum()))
    return out
