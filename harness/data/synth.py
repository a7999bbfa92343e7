"""Built-in synthetic acoustic-scene corpus, written in the official APSIPA ASC 2025 format.

Why: the harness must run end to end (loader, semi-supervised training, metadata fusion,
session-aware splits, unseen-city evaluation) without the CAS audio, and measure what real data
cannot tell us: every clip's true class is known (`truth.csv`, never read by training), and the
effects planted in the metadata are known exactly.

`synthesize(out_dir, preset, seed)` writes, like the official release:

    DIR/audio/<filename>.wav          mono PCM_16, one per metadata row
    DIR/dev_metadata.csv              UTF-8 with BOM, LF, `filename,location,record_time,scene_label`
    DIR/eval_metadata.csv             (empty scene_label = unlabelled; eval is all unlabelled)
    DIR/truth.csv                     filename, split (labelled/unlabelled/eval), scene_label, session
    DIR/synth_info.json               preset, seed, counts, cities, priors, time-of-day, effect sizes

What is planted (sounds: `harness.data.synth_sounds`):
- Audio: per class a coloured-noise background, Poisson events shared across classes at different
  rates, and long cues that only show over seconds (announcements with a period, pass-bys, engine
  ramps, rhythmic hammering, a musical beat). Sessions draw their own variant (so clips of one
  session resemble each other: a clip-level random split leaks), cities their own channel EQ
  (a domain shift; eval has cities never seen in dev).
- Metadata: each city has its own class prior, each class its own time-of-day distribution.
  Deliberately ignored (null effects for ablations): minute and second of the record time,
  weekday, date and month, and the filename's segment/`_1`/`_2` suffix.

Effect sizes planted in `tiny` (seed 0, formats 2 and 3; computed exactly by the generator from the
planted city shares, city priors and time-of-day tables, and written to synth_info.json ->
effect_sizes; dev classes are balanced, so macro and plain accuracy coincide):

    | metadata-only Bayes-optimal classifier (dev) | macro accuracy   |
    |----------------------------------------------|------------------|
    | chance                                       | 10.0 %           |
    | hour of day only                             | 19.7 %           |
    | city only                                    | 27.4 %           |
    | city + hour                                  | 33.5 % (seeds 1, 2: 33.2, 33.9) |
    | minute, weekday, date, filename suffix       | 10.0 % (null by construction)   |

(Format 1 had 24.1, 27.7 and 38.0 %: format 2 gives Bar and Restaurant, the long-range pair,
one time-of-day table and one prior in every city, so metadata cannot tell those two apart.)

The planted long-range effect: `LONG_RANGE_EFFECT` below.

Which audio cues separate which classes: `AUDIO_SEPARATIONS` below and RECIPES[c].cue_text
(also in synth_info.json). Sessions stray from their class by SESSION_SPREAD; cities apply a
+-6 dB smooth EQ with gentle high/low-pass roll-offs.

Measured difficulty, `tiny`, seed 0, format 3 (generate with `synthesize("/tmp/tiny")`, then
`python -m harness.data.synth_check /tmp/tiny`; 2-core CPU, ~8-14 s to generate, ~10 s to check).
Proxy: log-mel mean+std per band -> multinomial logistic regression, 4 folds split by session,
trained on labelled clips, scored on every clip of the held-out sessions with the true class:

    | proxy, macro accuracy                          | seed 0         | seed 1  |
    |------------------------------------------------|----------------|---------|
    | audio only, split by session                   | 62.3 % +- 4.0  |         |
    | audio + city one-hot + hour sin/cos            | 62.8 % +- 3.2  |         |
    | metadata only (same proxy)                     | 25.4 %         |         |
    | audio only, random clip split (leaky)          | 73.5 %         |         |
    |   same labelled clips, split by session        | 66.3 %         |         |
    | long-range pair alone, audio (chance 50 %)     | 57.7 % (folds 61, 63, 63, 45) |  |
    | audio only, eval: seen / unseen cities         | 51.1 / 56.3 %  |         |

(scikit-learn's GroupKFold draws the session folds; with the former hand-made folds the same
corpus gave 60.0, 60.6, 29.9, 74.1, 62.7 and 52.2 %, and seed 1 58.8 % and 47.9 % on the pair:
the pair's figure swings with which sessions share a fold, because in one drawn corpus a city
holds unequal numbers of Bar and Restaurant sessions and the city's channel colouring is in the
pooled statistics; see LONG_RANGE_EFFECT["finite_sample_caveat"].)

A network that can use the temporal cues should land higher than this pooled linear proxy; on the
long-range pair, only one that carries information across seconds can (README, *Measured*: none
of ours does yet).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from ..errors import UserError, fs_errors
from ..folder_build import building, new_partial, publish, sweep_orphans
from .synth_sounds import CLASSES, RECIPES, SESSION_SPREAD, ChannelDraw, draw_session, render_clip

FORMAT_VERSION = 3  # 2: Restaurant and Bar became the planted long-range pair; 3: its events 0.8 s from the edges
HEADER = ("filename", "location", "record_time", "scene_label")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SPLITS = ("labelled", "unlabelled", "eval")
TRUTH_COLUMNS = ("filename", "split", "scene_label", "session")
OFFICIAL_DIR = Path(__file__).resolve().parent / "apsipa2025"
OFFICIAL_DEV = "APSIPA2025_GC_ASC_dev_metadata.csv"
OFFICIAL_EVAL = "APSIPA2025_GC_ASC_eval_metadata.csv"

# Cities named like the real ones: dev cities first (largest first), then cities found only in eval.
DEV_CITIES = ("Xi'an", "Luoyang", "Hefei", "Shanghai", "Chongqing", "Jinan", "Shangrao", "Liupanshui")
UNSEEN_CITIES = ("Shenyang", "Tianjin", "Nanchang", "Guangzhou", "Changchun", "Taiyuan")


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class SynthPreset:
    """Size and shape of a corpus. `official=True` takes rows, cities and times from the official CSVs."""

    name: str
    clip_seconds: float
    n_labelled: int = 0
    n_unlabelled: int = 0
    n_eval: int = 0
    dev_cities: int = 4
    unseen_cities: int = 2
    session_clips: tuple[int, int] = (1, 6)
    labelled_per_session: float = 2.5     # labelled clips per labelled session, on average
    unseen_eval_fraction: float = 0.35    # share of eval sessions from cities absent in dev
    sample_rate: int = 16000
    official: bool = False

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


PRESETS: dict[str, SynthPreset] = {
    # for tests and smoke runs of the harness itself: seconds to write, too small to rank models
    "micro": SynthPreset("micro", 1.5, n_labelled=100, n_unlabelled=60, n_eval=30, dev_cities=3, unseen_cities=1,
                         session_clips=(1, 3), labelled_per_session=1.5),
    "tiny": SynthPreset("tiny", 4.0, n_labelled=300, n_unlabelled=600, n_eval=200, dev_cities=4, unseen_cities=2),
    "small": SynthPreset("small", 10.0, n_labelled=1200, n_unlabelled=2400, n_eval=800, dev_cities=6, unseen_cities=3,
                         session_clips=(1, 10), labelled_per_session=3.0),
    "cas": SynthPreset("cas", 10.0, dev_cities=8, unseen_cities=6, official=True),
}


# --------------------------------------------------------------------------- the planted world

# Time of day per class: von Mises components over the 24-h circle (centre hour, concentration, weight),
# multiplied by a common activity curve (little is recorded at night) and discretised to whole hours.
TIME_OF_DAY: dict[str, tuple[tuple[float, float, float], ...]] = {
    "Bus": ((8.0, 4.5, 0.4), (18.0, 4.5, 0.35), (13.0, 1.5, 0.25)),               # commutes, daytime
    "Airport": ((10.0, 1.5, 0.5), (20.0, 3.0, 0.5)),                               # broad, late flights
    "Metro": ((8.5, 9.0, 0.45), (18.5, 9.0, 0.4), (13.0, 1.5, 0.15)),             # rush hours
    "Restaurant": ((19.0, 6.0, 0.5), (22.0, 6.0, 0.3), (12.5, 9.0, 0.2)),        # evening (= Bar: the long-range pair)
    "Shopping mall": ((15.0, 3.0, 0.6), (20.0, 6.0, 0.4)),                         # afternoon, evening
    "Public square": ((20.0, 7.5, 0.55), (16.0, 3.0, 0.45)),                       # evening square dancing
    "Urban park": ((7.0, 6.0, 0.45), (16.0, 3.0, 0.55)),                           # morning exercise, afternoon
    "Traffic street": ((8.0, 4.5, 0.3), (17.5, 4.5, 0.3), (13.0, 1.5, 0.4)),      # rush hours, daytime
    "Construction site": ((10.0, 6.0, 0.5), (15.0, 6.0, 0.5)),                     # working hours
    "Bar": ((19.0, 6.0, 0.5), (22.0, 6.0, 0.3), (12.5, 9.0, 0.2)),               # evening (= Restaurant)
}
ACTIVITY = np.array([0.05] * 5 + [0.3] + [1.0] * 17 + [0.3])  # hours 0..23
PRIOR_CONCENTRATION = 0.3   # Dirichlet concentration of a city's class prior
PRIOR_FLOOR = 0.12          # share of a uniform prior mixed in, so no class is impossible in a city
FIRST_DAY, N_DAYS = date(2023, 3, 1), 245  # record dates: March to October, every weekday


def time_of_day_table() -> np.ndarray:
    """(classes, 24) P(hour | class), exactly as sampled."""
    h = (np.arange(24) + 0.5) * 2 * np.pi / 24
    out = np.zeros((len(CLASSES), 24))
    for k, c in enumerate(CLASSES):
        for centre, kappa, w in TIME_OF_DAY[c]:
            out[k] += w * np.exp(kappa * (np.cos(h - centre * 2 * np.pi / 24) - 1.0))
        out[k] *= ACTIVITY
        out[k] /= out[k].sum()
    return out


def draw_city_priors(rng: np.random.Generator, dev_cities: Sequence[str], shares: np.ndarray,
                     other_cities: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Each city's class prior: peaked but never degenerate, with classes balanced over all of dev.

    A Dirichlet draw mixed with a uniform floor per city; the dev cities' priors are then balanced by
    iterative proportional fitting so that the dev class distribution is uniform, as in the official
    data, where each city covers a few classes yet the labelled classes are near balanced. Cities
    outside dev keep their raw draw.
    """
    k = len(CLASSES)

    def one() -> np.ndarray:
        return (1 - PRIOR_FLOOR) * rng.dirichlet(np.full(k, PRIOR_CONCENTRATION)) + PRIOR_FLOOR / k

    m = np.stack([one() for _ in dev_cities])
    for _ in range(200):
        m *= (1.0 / k) / (shares @ m)
        m /= m.sum(axis=1, keepdims=True)
    out = {c: _tie_long_range_pair(m[i]) for i, c in enumerate(dev_cities)}
    out.update({c: _tie_long_range_pair(one()) for c in other_cities})
    return out


