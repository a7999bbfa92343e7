"""What a trial needs of its data, resolved once per experiment by the driver.

`prepare_data` parses the corpus CSV, probes every wav header, splits, stats every file for the
feature cache key and rewrites the digest memo: on a cluster file system, done in every trial, that
is trials x files of I/O. A driver calls `prepare_handles` once for all its configs and hands each
trial its `DataHandle` (through `tune.with_parameters`): the split as per-role clip arrays, the
cache entry's path, classes, cities and normalisation statistics. A trial then only memory-maps
the cache entry; it never parses a CSV or opens a wav.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ascmamba import get_spec
from ascmamba.frontend import FrontEnd
from ascmamba.metadata import CityVocabulary

from ..errors import UserError
from .cache import open_features
from .prepare import ClipArrays, PreparedData, clip_arrays, prepare_data, resolve_front_end
from .splits import Split

if TYPE_CHECKING:
    from ..train.config import RunConfig

ROLES = ("train", "val", "unlabelled", "test")


@dataclass(frozen=True)
class DataHandle:
    """Small and picklable: clip arrays and a few statistics, never the features themselves."""

    features_path: str                    # the feature cache entry, memory-mapped by each trial
    features_shape: tuple[int, ...]       # (clips, frames, mels)
    sets: dict[str, ClipArrays]           # per role (ROLES), aligned with the split's clip ids
    split: Split
    classes: tuple[str, ...]
    vocabulary: CityVocabulary            # cities of the training side
    norm_mean: np.ndarray                 # per-mel mean of the training clips, float32
    norm_std: np.ndarray
    front_end: FrontEnd
    seconds: float
    pool_truth: np.ndarray | None         # true class of each unlabelled clip (synthetic corpus only):
                                          # to score pseudo-labels, never to train
    description: dict                     # `PreparedData.describe()`, recorded in final.json

    def features(self) -> np.ndarray:
        """The cache entry, memory-mapped read-only."""
        features = open_features(self.features_path)
        if tuple(features.shape) != self.features_shape:
            raise UserError(f"{self.features_path}: feature cache entry has shape {tuple(features.shape)}, "
                            f"expected {self.features_shape}; prepare the data again")
        return features

    def describe(self) -> dict:
        return json.loads(json.dumps(self.description))   # a copy nobody can alter the handle through


def normalisation(features: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel mean and std of the clips at `rows` (read in sorted chunks from the memory map)."""
    rows = np.sort(rows)
    total = np.zeros(features.shape[-1])
    total_sq = np.zeros(features.shape[-1])
    count = 0
    for start in range(0, len(rows), 256):
        x = np.asarray(features[rows[start:start + 256]], dtype=np.float64)
        total += x.sum(axis=(0, 1))
        total_sq += (x**2).sum(axis=(0, 1))
        count += x.shape[0] * x.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-8))
    return mean.astype(np.float32), std.astype(np.float32)


def make_handle(data: PreparedData) -> DataHandle:
    """The handle of prepared data: refuses a split a trial could not train or validate on."""
    times = data.corpus.time_matrix()
    sets = {role: clip_arrays(data.corpus, data.vocabulary, data.features, getattr(data.split, role), times)
            for role in ROLES}
    if len(sets["train"]) == 0 or len(sets["val"]) == 0:
        raise UserError(f"{data.corpus.source}: the split left no training or no validation clips")
    features = data.features.features
    mean, std = normalisation(features, sets["train"].rows)
    truth = (None if data.truth is None
             else np.array([data.truth.get(c, -1) for c in sets["unlabelled"].clip_ids], dtype=np.int64))
    return DataHandle(str(data.features.path), tuple(features.shape), sets, data.split, data.classes,
                      data.vocabulary, mean, std, data.front_end, float(data.seconds), truth, data.describe())


def split_seed(cfg: RunConfig) -> int:
    return cfg.seed if cfg.data.split_seed is None else cfg.data.split_seed


def handle_key(cfg: RunConfig) -> str:
    """Configs with the same key share a handle: the same data config, split seed and front end
    (the one `cfg` trains with: the data config's, else the model's own)."""
    data = {**asdict(cfg.data), "split_seed": split_seed(cfg)}    # None and the run's seed split alike
    front_end = resolve_front_end(cfg.data, get_spec(cfg.model.name).front_end)
    return json.dumps([data, front_end.to_dict()], sort_keys=True)


def prepare_run_data(cfg: RunConfig, progress: bool = False) -> PreparedData:
    """Load, split and cache the data of run config `cfg` (the work a handle saves its trials)."""
    return prepare_data(cfg.data, seed=split_seed(cfg), progress=progress,
                        model_front_end=get_spec(cfg.model.name).front_end)


def prepare_handle(cfg: RunConfig, progress: bool = False) -> DataHandle:
    return make_handle(prepare_run_data(cfg, progress))


def prepare_handles(cfgs: Iterable[RunConfig], progress: bool = False) -> dict[str, DataHandle]:
    """One handle per distinct `handle_key` of `cfgs` (run configs), for a driver to hand to its trials."""
    handles: dict[str, DataHandle] = {}
    for cfg in cfgs:
        key = handle_key(cfg)
        if key not in handles:
            handles[key] = prepare_handle(cfg, progress)
    return handles
