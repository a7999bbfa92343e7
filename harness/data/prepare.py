"""From a data config to what a trial needs: corpus, leak-free split, city vocabulary, cached features.

Every trial, ablation run and benchmark goes through `prepare_data`, so they all
see the same clips, the same split for a given seed and the same feature cache.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ascmamba.frontend import APSIPA_FRONT_END, DCASE_FRONT_END, FRONT_END_16K, FrontEnd
from ascmamba.metadata import CityVocabulary

from ..errors import UserError
from .apsipa import load_apsipa
from .audio_check import probe_audio
from .cache import CachedFeatures, FeatureCache, FeatureSpec, default_cache_root
from .corpus import Corpus
from .dcase import load_dcase
from .splits import Split, attach_test, session_split

FRONT_ENDS: dict[str, FrontEnd] = {"apsipa": APSIPA_FRONT_END, "dcase": DCASE_FRONT_END, "16k": FRONT_END_16K}
SOURCES = ("synthetic", "apsipa", "dcase")


@dataclass
class DataConfig:
    """The `data` config group. `None` means: derive from the source."""

    source: str = "synthetic"
    preset: str = "tiny"               # synthetic corpus size: tiny | small | cas
    synth_seed: int = 0                # seed of the synthetic corpus (not of the split)
    root: str | None = None            # synthetic corpus folder; default: <cache>/synthetic/<preset>-seed<n>-v<format>
    metadata: str | None = None        # APSIPA CSV or DCASE meta file
    audio_dir: str | None = None       # APSIPA audio folder or DCASE dataset root
    eval_metadata: str | None = None   # evaluation CSV (no labels), for prediction
    seconds: float | None = None       # clip length; default: the corpus's own (10 s APSIPA, 1 s DCASE)
    front_end: str = "auto"            # apsipa | dcase | 16k | auto (16k for synthetic, else the model's own)
    val_fraction: float = 0.2
    split_seed: int | None = None      # default: the run's seed
    holdout_cities: list[str] = field(default_factory=list)   # whole cities into validation
    test_metadata: str | None = None   # labelled test CSV (APSIPA) or evaluation fold (DCASE); see splits.py
    test_fraction: float = 0.2         # APSIPA without test_metadata: share of sessions held out as test
    test_cities: list[str] = field(default_factory=list)     # APSIPA: whole cities held out as test
    test_seed: int = 0                 # draws the held-out test sessions; the same for every run seed
    on_bad_audio: str = "error"        # error | skip (skipped clips are listed in the run's data summary)
    cache_dir: str | None = None       # feature cache; default $ASCBENCH_CACHE or ~/.cache/ascbench


@dataclass
class ClipArrays:
    """Everything the training loop indexes for a set of clips, aligned row by row."""

    clip_ids: tuple[str, ...]
    rows: np.ndarray     # rows into the cached feature array
    labels: np.ndarray   # class index, -1 unlabelled
    cities: np.ndarray   # city index, 0 = unknown
    times: np.ndarray    # (n, TIME_FEATURES)
    sessions: np.ndarray
    locations: np.ndarray

    def __len__(self) -> int:
        return len(self.clip_ids)

    def select(self, clip_ids: Sequence[str]) -> ClipArrays:
        """The clips named `clip_ids`, in that order (a pseudo-labelled subset of the pool)."""
        pos = pd.Index(self.clip_ids).get_indexer(list(clip_ids))
        if (pos < 0).any():
            raise KeyError(f"clip {list(clip_ids)[int(np.argmin(pos))]!r} is not in this set")
        return ClipArrays(tuple(clip_ids), **{f: getattr(self, f)[pos] for f in ARRAY_FIELDS})

    def concat(self, other: ClipArrays) -> ClipArrays:
        return ClipArrays(self.clip_ids + other.clip_ids,
                          **{f: np.concatenate([getattr(self, f), getattr(other, f)]) for f in ARRAY_FIELDS})


ARRAY_FIELDS = ("rows", "labels", "cities", "times", "sessions", "locations")


@dataclass
class PreparedData:
    config: DataConfig
    corpus: Corpus
    split: Split
    vocabulary: CityVocabulary
    features: CachedFeatures
    front_end: FrontEnd
    seconds: float
    truth: dict[str, int] | None   # true class of every clip (synthetic corpus only; never for training)
    skipped_audio: list[str] = field(default_factory=list)
    test_source: str = ""          # where the test clips came from, in words

    @property
    def classes(self) -> tuple[str, ...]:
        return self.corpus.classes

    def describe(self) -> dict:
        """Provenance recorded with every run: source, sizes, split and feature parameters."""
        return {
            "source": self.config.source,
            "corpus": self.corpus.source,
            "classes": list(self.classes),
            "cities": self.vocabulary.to_list(),
            "n_train": len(self.split.train),
            "n_val": len(self.split.val),
            "n_unlabelled": len(self.split.unlabelled),
            "split_seed": self.split.seed,
            "val_fraction": self.split.val_fraction,
            "holdout_cities": list(self.split.holdout_cities),
            "n_test": len(self.split.test),
            "test_source": self.test_source,
            "test_cities_unseen": sorted(set(self.corpus.clips.loc[self.corpus.clips["test"], "location"])
                                         - set(self.vocabulary.to_list())),
            "front_end": self.front_end.to_dict(),
            "seconds": self.seconds,
            "feature_cache": str(self.features.path),
            "skipped_audio": list(self.skipped_audio),
        }


def clip_arrays(corpus: Corpus, vocabulary: CityVocabulary, features: CachedFeatures, clip_ids: Sequence[str],
                times: np.ndarray) -> ClipArrays:
    """The clips `clip_ids` of `corpus`, row by row; `times` is `corpus.time_matrix()` (computed once)."""
    clips = corpus.clips
    pos = pd.Index(clips["clip_id"]).get_indexer(list(clip_ids))
    if (pos < 0).any():
        raise KeyError(f"clip {list(clip_ids)[int(np.argmin(pos))]!r} is not in {corpus.source}")
    sub = clips.iloc[pos]
    return ClipArrays(
        clip_ids=tuple(clip_ids),
        rows=features.rows(clip_ids),
        labels=sub["label"].to_numpy(np.int64),
        cities=vocabulary.encode(sub["location"].tolist()),
        times=times[pos],
        sessions=sub["session"].to_numpy(),
        locations=sub["location"].to_numpy(),
    )


def synthetic_root(cfg: DataConfig) -> Path:
    from .synth import FORMAT_VERSION as SYNTH_FORMAT_VERSION

    if cfg.root:
        return Path(cfg.root)
    base = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_root()
    # the format version is in the name: a corpus made by an older ascbench stays readable where it
    # is and never blocks the current one (the generator refuses to overwrite what it did not make)
    return base / "synthetic" / f"{cfg.preset}-seed{cfg.synth_seed}-v{SYNTH_FORMAT_VERSION}"


def resolve_front_end(cfg: DataConfig, declared: FrontEnd | None) -> FrontEnd:
    """The front end a run trains on, as timm resolves a model's data config: the one the model
    declares in the registry (`declared`) unless `data.front_end` names another. The synthetic
    corpus is 16 kHz audio, so there `auto` is `16k` for every model: the declared 44.1 and 32 kHz
    front ends would only resample it up and leave their mel bands above 8 kHz empty. Training,
    the feature cache, MAC counts and `ascbench models` all ask this one function."""
    name = cfg.front_end
    if name == "auto":
        if cfg.source != "synthetic" and declared is not None:
            return declared
        name = "16k" if cfg.source == "synthetic" else "apsipa"
    if name not in FRONT_ENDS:
        raise UserError(f"data.front_end {cfg.front_end!r} is not one of: auto, {', '.join(FRONT_ENDS)}")
    return FRONT_ENDS[name]


def load_corpus(cfg: DataConfig, progress: bool = True) -> tuple[Corpus, float, dict[str, int] | None]:
    """The labelled + unlabelled development corpus, its clip length and (synthetic only) the truth."""
    if cfg.source not in SOURCES:
        raise UserError(f"data.source {cfg.source!r} is not one of: {', '.join(SOURCES)}")
    if cfg.source == "synthetic":
        from .synth import load_truth, synthesize

        summary = synthesize(synthetic_root(cfg), preset=cfg.preset, seed=cfg.synth_seed, progress=progress)
        corpus = load_apsipa(summary.dev_csv, summary.audio_dir)
        truth_df = load_truth(summary.out_dir)
        index = {c: i for i, c in enumerate(corpus.classes)}
        truth = {f: index[s] for f, s in zip(truth_df["filename"], truth_df["scene_label"], strict=True)}
        return corpus, cfg.seconds or summary.clip_seconds, truth
    if not cfg.metadata or not cfg.audio_dir:
        raise UserError(f"data.source={cfg.source} needs data.metadata and data.audio_dir (--metadata, --audio-dir)")
    if cfg.source == "apsipa":
        return load_apsipa(cfg.metadata, cfg.audio_dir), cfg.seconds or 10.0, None
    return load_dcase(cfg.metadata, cfg.audio_dir), cfg.seconds or 1.0, None


def prepare_data(cfg: DataConfig, seed: int = 0, progress: bool = True,
                 model_front_end: FrontEnd | None = None) -> PreparedData:
    """Load, split and cache a dataset; `model_front_end` is the model's declared one (see `resolve_front_end`)."""
    corpus, seconds, truth = load_corpus(cfg, progress)
    corpus, test_source = attach_test(corpus, cfg, synthetic_test_corpus(cfg, corpus, truth))
    probe = probe_audio(corpus, cfg.on_bad_audio, seconds)
    corpus = probe.corpus
    split_seed = seed if cfg.split_seed is None else cfg.split_seed
    split = session_split(corpus, cfg.val_fraction, split_seed, tuple(cfg.holdout_cities))
    train_side = corpus.clips["clip_id"].isin(split.train + split.unlabelled)
    vocabulary = CityVocabulary(corpus.clips.loc[train_side, "location"])
    front_end = resolve_front_end(cfg, model_front_end)
    cache = FeatureCache(cfg.cache_dir)
    features = cache.get_or_build(
        corpus.clips["clip_id"].tolist(), corpus.clips["path"].tolist(), FeatureSpec(front_end, seconds),
        progress=progress,
    )
    return PreparedData(cfg, corpus, split, vocabulary, features, front_end, seconds, truth,
                        skipped_audio=probe.skipped, test_source=test_source)


def synthetic_test_corpus(cfg: DataConfig, dev: Corpus, truth: dict[str, int] | None) -> Corpus | None:
    """The synthetic corpus's evaluation clips labelled with their true classes (None for other sources)."""
    if cfg.source != "synthetic" or truth is None:
        return None
    root = synthetic_root(cfg)
    test = load_apsipa(root / "eval_metadata.csv", root / "audio", dev.classes)
    test.clips["label"] = [truth[c] for c in test.clips["clip_id"]]
    return test