def _tie_long_range_pair(prior: np.ndarray) -> np.ndarray:
    """The long-range pair gets one share (their mean) in every city, so neither the city prior nor
    the city's channel colouring tells them apart; rows still sum to 1 and dev stays balanced."""
    i, j = (CLASSES.index(c) for c in LONG_RANGE_EFFECT["classes"])
    prior = prior.copy()
    prior[i] = prior[j] = 0.5 * (prior[i] + prior[j])
    return prior


def city_channel(seed: int, city: str) -> ChannelDraw:
    """A city's channel depends only on (seed, city name), so it is the same in every split and preset."""
    return ChannelDraw((seed, 3, zlib.crc32(city.encode("utf-8"))))


# --------------------------------------------------------------------------- planning


@dataclass
class CorpusPlan:
    """Every row to write, with its true class and session, and the distributions it was drawn from."""

    preset: SynthPreset
    seed: int
    rows: pd.DataFrame  # filename, location, record_time, split, scene_label, session, session_index
    dev_cities: list[str]
    eval_cities: list[str]
    city_shares: dict[str, float]           # share of dev sessions per dev city
    city_priors: dict[str, np.ndarray]      # P(class | city), every city incl. unseen ones
    generic_prior: np.ndarray | None = None  # cas: the prior used for cities without labelled data
    notes: list[str] = field(default_factory=list)


