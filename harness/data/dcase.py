"""Loader for DCASE Task 1 (TAU Urban Acoustic Scenes) meta files, into the same `Corpus`.

Meta files are tab-separated: `filename` (relative to the dataset root) first, an optional
`scene_label`. City, recording location (the session: segments of one location must not cross
a split) and device come from the file name. TAU has no recording time: time features are zero.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import UserError
from .apsipa import read_records
from .corpus import COLUMNS, Corpus

TAU_CLASSES = (
    "airport", "bus", "metro", "metro_station", "park",
    "public_square", "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)


def load_dcase(meta: str | Path, dataset_root: str | Path, classes: tuple[str, ...] = TAU_CLASSES) -> Corpus:
    meta, root = Path(meta), Path(dataset_root)
    if not meta.is_file():
        raise UserError(f"{meta}: meta file not found")
    lines = read_records(meta, delimiter="\t")
    header = lines[0][1] if lines else None
    if not header or header[0] != "filename":
        raise UserError(f"{meta}: header must be tab-separated and start with 'filename', got {header}")
    label_col = header.index("scene_label") if "scene_label" in header else None
    index = {c: i for i, c in enumerate(classes)}
    records = []
    for row, fields in lines[1:]:
        where = f"{meta}: row {row}"
        name = fields[0]
        parts = Path(name).stem.split("-")
        if len(parts) != 5:
            raise UserError(f"{where}: file name {name!r} is not <scene>-<city>-<location>-<segment>-<device>.wav")
        _, city, location, _, device = parts
        label = -1
        if label_col is not None:
            if len(fields) <= label_col:
                raise UserError(f"{where}: expected a scene_label in column {label_col + 1}")
            if fields[label_col] not in index:
                raise UserError(f"{where}: scene_label {fields[label_col]!r} is not one of: {', '.join(classes)}")
            label = index[fields[label_col]]
        path = root / name
        if not path.is_file():
            raise UserError(f"{where}: audio file {path} not found")
        records.append((name, os.path.abspath(path), city, "", label, f"{city}-{location}", device, row))
    clips = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return Corpus(clips, tuple(classes), str(meta))
