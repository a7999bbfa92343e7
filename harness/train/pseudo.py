"""Pseudo-label stages: selection for the two-step scheme (and the official one-step baseline), the
labelling step between stages and the training set it leaves.

Only clips of the unlabelled pool are ever labelled here; the pool excludes every
session that has a clip in validation (see `harness.data.splits`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..data.prepare import ClipArrays
from .config import PseudoConfig


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
        votes = Counter(zip(sessions[keep], pred[keep].tolist(), strict=True))   # (session, class) -> confident clips
        confident = Counter(sessions[keep])
        share = np.array([votes[s, c] / confident[s] if k else 0.0
                          for s, c, k in zip(sessions, pred.tolist(), keep, strict=True)])
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


def label_pool(pool: ClipArrays, predict: Callable[[ClipArrays], np.ndarray], truth: np.ndarray | None,
               p: PseudoConfig, step: int, num_classes: int) -> tuple[list[str], list[int], dict]:
    """Pseudo-label step `step` (1 or 2) on the pool: (kept clip ids, their labels, the step's summary).

    `one_step` keeps every clip (the official baseline); `two_step` uses tau1, then tau2, and the
    session filter. `truth` (the pool's true classes, synthetic corpus only) only scores the step.
    """
    if len(pool) == 0:
        return [], [], {"step": step, "pool": 0, "kept": 0}
    if p.mode == "one_step":
        tau, tau_session = 0.0, 0.0
    else:
        tau, tau_session = (p.tau1 if step == 1 else p.tau2), p.tau_session
    keep, pred = select(predict(pool), pool.sessions, tau, tau_session)
    summary = {"step": step, "tau": tau, "tau_session": tau_session, **summarise(keep, pred, truth, num_classes)}
    ids = [c for c, k in zip(pool.clip_ids, keep, strict=True) if k]
    return ids, [int(c) for c, k in zip(pred, keep, strict=True) if k], summary


def with_pseudo_labels(train: ClipArrays, pool: ClipArrays, ids: list[str], labels: list[int],
                       weight: float) -> tuple[ClipArrays, np.ndarray]:
    """The labelled training clips followed by the pseudo-labelled pool clips `ids`, and per-clip
    loss weights (1 for labelled clips, `weight` for pseudo-labelled ones)."""
    if not ids:
        return train, np.ones(len(train), dtype=np.float32)
    extra = replace(pool.select(ids), labels=np.asarray(labels, dtype=np.int64))
    weights = np.concatenate([np.ones(len(train), dtype=np.float32), np.full(len(extra), weight, dtype=np.float32)])
    return train.concat(extra), weights