def _filename(rng: np.random.Generator, segment: int) -> str:
    """Like the official names: 32 hex digits, a segment number, `_1` or `_2`."""
    return f"{rng.bytes(16).hex()}{segment}_{int(rng.integers(1, 3))}"


def _session_sizes(rng: np.random.Generator, total: int, lo: int, hi: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(int(rng.integers(lo, hi + 1)), total - sum(sizes)))
    return sizes


def _record_time(rng: np.random.Generator, hour_probs: np.ndarray) -> str:
    """A record time whose hour follows the class; date, minute and second carry no information."""
    day = FIRST_DAY + timedelta(days=int(rng.integers(N_DAYS)))
    hour = int(rng.choice(24, p=hour_probs))
    t = datetime(day.year, day.month, day.day, hour, int(rng.integers(60)), int(rng.integers(60)))
    return t.strftime(TIME_FORMAT)


def plan_corpus(preset: SynthPreset | str, seed: int = 0, official_dir: Path | None = None) -> CorpusPlan:
    """Plan every row of a corpus (no audio): procedural presets draw everything, `cas` follows the official CSVs."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if p.official:
        return plan_official(p, seed, official_dir or OFFICIAL_DIR)
    return plan_procedural(p, seed)


def plan_procedural(p: SynthPreset, seed: int) -> CorpusPlan:
    """Sessions drawn city -> class (city prior) -> hour (class time of day) -> clips; some clips labelled."""
    rng = np.random.default_rng([seed, 0])
    dev = list(DEV_CITIES[: p.dev_cities])
    unseen = list(UNSEEN_CITIES[: p.unseen_cities])
    shares = rng.dirichlet(np.full(len(dev), 4.0))
    priors = draw_city_priors(rng, dev, shares, unseen)
    tod = time_of_day_table()
    taken: set[tuple[str, str]] = set()
    rows: list[dict] = []
    session_index = 0

    def add_session(city: str, size: int, split: str) -> list[int]:
        nonlocal session_index
        label = CLASSES[int(rng.choice(len(CLASSES), p=priors[city]))]
        while True:
            when = _record_time(rng, tod[CLASSES.index(label)])
            if (city, when) not in taken:
                taken.add((city, when))
                break
        first_segment = int(rng.integers(1, 40))
        start = len(rows)
        for j in range(size):
            rows.append({"filename": _filename(rng, first_segment + j), "location": city, "record_time": when,
                         "split": split, "scene_label": label, "session": f"S{session_index:05d}",
                         "session_index": session_index})
        session_index += 1
        return list(range(start, len(rows)))

    dev_sessions = [add_session(dev[int(rng.choice(len(dev), p=shares))], size, "unlabelled")
                    for size in _session_sizes(rng, p.n_labelled + p.n_unlabelled, *p.session_clips)]
    # Labelled sessions: about n_labelled / labelled_per_session of them, each with >= 1 labelled clip.
    n_lab_sessions = min(len(dev_sessions), p.n_labelled, max(1, round(p.n_labelled / p.labelled_per_session)))
    order = rng.permutation(len(dev_sessions))
    chosen = [dev_sessions[i] for i in order[:n_lab_sessions]]
    while sum(len(s) for s in chosen) < p.n_labelled:  # tiny sessions: take more until enough clips
        chosen.append(dev_sessions[order[len(chosen)]])
    first = [s[0] for s in chosen]
    rest = [i for s in chosen for i in s[1:]]
    labelled = first + [rest[i] for i in rng.choice(len(rest), p.n_labelled - len(first), replace=False)]
    for i in labelled:
        rows[i]["split"] = "labelled"

    eval_sizes = _session_sizes(rng, p.n_eval, *p.session_clips)
    for size in eval_sizes:
        if unseen and rng.uniform() < p.unseen_eval_fraction:
            city = unseen[int(rng.integers(len(unseen)))]
        else:
            city = dev[int(rng.choice(len(dev), p=shares))]
        add_session(city, size, "eval")

    df = pd.DataFrame(rows)
    df = _shuffle_within_splits(df, rng)
    eval_cities = sorted(set(df.loc[df.split == "eval", "location"]), key=(dev + unseen).index)
    return CorpusPlan(p, seed, df, dev, eval_cities, dict(zip(dev, map(float, shares), strict=True)), priors)


def _shuffle_within_splits(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rows in a random order, dev before eval, as in the official files (sessions are not contiguous)."""
    dev = df[df.split != "eval"]
    ev = df[df.split == "eval"]
    return pd.concat([dev.iloc[rng.permutation(len(dev))], ev.iloc[rng.permutation(len(ev))]], ignore_index=True)


