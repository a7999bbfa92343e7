"""The one table every loader produces, so splits, cache and training never special-case a source.

Columns of `Corpus.clips` (one row per clip, in file order):
  clip_id      the metadata `filename` (APSIPA) or the audio path (DCASE); unique
  path         absolute path of the audio file
  location     city name
  record_time  `YYYY-MM-DD HH:MM:SS`, or "" where the source has none (DCASE)
  label        class index into `Corpus.classes`, -1 for an unlabelled clip
  session      recording-session key: clips sharing it must stay on one side of a split
  device       recording device id ("" where unknown)
  row          1-based line number in the source file, for error messages
  test         True for a held-out test clip (see harness/data/splits.py); False if absent
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ascmamba.metadata import TIME_FEATURES, time_features

from ..errors import UserError

APSIPA_CLASSES = (
    "Bus", "Airport", "Metro", "Restaurant", "Shopping mall",
    "Public square", "Urban park", "Traffic street", "Construction site", "Bar",
)
COLUMNS = ("clip_id", "path", "location", "record_time", "label", "session", "device", "row")


@dataclass
class Corpus:
    """Clips of one metadata file plus the class names their labels index."""

    clips: pd.DataFrame
    classes: tuple[str, ...]
    source: str  # the metadata file it came from, for messages and provenance

    def __post_init__(self) -> None:
        if "test" not in self.clips.columns:
            self.clips = self.clips.assign(test=False)
        missing = [c for c in COLUMNS if c not in self.clips.columns]
        if missing:
            raise UserError(f"{self.source}: corpus table lacks columns {missing}")
        dup = self.clips["clip_id"][self.clips["clip_id"].duplicated()]
        if len(dup):
            row = self.clips.loc[dup.index[0], "row"]
            raise UserError(f"{self.source}: row {row}: duplicate clip {dup.iloc[0]!r}")

    @property
    def labelled(self) -> np.ndarray:
        return self.clips["label"].to_numpy() >= 0

    def __len__(self) -> int:
        return len(self.clips)

    def time_matrix(self) -> np.ndarray:
        """(n, TIME_FEATURES) cyclic time features; zeros where the source has no time."""
        out = np.zeros((len(self.clips), TIME_FEATURES), dtype=np.float32)
        for i, value in enumerate(self.clips["record_time"]):
            if value:
                out[i] = time_features(value)
        return out
