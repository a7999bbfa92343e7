"""Leak-free train/validation splits: whole recording sessions, stratified by class.

The official baseline split clips at random, so clips of one recording session
(same place, same minute) sat on both sides and inflated validation accuracy.
Here a session is never split, unlabelled clips of validation sessions never
enter the pseudo-label pool, and whole cities can be held out to measure
generalisation to cities never heard in training.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..errors import UserError
from .corpus import Corpus


@dataclass(frozen=True)
class Split:
    """Clip ids on each side; `unlabelled` is the pool pseudo-labelling may draw from."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    unlabelled: tuple[str, ...]
    seed: int
    val_fraction: float
    holdout_cities: tuple[str, ...] = field(default_factory=tuple)
    test: tuple[str, ...] = field(default_factory=tuple)   # reported only, never chosen on

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _check_sessions(corpus: Corpus) -> None:
    labelled = corpus.clips[corpus.labelled]
    mixed = labelled.groupby("session")["label"].nunique()
    mixed = mixed[mixed > 1]
    if len(mixed):
        session = mixed.index[0]
        row = labelled.loc[labelled["session"] == session, "row"].iloc[0]
        raise UserError(f"{corpus.source}: row {row}: session {session!r} mixes several scene labels")


def draw_sessions(labelled: pd.DataFrame, fraction: float, rng: np.random.Generator, closest: bool) -> set[str]:
    """Whole sessions drawn per class, in random order, until about `fraction` of its clips, never
    a whole class. With `closest` a session is taken only if that moves the class total closer to
    the target (the first always is); without, every one is taken until the target is reached."""
    chosen: set[str] = set()
    for _, group in labelled.groupby("label", sort=True):
        sizes = group.groupby("session", sort=True).size()
        target, taken = fraction * len(group), 0
        for i in rng.permutation(len(sizes)):
            if taken >= target:
                break
            size = int(sizes.iloc[i])
            if taken + size >= len(group):  # never move a whole class out of training
                continue
            if not closest or taken == 0 or abs(taken + size - target) <= abs(taken - target):
                chosen.add(sizes.index[i])
                taken += size
    return chosen


def session_split(
    corpus: Corpus, val_fraction: float = 0.2, seed: int = 0, holdout_cities: tuple[str, ...] = ()
) -> Split:
    """Split labelled clips by session, per class aiming at `val_fraction` of its clips in validation.

    Clips of `holdout_cities` all go to validation (labelled) or are dropped (unlabelled).
    Test clips (the corpus's `test` column) and every other clip of their sessions stay out of
    training, validation and the pseudo-label pool.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
    _check_sessions(corpus)
    clips = corpus.clips
    unknown = sorted(set(holdout_cities) - set(clips["location"]))
    if unknown:
        raise UserError(f"{corpus.source}: holdout city {unknown[0]!r} does not occur in the data")
    test = clips["test"].to_numpy(bool)
    off_limits = clips["session"].isin(set(clips.loc[test, "session"])).to_numpy()
    held = clips["location"].isin(holdout_cities).to_numpy() & ~off_limits
    labelled = corpus.labelled & ~off_limits
    val_sessions = set(clips.loc[held, "session"])
    val_sessions |= draw_sessions(clips[labelled & ~held], val_fraction, np.random.default_rng(seed), closest=True)
    in_val = clips["session"].isin(val_sessions).to_numpy()
    ids = clips["clip_id"].to_numpy()
    return Split(
        train=tuple(ids[labelled & ~in_val]),
        val=tuple(ids[labelled & in_val]),
        unlabelled=tuple(ids[~corpus.labelled & ~in_val & ~held & ~off_limits]),
        seed=seed,
        val_fraction=val_fraction,
        holdout_cities=tuple(holdout_cities),
        test=tuple(ids[test]),
    )