def read_official(path: Path) -> pd.DataFrame:
    """An official metadata CSV as strings (empty labels stay empty strings)."""
    df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    if tuple(df.columns) != HEADER:
        raise UserError(f"{path}: header {tuple(df.columns)} is not {HEADER}")
    return df


def plan_official(p: SynthPreset, seed: int, official_dir: Path = OFFICIAL_DIR) -> CorpusPlan:
    """One clip per official row: same filenames, cities, times, sessions and labelled/unlabelled split.

    Labelled rows keep their label; other clips take their session's label where the session has
    one (an official eval clip can share a session with dev clips: 248 do), else a draw from the
    city prior: the smoothed empirical class distribution of the city's labelled sessions, or, for
    cities without labelled data, the generic prior (that of all labelled sessions).
    """
    rng = np.random.default_rng([seed, 0])
    dev = read_official(Path(official_dir) / OFFICIAL_DEV)
    ev = read_official(Path(official_dir) / OFFICIAL_EVAL)
    dev = dev.assign(split=np.where(dev.scene_label != "", "labelled", "unlabelled"))
    ev = ev.assign(split="eval")
    allrows = pd.concat([dev, ev], ignore_index=True)
    keys = list(zip(allrows.location, allrows.record_time, strict=True))
    index: dict[tuple[str, str], int] = {}
    allrows["session_index"] = [index.setdefault(k, len(index)) for k in keys]
    allrows["session"] = [f"S{i:05d}" for i in allrows.session_index]

    lab = allrows[allrows.split == "labelled"]
    session_label: dict[int, str] = {}
    for s, labels in lab.groupby("session_index").scene_label:
        values = set(labels)
        if len(values) != 1:
            raise UserError(f"official session {s} mixes labels {sorted(values)}")
        session_label[int(s)] = values.pop()
    per_session = lab.drop_duplicates("session_index")
    counts = pd.crosstab(per_session.location, per_session.scene_label).reindex(columns=list(CLASSES), fill_value=0)
    generic = (counts.sum(axis=0).to_numpy(float) + 1.0)
    generic /= generic.sum()
    priors = {c: (row.to_numpy(float) + 0.5) / (row.sum() + 0.5 * len(CLASSES)) for c, row in counts.iterrows()}
    dev_cities = [c for c in DEV_CITIES if c in set(dev.location)] + sorted(set(dev.location) - set(DEV_CITIES))
    eval_cities = sorted(set(ev.location), key=lambda c: (c not in dev_cities, c))
    for c in eval_cities + dev_cities:
        priors.setdefault(c, generic.copy())

    labels = allrows.scene_label.tolist()
    for i, (s, city) in enumerate(zip(allrows.session_index, allrows.location, strict=True)):
        if labels[i]:
            continue
        if s not in session_label:
            session_label[s] = CLASSES[int(rng.choice(len(CLASSES), p=priors[city]))]
        labels[i] = session_label[s]
    allrows["scene_label"] = labels
    shares = dev.groupby("location").size()
    notes = [f"{int((allrows.split == 'eval').sum())} eval rows; "
             f"{int(allrows[allrows.split == 'eval'].session_index.isin(_dev_session_ids(allrows)).sum())} "
             "of them share a (location, record_time) session with dev rows and take its class"]
    cols = ["filename", "location", "record_time", "split", "scene_label", "session", "session_index"]
    return CorpusPlan(p, seed, allrows[cols], dev_cities, eval_cities,
                      {c: float(shares[c] / shares.sum()) for c in dev_cities}, priors, generic, notes)


