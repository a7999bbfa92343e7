"""Loader for DCASE Task 1 (TAU Urban Acoustic Scenes) meta files, into the same `Corpus`.

Meta files are tab-separated with a header whose first column is `filename`
(relative to the dataset root) and an optional `scene_label`; file names follow
`<scene>-<city>-<location>-<segment>-<device>.wav`, from which city, recording
location (the session: segments of one location must not cross a split) and
device are parsed. TAU has no recording time: time features are zero.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from ..errors import UserError
from .corpus import Corpus

TAU_CLASSES = (
    "airport", "bus", "metro", "metro_station", "park",
    "public_square", "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)


def parse_tau_filename(name: str) -> tuple[str, str, str]:
    """(city, session, device) of a TAU file name such as `audio/airport-lisbon-1000-40000-a.wav`."""
    parts = Path(name).stem.split("-")
    if len(parts) != 5:
        raise UserError(f"file name {name!r} is not <scene>-<city>-<location>-<segment>-<device>.wav")
    _, city, location, _, device = parts
    return city, f"{city}-{location}", device


def load_dcase(meta: str | Path, dataset_root: str | Path, classes: tuple[str, ...] = TAU_CLASSES) -> Corpus:
    meta, root = Path(meta), Path(dataset_root)
    if not meta.is_file():
        raise UserError(f"{meta}: meta file not found")
    with open(meta, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if not header or header[0] != "filename":
            raise UserError(f"{meta}: header must be tab-separated and start with 'filename', got {header}")
        label_col = header.index("scene_label") if "scene_label" in header else None
        index = {c: i for i, c in enumerate(classes)}
        records = []
        for row, fields in enumerate(reader, start=2):
            if not fields:
                continue
            where = f"{meta}: row {row}"
            name = fields[0]
            try:
                city, session, device = parse_tau_filename(name)
            except ValueError as exc:
                raise UserError(f"{where}: {exc}") from None
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
            records.append((name, os.path.abspath(path), city, "", label, session, device, row))
    clips = pd.DataFrame.from_records(
        records, columns=["clip_id", "path", "location", "record_time", "label", "session", "device", "row"]
    )
    return Corpus(clips, tuple(classes), str(meta))
