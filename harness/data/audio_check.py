"""Probe every clip's audio before any work: a corrupt, empty, missing or non-finite (NaN, inf)
wav is a one-line error naming the metadata row, or (with `on_bad_audio="skip"`) a listed
omission; a clip much shorter than the clip length is a warning."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import soundfile as sf

from ..errors import UserError, warn
from .corpus import Corpus

ON_BAD_AUDIO = ("error", "skip")


@dataclass
class AudioProbe:
    corpus: Corpus                      # the clips whose audio is usable
    info: pd.DataFrame                  # clip_id, seconds, sample_rate, channels
    skipped: list[str] = field(default_factory=list)  # "row N: path: why" per skipped clip
    short: list[str] = field(default_factory=list)    # "row N: path (S s)" per clip shorter than the clip length


FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")   # the only wav sample formats that can hold NaN or inf
SHORT_FRACTION = 0.9                    # a clip shorter than this share of the clip length is reported


def nonfinite_samples(path: str) -> bool:
    """Whether a float wav holds a NaN or inf sample (read block by block: bounded memory)."""
    for block in sf.blocks(path, blocksize=1 << 16, dtype="float32", always_2d=True):
        if not np.isfinite(block).all():
            return True
    return False


def probe_audio(corpus: Corpus, on_bad_audio: str = "error", seconds: float | None = None) -> AudioProbe:
    """Header of every clip, and the samples of float wavs (NaN and inf would poison the shared
    feature cache); clips shorter than 90% of `seconds` are listed in `short` (they are zero-padded)."""
    if on_bad_audio not in ON_BAD_AUDIO:
        raise UserError(f"on_bad_audio {on_bad_audio!r} is not one of: {', '.join(ON_BAD_AUDIO)}")
    rows, bad, short = [], [], []
    for rec in corpus.clips.itertuples(index=False):
        try:
            info = sf.info(rec.path)
            problem = None if info.frames > 0 else "has no samples"
            if problem is None and info.subtype in FLOAT_SUBTYPES and nonfinite_samples(rec.path):
                problem = "has non-finite samples (NaN or inf); expected finite audio"
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            problem = f"cannot be read ({str(exc).splitlines()[0]})"
        if problem is None:
            duration = info.frames / info.samplerate
            rows.append((rec.clip_id, duration, info.samplerate, info.channels))
            if seconds and duration < SHORT_FRACTION * seconds:
                short.append(f"row {rec.row}: {rec.path} ({duration:.2f} s)")
            continue
        message = f"{corpus.source}: row {rec.row}: audio {rec.path} {problem}"
        if on_bad_audio == "error":
            raise UserError(message)
        bad.append((rec.clip_id, message))
    keep = ~corpus.clips["clip_id"].isin({c for c, _ in bad})
    usable = Corpus(corpus.clips[keep].reset_index(drop=True), corpus.classes, corpus.source)
    info = pd.DataFrame(rows, columns=["clip_id", "seconds", "sample_rate", "channels"])
    if short:
        more = f" (first: {', '.join(short[:3])}{', ...' if len(short) > 3 else ''})"
        warn(f"{corpus.source}: {len(short)} clips are shorter than {SHORT_FRACTION:.0%} of the "
             f"{seconds:g}-s clip length and are zero-padded (truncated files?){more}")
    return AudioProbe(usable, info, [m for _, m in bad], short)


def summarise(probe: AudioProbe) -> str:
    """Clips per class and city, labelled/unlabelled, sessions, durations and sample rates."""
    clips = probe.corpus.clips
    classes = probe.corpus.classes
    labelled = clips[clips["label"] >= 0]
    lines = [f"{probe.corpus.source}: {len(clips)} usable clips ({len(labelled)} labelled, "
             f"{len(clips) - len(labelled)} unlabelled) in {clips['session'].nunique()} sessions, "
             f"{clips['location'].nunique()} cities"]
    if probe.skipped:
        lines.append(f"skipped {len(probe.skipped)} clips with bad audio:")
        lines += [f"  {m}" for m in probe.skipped]
    per_class = labelled["label"].map(lambda i: classes[i]).value_counts().reindex(classes, fill_value=0)
    lines.append("labelled clips per class: " + ", ".join(f"{c} {n}" for c, n in per_class.items()))
    per_city = clips.groupby("location")["label"].agg(total="size", labelled=lambda s: int((s >= 0).sum()))
    lines.append("clips per city (labelled): "
                 + ", ".join(f"{c} {r.total} ({r.labelled})" for c, r in per_city.iterrows()))
    if len(probe.info):
        info = probe.info.assign(seconds=probe.info["seconds"].round(1))
        for col, title, fmt in (("seconds", "durations (s)", "g"), ("sample_rate", "sample rates (Hz)", ""),
                                ("channels", "channels", "")):
            counts = info[col].value_counts().sort_index()
            lines.append(f"{title}: " + ", ".join(f"{v:{fmt}} x{n}" for v, n in counts.items()))
    return "\n".join(lines)