def _dev_session_ids(rows: pd.DataFrame) -> set[int]:
    return set(rows.loc[rows.split != "eval", "session_index"].astype(int))


# --------------------------------------------------------------------------- effect sizes


def _macro_bayes(joint: np.ndarray) -> dict[str, float]:
    """Macro and plain accuracy of Bayes-optimal rules on a joint table (..., classes) of P(x, class).

    Macro accuracy is maximised by argmax_c P(x | c) (the balanced-prior posterior), plain accuracy
    by argmax_c P(x, c); both are reported for their own criterion.
    """
    k = joint.shape[-1]
    flat = joint.reshape(-1, k)
    p_c = flat.sum(axis=0)
    like = flat / np.where(p_c > 0, p_c, 1.0)
    present = p_c > 0
    macro_rule = np.argmax(np.where(present, like, -1.0), axis=1)
    macro = float(np.mean([like[macro_rule == c, c].sum() for c in range(k) if present[c]]))
    plain = float(flat[np.arange(len(flat)), np.argmax(flat, axis=1)].sum() / flat.sum())
    return {"macro_accuracy": macro, "accuracy": plain}


def metadata_effect(joint: np.ndarray) -> dict[str, dict[str, float]]:
    """Bayes-optimal accuracies from a (cities, 24 hours, classes) joint: city+hour, city, hour, chance."""
    joint = joint / joint.sum()
    return {
        "city_and_hour": _macro_bayes(joint),
        "city_only": _macro_bayes(joint.sum(axis=1)),
        "hour_only": _macro_bayes(joint.sum(axis=0)),
        "chance": {"macro_accuracy": 1.0 / joint.shape[-1], "accuracy": float(joint.sum(axis=(0, 1)).max())},
    }


def planted_joint(plan: CorpusPlan) -> np.ndarray:
    """P(city, hour, class) over dev: exact from the planted distributions, or empirical for `cas`."""
    if plan.preset.official:
        dev = plan.rows[plan.rows.split != "eval"]
        hours = pd.to_datetime(dev.record_time, format=TIME_FORMAT).dt.hour.to_numpy()
        joint = np.zeros((len(plan.dev_cities), 24, len(CLASSES)))
        ci = dev.location.map({c: i for i, c in enumerate(plan.dev_cities)}).to_numpy()
        ki = dev.scene_label.map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
        np.add.at(joint, (ci, hours, ki), 1.0)
        return joint
    tod = time_of_day_table()  # (classes, 24)
    shares = np.array([plan.city_shares[c] for c in plan.dev_cities])
    prior = np.stack([plan.city_priors[c] for c in plan.dev_cities])  # (cities, classes)
    return shares[:, None, None] * prior[:, None, :] * tod.T[None, :, :]


AUDIO_SEPARATIONS = (
    "Bus vs Traffic street: both have engine harmonics and low rumble; Bus engines ramp up over 1.5-3 s and drop at "
    "gear shifts inside a small room (short reverb, card-reader beeps), Traffic has symmetric 1-4 s pass-by swells "
    "with Doppler-dropping tones and horns.",
    "Airport vs Metro vs Shopping mall: reverberant halls with voices and footsteps; Airport has an ascending 3-note "
    "chime + speech every ~3.4 s and suitcases, Metro train swells with a stepped motor whine and door beeps every "
    "~0.55 s, Shopping mall soft drumless music and scanner beeps.",
    "Restaurant vs Bar: the planted long-range pair (LONG_RANGE_EFFECT): one recipe, the same two events (a "
    "harmonic tone, a noise burst, both over 0.5-4 kHz) in every clip, Bar in the order tone-then-hiss and "
    "Restaurant hiss-then-tone, 1.2-1.6 s apart. "
    "Nothing but that order over seconds tells them apart.",
    "Construction site vs Restaurant/Bar: metal impacts in all three; only Construction's come at a steady period "
    "(0.3-0.9 s) in bursts of seconds, with drills switching on and off.",
    "Public square vs Bar/Restaurant: kick-drum music in all three; the square's beat is faster (~0.45 s), outdoors "
    "(dry), with distant traffic and less babble.",
    "Urban park vs Public square: outdoor, wind gusts and distant traffic in both; the park has frequent bird calls "
    "(fast 2-7 kHz sweeps) and is quieter.",
    "Overlap: every event type occurs in several classes at different rates, every long cue is absent from 5-90 % "
    "of its class's clips, levels overlap (class mean levels span 8 dB, clip levels vary by sigma ~4 dB), and "
    "sessions and cities colour the spectrum.",
)

