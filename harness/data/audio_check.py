"""Probe every clip's audio header before any work: a corrupt, empty or missing wav is a
one-line error naming the metadata row, or (with `on_bad_audio="skip"`) a listed omission."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import soundfile as sf

from .corpus import Corpus
from ..errors import UserError

ON_BAD_AUDIO = ("error", "skip")


@dataclass
class AudioProbe:
    corpus: Corpus                      # the clips whose audio is usable
    info: pd.DataFrame                  # clip_id, seconds, sample_rate, channels
    skipped: list[str] = field(default_factory=list)  # "row N: path: why" per skipped clip


def probe_audio(corpus: Corpus, on_bad_audio: str = "error") -> AudioProbe:
    if on_bad_audio not in ON_BAD_AUDIO:
        raise UserError(f"on_bad_audio {on_bad_audio!r} is not one of: {', '.join(ON_BAD_AUDIO)}")
    rows, bad = [], []
    for rec in corpus.clips.itertuples(index=False):
        try:
            info = sf.info(rec.path)
            problem = None if info.frames > 0 else "has no samples"
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            problem = f"cannot be read ({str(exc).splitlines()[0]})"
        if problem is None:
            rows.append((rec.clip_id, info.frames / info.samplerate, info.samplerate, info.channels))
            continue
        message = f"{corpus.source}: row {rec.row}: audio {rec.path} {problem}"
        if on_bad_audio == "error":
            raise UserError(message)
        bad.append((rec.clip_id, message))
    keep = ~corpus.clips["clip_id"].isin({c for c, _ in bad})
    usable = Corpus(corpus.clips[keep].reset_index(drop=True), corpus.classes, corpus.source)
    info = pd.DataFrame(rows, columns=["clip_id", "seconds", "sample_rate", "channels"])
    return AudioProbe(usable, info, [m for _, m in bad])


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
    lines.append("clips per city (labelled): " + ", ".join(f"{c} {r.total} ({r.labelled})" for c, r in per_city.iterrows()))
    if len(probe.info):
        secs = probe.info["seconds"].round(1).value_counts().sort_index()
        lines.append("durations (s): " + ", ".join(f"{d:g} x{n}" for d, n in secs.items()))
        rates = probe.info["sample_rate"].value_counts().sort_index()
        lines.append("sample rates (Hz): " + ", ".join(f"{r} x{n}" for r, n in rates.items()))
        chans = probe.info["channels"].value_counts().sort_index()
        lines.append("channels: " + ", ".join(f"{c} x{n}" for c, n in chans.items()))
    return "\n".join(lines)
