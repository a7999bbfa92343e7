"""Loader for the APSIPA ASC 2025 / CAS 2023 format (also written by the synthetic corpus).

Strict by design: the official baseline hid a broken time format behind a bare
`except`. Every problem is a one-line UserError naming the file, row (the file's line
number) and what was expected.
"""
from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from ascmamba.metadata import parse_record_time

from ..errors import UserError, fs_errors, warn
from .corpus import APSIPA_CLASSES, Corpus

HEADER = ["filename", "location", "record_time", "scene_label"]


def read_records(csv_path: Path, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line, the header first. Line numbers are the
    file's (blank lines and quoted line breaks counted), so a reported row is where an editor
    shows it. Also reads DCASE's tab-separated meta files."""
    with fs_errors(csv_path, "read the metadata file"):
        raw = csv_path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        kind = "comma" if delimiter == "," else "tab"
        raise UserError(f"{csv_path}: not a UTF-8 {kind}-separated file (byte {exc.start} is not UTF-8)") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records, line = [], 1
    try:
        for fields in reader:
            if fields:
                records.append((line, fields))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise UserError(f"{csv_path}: row {reader.line_num}: not a valid CSV line ({exc})") from None
    return records


def read_metadata(csv_path: str | Path, classes: tuple[str, ...] = APSIPA_CLASSES) -> pd.DataFrame:
    """The rows of an official metadata CSV, validated, with a `row` column: the file's line number."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"{csv_path}: metadata file not found" + (" (it is a folder)" if csv_path.is_dir() else ""))
    records = read_records(csv_path)
    if not records:
        raise UserError(f"{csv_path}: empty file; expected the header {','.join(HEADER)} and rows")
    (_, header), body = records[0], records[1:]
    if header != HEADER:
        raise UserError(f"{csv_path}: header is {','.join(header)!s}; expected {','.join(HEADER)}")
    if not body:
        raise UserError(f"{csv_path}: no rows after the header")
    for row, fields in body:
        if len(fields) != len(HEADER):
            raise UserError(f"{csv_path}: row {row}: {len(fields)} fields; expected {len(HEADER)} "
                            f"({','.join(HEADER)}; an unlabelled clip has an empty scene_label after the last comma)")
    df = pd.DataFrame([fields for _, fields in body], columns=HEADER, dtype=str)
    df["row"] = [row for row, _ in body]
    future, now = [], datetime.now()
    for rec in df.itertuples(index=False):
        where = f"{csv_path}: row {rec.row}"
        if not rec.filename.strip():
            raise UserError(f"{where}: empty filename")
        if not rec.location.strip():
            raise UserError(f"{where}: empty location")
        try:
            when = parse_record_time(rec.record_time)
        except ValueError as exc:
            raise UserError(f"{where}: {exc}") from None
        if when > now:
            future.append(f"row {rec.row}: {rec.record_time.strip()}")
        if rec.scene_label and rec.scene_label not in classes:
            raise UserError(f"{where}: scene_label {rec.scene_label!r} is not one of: {', '.join(classes)}")
    if future:
        warn(f"{csv_path}: {len(future)} rows have a record_time in the future (first: {future[0]}); "
             "their time features will be what that date gives")
    dup = df["filename"].duplicated()
    if dup.any():
        first = df[dup].iloc[0]
        raise UserError(f"{csv_path}: row {first.row}: duplicate filename {first.filename!r}")
    return df


def _wav_names(audio_dir: Path) -> list[str]:
    """Names of the `.wav` entries of `audio_dir`. An entry that cannot be inspected (a symlink loop,
    a dangling link) is kept: only a row that uses it fails, in the audio probe, naming it."""
    with fs_errors(audio_dir, "list the audio folder"):
        entries = list(os.scandir(audio_dir))
    names = []
    for e in entries:
        if not e.name.lower().endswith(".wav"):
            continue
        try:
            if not e.is_file():
                continue
        except OSError:
            pass
        names.append(e.name)
    return names


def resolve_audio(filenames: list[str], rows: list[int], audio_dir: Path, csv_path: Path) -> list[str]:
    """Audio path of each row: `DIR/<filename>.wav`, else the single `DIR/*<filename>*.wav`."""
    if not audio_dir.is_dir():
        raise UserError(f"{audio_dir}: audio directory not found")
    wavs = _wav_names(audio_dir)
    exact = set(wavs)
    paths = []
    for name, row in zip(filenames, rows, strict=True):
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