LONG_RANGE_EFFECT = {
    "classes": ["Bar", "Restaurant"],
    "difference": "the order of two events 1.2-1.6 s apart (Bar: tone then hiss; Restaurant: hiss then tone), one "
                  "pair per 4 s of clip; everything else is drawn from one recipe with the same random numbers, "
                  "and the two share one time-of-day distribution and one prior in every city",
    "pooled_statistics": "identical in distribution: a classifier of per-band time-averaged statistics (or any "
                         "encoder whose receptive field is under 0.8 s, followed by pooling over time) is at chance "
                         "(50 %) on the pair",
    "finite_sample_caveat": "sessions are drawn independently, so in one drawn corpus a city may hold more "
                            "sessions of the one than of the other; a model that uses the city (or its channel "
                            "colouring) then scores above or below chance on the pair's validation clips by that "
                            "chance imbalance alone. Balancing the sessions per city does not help: a held-out "
                            "session then always leaves its city's training sessions tilted the other way",
    "why_the_same_bands": "both events cover 0.5-4 kHz, so a time path that follows each frequency band (the "
                          "dual-path design) sees both; with a high and a low event it could only relate them "
                          "through a frequency path first",
    "why_this_construction": "the two events are the same in both classes and symmetric in time, and farther apart "
                             "than the receptive field of the dense encoders (at most about 0.6 s) plus a "
                             "reverberation tail, so only a model that carries information across seconds (the time "
                             "path) can tell the classes apart",
}

NULL_ATTRIBUTES = (
    "minute and second of record_time (uniform, independent of class)",
    "weekday, day and month of record_time (uniform over 2023-03-01..2023-10-31, independent of class)",
    "the filename's segment number and _1/_2 suffix",
)


def effect_sizes(plan: CorpusPlan) -> dict:
    """What the generator planted, as numbers a later ablation can be checked against."""
    meta = metadata_effect(planted_joint(plan))
    return {
        "metadata_bayes": meta,
        "metadata_bayes_basis": ("empirical joint of city, hour and true class over the dev rows (in-sample)"
                                 if plan.preset.official else "exact, from the planted city shares, city priors "
                                 "and time-of-day tables; hour = the whole hour of record_time"),
        "audio_cues": {c: RECIPES[c].cue_text for c in CLASSES},
        "audio_separations": list(AUDIO_SEPARATIONS),
        "long_range": dict(LONG_RANGE_EFFECT),
        "session_spread": dict(SESSION_SPREAD),
        "city_channel": "smooth random EQ within +-6 dB (4 cosine terms over log frequency), 2nd-order high-pass "
                        "at 40-160 Hz, 2nd-order low-pass at 5.0-7.8 kHz; fixed per (seed, city)",
        "null_attributes": list(NULL_ATTRIBUTES),
    }


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class SynthSummary:
    """Where a corpus lives and what it holds; `created` is False when an existing corpus was reused."""

    out_dir: Path
    audio_dir: Path
    dev_csv: Path
    eval_csv: Path
    truth_csv: Path
    info_json: Path
    preset: str
    seed: int
    sample_rate: int
    clip_seconds: float
    n_labelled: int
    n_unlabelled: int
    n_eval: int
    n_sessions: int
    created: bool
    seconds: float = 0.0


