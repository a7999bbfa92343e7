"""Loader for the APSIPA ASC 2025 / CAS 2023 format (also written by the synthetic corpus).

Strict by design: the official baseline hid a broken time format behind a bare
`except`. Every problem is a one-line ValueError naming the file, row and what
was expected.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ascmamba.metadata import parse_record_time

from .corpus import APSIPA_CLASSES, Corpus
from ..errors import UserError

HEADER = ["filename", "location", "record_time", "scene_label"]


def read_metadata(csv_path: str | Path, classes: tuple[str, ...] = APSIPA_CLASSES) -> pd.DataFrame:
    """The rows of an official metadata CSV, validated, with a 1-based `row` (file line) column."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"{csv_path}: metadata file not found")
    try:
        df = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{csv_path}: empty file; expected the header {','.join(HEADER)} and rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UserError(f"{csv_path}: not a UTF-8 comma-separated file ({str(exc).splitlines()[0]})") from None
    if list(df.columns) != HEADER:
        raise UserError(f"{csv_path}: header is {','.join(df.columns)!s}; expected {','.join(HEADER)}")
    if df.empty:
        raise UserError(f"{csv_path}: no rows after the header")
    df["row"] = range(2, len(df) + 2)
    class_set = set(classes)
    for rec in df.itertuples(index=False):
        where = f"{csv_path}: row {rec.row}"
        if not rec.filename.strip():
            raise UserError(f"{where}: empty filename")
        if not rec.location.strip():
            raise UserError(f"{where}: empty location")
        try:
            parse_record_time(rec.record_time)
        except ValueError as exc:
            raise UserError(f"{where}: {exc}") from None
        if rec.scene_label and rec.scene_label not in class_set:
            raise UserError(f"{where}: scene_label {rec.scene_label!r} is not one of: {', '.join(classes)}")
    dup = df["filename"].duplicated()
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(f"{csv_path}: row {first.row}: duplicate filename {first.filename!r}")
    return df


def resolve_audio(filenames: list[str], rows: list[int], audio_dir: Path, csv_path: Path) -> list[str]:
    """Audio path of each row: `DIR/<filename>.wav`, else the single `DIR/*<filename>*.wav`."""
    if not audio_dir.is_dir():
        raise UserError(f"{audio_dir}: audio directory not found")
    wavs = [e.name for e in os.scandir(audio_dir) if e.name.lower().endswith(".wav") and e.is_file()]
    exact = set(wavs)
    paths = []
    for name, row in zip(filenames, rows):
        if f"{name}.wav" in exact:
            paths.append(str(audio_dir / f"{name}.wav"))
            continue
        matches = [w for w in wavs if name in w[:-4]]
        if len(matches) != 1:
            listed = f" ({', '.join(matches[:3])}{', ...' if len(matches) > 3 else ''})" if matches else ""
            raise UserError(
                f"{csv_path}: row {row}: {len(matches) or 'no'} audio files match {name}.wav or *{name}*.wav "
                f"in {audio_dir}{listed}; expected exactly one"
            )
        paths.append(str(audio_dir / matches[0]))
    return paths


def load_apsipa(
    metadata: str | Path, audio_dir: str | Path | None, classes: tuple[str, ...] = APSIPA_CLASSES
) -> Corpus:
    """A `Corpus` from an official-format metadata CSV and its audio folder.

    Unlabelled rows (empty scene_label) form the unlabelled pool; an evaluation CSV
    (all labels empty) gives a corpus for prediction. With `audio_dir=None` the
    corpus has empty paths: enough for splits and planning, not for features.
    """
    metadata = Path(metadata)
    df = read_metadata(metadata, classes)
    if audio_dir is None:
        paths = [""] * len(df)
    else:
        paths = resolve_audio(df["filename"].tolist(), df["row"].tolist(), Path(audio_dir), metadata)
    index = {c: i for i, c in enumerate(classes)}
    clips = pd.DataFrame({
        "clip_id": df["filename"],
        "path": [os.path.abspath(p) if p else "" for p in paths],
        "location": df["location"].str.strip(),
        "record_time": df["record_time"].str.strip(),
        "label": [index[s] if s else -1 for s in df["scene_label"]],
        "session": df["location"].str.strip() + "|" + df["record_time"].str.strip(),
        "device": "",
        "row": df["row"],
    })
    return Corpus(clips, tuple(classes), str(metadata))
