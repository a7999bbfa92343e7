"""The roles of clips: leak-free train/validation splits of whole recording sessions, stratified
by class, and the test set (README, "Three roles"): reported, never used for any choice, so its
figures are not a maximum over noisy estimates.

The official baseline split clips at random, so clips of one recording session
(same place, same minute) sat on both sides and inflated validation accuracy.
Here a session is never split, unlabelled clips of validation sessions never
enter the pseudo-label pool, and whole cities can be held out to measure
generalisation to cities never heard in training. Test clips are marked in the corpus's
`test` column; no clip of their sessions enters training, validation or the pool.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import UserError
from .apsipa import load_apsipa, read_records
from .corpus import Corpus

if TYPE_CHECKING:
    from .prepare import DataConfig

DCASE_TEST_FOLD = Path("evaluation_setup") / "fold1_evaluate.csv"


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


def mark_test(corpus: Corpus, test: np.ndarray, drop: np.ndarray | None = None) -> Corpus:
    """A copy of `corpus` with `test` clips marked and `drop` clips removed."""
    clips = corpus.clips.assign(test=np.asarray(test, dtype=bool))
    if drop is not None:
        clips = clips[~np.asarray(drop, dtype=bool)].reset_index(drop=True)
    return Corpus(clips, corpus.classes, corpus.source)


def append_test(corpus: Corpus, test: Corpus) -> Corpus:
    """Development clips plus a labelled test corpus (same classes; clip ids must not repeat)."""
    if test.classes != corpus.classes:
        raise UserError(f"{test.source}: classes differ from {corpus.source}")
    unlabelled = test.clips[test.clips["label"] < 0]
    if len(unlabelled):
        raise UserError(f"{test.source}: row {unlabelled['row'].iloc[0]}: a test clip needs a scene_label")
    shared = set(test.clips["clip_id"]) & set(corpus.clips["clip_id"])
    if shared:
        raise UserError(f"{test.source}: clip {sorted(shared)[0]!r} is also in {corpus.source}")
    clips = pd.concat([corpus.clips.assign(test=False), test.clips.assign(test=True)], ignore_index=True)
    return Corpus(clips, corpus.classes, corpus.source)


def held_out_sessions(corpus: Corpus, fraction: float, seed: int) -> np.ndarray:
    """Every clip of whole sessions drawn per class until about `fraction` of its labelled clips."""
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"data.test_fraction must be in [0, 1), got {fraction}")
    clips = corpus.clips
    labelled = clips[(clips["label"] >= 0) & ~clips["test"]]
    chosen = draw_sessions(labelled, fraction, np.random.default_rng([seed, 7]), closest=False)
    return clips["session"].isin(chosen).to_numpy()


def _dcase_fold(corpus: Corpus, fold: Path) -> np.ndarray:
    """Clips listed in the official evaluation fold (first column: the file name)."""
    names = {fields[0] for _, fields in read_records(fold, delimiter="\t")[1:]}
    if not names:
        raise UserError(f"{fold}: no clips listed")
    return corpus.clips["clip_id"].isin(names).to_numpy()


def attach_test(corpus: Corpus, cfg: DataConfig, eval_truth: Corpus | None = None) -> tuple[Corpus, str]:
    """The corpus with its test clips marked (or appended), and one sentence saying where they came from."""
    corpus = mark_test(corpus, np.zeros(len(corpus), dtype=bool))
    if eval_truth is not None:  # the synthetic corpus: evaluation clips with their true classes
        if cfg.test_metadata or cfg.test_cities:
            raise UserError("data.test_metadata and data.test_cities are for APSIPA and DCASE data; the synthetic "
                             "corpus's test set is its evaluation clips")
        return append_test(corpus, eval_truth), "the synthetic corpus's evaluation clips with their true classes"
    if cfg.test_cities and (cfg.test_metadata or cfg.source == "dcase"):
        raise UserError("data.test_cities holds cities out of APSIPA development data; it does not combine with "
                         "a test CSV or DCASE's evaluation fold")
    if cfg.test_metadata and cfg.source == "apsipa":
        return (append_test(corpus, load_apsipa(cfg.test_metadata, cfg.audio_dir, corpus.classes)),
                f"the labelled evaluation CSV {cfg.test_metadata}")
    if cfg.source == "dcase":
        fold = Path(cfg.test_metadata) if cfg.test_metadata else Path(cfg.audio_dir) / DCASE_TEST_FOLD
        if fold.is_file():
            return mark_test(corpus, _dcase_fold(corpus, fold)), f"the official evaluation fold {fold}"
    unknown = sorted(set(cfg.test_cities) - set(corpus.clips["location"]))
    if unknown:
        raise UserError(f"{corpus.source}: data.test_cities: {unknown[0]!r} does not occur in the data")
    in_city = corpus.clips["location"].isin(cfg.test_cities).to_numpy()
    labelled = (corpus.clips["label"] >= 0).to_numpy()
    held = held_out_sessions(corpus, cfg.test_fraction, cfg.test_seed) | in_city
    # unlabelled clips of a held-out session or city are dropped: in the pseudo-label pool they
    # would let training see the test sessions
    corpus = mark_test(corpus, held & labelled, drop=held & ~labelled)
    what = (f"whole sessions held out of the development data ({cfg.test_fraction:g} of each class's labelled "
            f"clips, test seed {cfg.test_seed})")
    if cfg.test_cities:
        what += f" and every labelled clip of {', '.join(cfg.test_cities)}"
    return corpus, what