def metadata_csv_text(rows: pd.DataFrame, with_labels: bool) -> str:
    """The official layout: BOM, `filename,location,record_time,scene_label`, LF, empty labels for unlabelled rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for r in rows.itertuples(index=False):
        label = r.scene_label if (with_labels and r.split == "labelled") else ""
        w.writerow((r.filename, r.location, r.record_time, label))
    return "\ufeff" + buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def _render_sessions(args: tuple[int, int, int, list[tuple[int, str, str, list[tuple[int, str]]]], str]) -> int:
    """Worker: render and write every clip of some sessions (seeded per session and per clip: order-free)."""
    seed, sr, n, sessions, audio_dir = args
    written = 0
    for session_index, label, city, clips in sessions:
        sound = draw_session(np.random.default_rng([seed, 1, session_index]), label)
        channel = city_channel(seed, city)
        for clip_index, filename in clips:
            x = render_clip(np.random.default_rng([seed, 2, clip_index]), sound, channel, n, sr)
            pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
            buffer = io.BytesIO()   # encoded first: a full disk is then an OSError (EFBIG, ENOSPC) of this write
            sf.write(buffer, pcm, sr, subtype="PCM_16", format="WAV")
            with open(os.path.join(audio_dir, filename + ".wav"), "wb") as fh:
                fh.write(buffer.getvalue())
            written += 1
    return written


def _chunks(rows: pd.DataFrame, size: int) -> list[list[tuple[int, str, str, list[tuple[int, str]]]]]:
    """Whole sessions grouped into jobs of about `size` clips; a clip's index in the plan seeds its audio."""
    sessions = []
    for s, g in rows.groupby("session_index", sort=True):
        sessions.append((int(s), str(g.scene_label.iloc[0]), str(g.location.iloc[0]),
                         [(int(i), str(f)) for i, f in zip(g.index, g.filename, strict=True)]))
    out, cur, count = [], [], 0
    for s in sessions:
        cur.append(s)
        count += len(s[3])
        if count >= size:
            out.append(cur)
            cur, count = [], 0
    if cur:
        out.append(cur)
    return out


def write_clips(plan: CorpusPlan, audio_dir: str | os.PathLike, filenames: Iterable[str] | None = None,
                progress: bool = False, workers: int = 1) -> int:
    """Render and write the wavs of `plan` (all, or only `filenames`) into `audio_dir`; returns the count.

    Each clip's audio depends only on (seed, session, clip index), so a subset rendered later is
    byte-identical to the same files of a full run, whatever `workers` is.
    """
    p = plan.preset
    rows = plan.rows.reset_index(drop=True)
    if filenames is not None:
        rows = rows[rows.filename.isin(set(filenames))]
    jobs = [(plan.seed, p.sample_rate, p.clip_samples, c, str(audio_dir)) for c in _chunks(rows, 24)]
    bar = tqdm(total=len(rows), desc=f"synth {p.name}", unit="clip", disable=not progress)
    written = 0
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                done = _render_sessions(job)
                written += done
                bar.update(done)
        else:
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
                for done in pool.map(_render_sessions, jobs):
                    written += done
                    bar.update(done)
    finally:
        bar.close()
    return written


def _info(plan: CorpusPlan) -> dict:
    p = plan.preset
    rows = plan.rows
    tod = time_of_day_table()
    counts = {s: int((rows.split == s).sum()) for s in SPLITS}
    return {
        "format_version": FORMAT_VERSION,
        "preset": p.name,
        "preset_params": asdict(p),
        "seed": plan.seed,
        "sample_rate": p.sample_rate,
        "clip_seconds": p.clip_seconds,
        "classes": list(CLASSES),
        "counts": {
            **counts,
            "sessions": int(rows.session_index.nunique()),  # cas: some sessions span dev and eval
            "dev_sessions": int(rows.loc[rows.split != "eval", "session_index"].nunique()),
            "labelled_sessions": int(rows.loc[rows.split == "labelled", "session_index"].nunique()),
            "eval_sessions": int(rows.loc[rows.split == "eval", "session_index"].nunique()),
            "true_class_per_split": {s: {c: int(((rows.split == s) & (rows.scene_label == c)).sum()) for c in CLASSES}
                                     for s in SPLITS},
        },
        "cities": {"dev": plan.dev_cities, "eval": plan.eval_cities,
                   "unseen_in_eval": [c for c in plan.eval_cities if c not in plan.dev_cities]},
        "city_shares_dev": {c: round(v, 6) for c, v in plan.city_shares.items()},
        "class_priors": {c: {k: round(float(v), 6) for k, v in zip(CLASSES, pr, strict=True)}
                         for c, pr in plan.city_priors.items()},
        "generic_prior": (None if plan.generic_prior is None
                          else {k: round(float(v), 6) for k, v in zip(CLASSES, plan.generic_prior, strict=True)}),
        "time_of_day": {
            "p_hour_given_class": {c: [round(float(v), 6) for v in tod[k]] for k, c in enumerate(CLASSES)},
            "von_mises_components": {c: [list(x) for x in TIME_OF_DAY[c]] for c in CLASSES},
            "activity": ACTIVITY.tolist(),
            "applies_to": "cas: not planted (times are the official ones)" if p.official else "every session",
        },
        "effect_sizes": effect_sizes(plan),
        "notes": plan.notes,
    }


def _summary(out: Path, info: dict, created: bool, seconds: float) -> SynthSummary:
    c = info["counts"]
    return SynthSummary(out, out / "audio", out / "dev_metadata.csv", out / "eval_metadata.csv", out / "truth.csv",
                        out / "synth_info.json", info["preset"], int(info["seed"]), int(info["sample_rate"]),
                        float(info["clip_seconds"]), c["labelled"], c["unlabelled"], c["eval"],
                        c["sessions"], created, seconds)


def _preset_key(p: SynthPreset) -> str:
    return json.dumps(asdict(p), sort_keys=True)


def _existing_corpus(out: Path, preset: SynthPreset, seed: int) -> dict | None:
    """The info of a complete corpus of this preset+seed at `out`, None if `out` is empty; else ValueError."""
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return None
    try:
        info = json.loads((out / "synth_info.json").read_text(encoding="utf-8"))
        found = (info["preset"], info["seed"], info["format_version"],
                 json.dumps(info["preset_params"], sort_keys=True))
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{out} exists and is not a synthetic corpus (no readable synth_info.json); "
                         "choose another --out or remove it") from None
    if found != (preset.name, seed, FORMAT_VERSION, _preset_key(preset)):
        raise UserError(f"{out} holds another synthetic corpus (preset {found[0]!r}, seed {found[1]!r}, "
                         f"format {found[2]!r}), not preset {preset.name!r} with seed {seed}; "
                         "choose another --out or remove it")
    missing = [k for k in (*SPLITS, "sessions") if k not in info.get("counts", {})]
    if missing:
        raise UserError(f"{out} holds a corpus written by another version of the generator (no counts "
                         f"{', '.join(missing)}); remove it and run again")
    expected = sum(info["counts"][s] for s in SPLITS)
    files = [out / n for n in ("dev_metadata.csv", "eval_metadata.csv", "truth.csv")]
    n_wavs = sum(1 for _ in (out / "audio").glob("*.wav")) if (out / "audio").is_dir() else 0
    if not all(f.is_file() for f in files) or n_wavs != expected:
        raise UserError(f"{out} holds an incomplete corpus ({n_wavs} of {expected} wavs); remove it and run again")
    return info


def synthesize(out_dir: str | os.PathLike, preset: str | SynthPreset = "tiny", seed: int = 0, progress: bool = True,
               workers: int | None = None) -> SynthSummary:
    """Write (or reuse) the synthetic corpus `preset` with `seed` at `out_dir`; deterministic, atomic.

    The corpus is built in a hidden sibling directory and renamed into place at the end, so an
    interrupted run never leaves something that looks complete. An existing complete corpus of
    the same preset and seed is reused as is; anything else already at `out_dir` is a ValueError.
    `preset` is a name in PRESETS or a SynthPreset (tests use tiny custom ones). `workers`
    processes render audio (default: up to 4 when there are more than 400 clips); the bytes
    written do not depend on it.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise UserError(f"unknown synthetic preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    out = Path(out_dir)
    seed = int(seed)
    if out.exists():   # the common case: made before, no lock needed to read it
        info = _existing_corpus(out, preset, seed)
        if info is not None:
            return _summary(out, info, created=False, seconds=0.0)
    if out.parent.is_dir():
        sweep_orphans(out.parent)   # partial corpora of killed builders
    with building(out):   # a second process (seeds run in parallel) waits here, then reuses the corpus
        if out.exists():
            info = _existing_corpus(out, preset, seed)
            if info is not None:
                return _summary(out, info, created=False, seconds=0.0)
        return _write_corpus(out, preset, seed, progress, workers)


def _write_corpus(out: Path, preset: SynthPreset, seed: int, progress: bool, workers: int | None) -> SynthSummary:
    t0 = time.perf_counter()
    plan = plan_corpus(preset, seed)
    n_rows = len(plan.rows)
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if n_rows > 400 else 1
    tmp = new_partial(out)
    try:
        with fs_errors(out, "write the synthetic corpus"):
            (tmp / "audio").mkdir()
            write_clips(plan, tmp / "audio", progress=progress, workers=workers)
            rows = plan.rows
            _write_text(tmp / "dev_metadata.csv", metadata_csv_text(rows[rows.split != "eval"], with_labels=True))
            _write_text(tmp / "eval_metadata.csv", metadata_csv_text(rows[rows.split == "eval"], with_labels=False))
            _write_text(tmp / "truth.csv", rows[list(TRUTH_COLUMNS)].to_csv(index=False, lineterminator="\n"))
            info = _info(plan)
            # written last: a directory with synth_info.json is complete
            _write_text(tmp / "synth_info.json", json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
            if out.exists():
                out.rmdir()  # empty (checked under the build lock)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _summary(out, info, created=True, seconds=time.perf_counter() - t0)


def load_truth(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The true class, split and session of every clip of a synthetic corpus (for measuring, never training)."""
    path = Path(out_dir) / "truth.csv"
    if not path.is_file():
        raise UserError(f"{path} not found: {out_dir} is not a synthetic corpus")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_info(out_dir: str | os.PathLike) -> dict:
    """The generator's record of a corpus (synth_info.json)."""
    return json.loads((Path(out_dir) / "synth_info.json").read_text(encoding="utf-8"))
