"""The synthetic corpus: official format, determinism, planted structure, atomic and idempotent writing.

The tiny corpus is generated once for the module; a custom micro preset (1-s clips) covers the
checks that need several full generations.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import stats

from harness.data import synth
from harness.data.synth import (
    CLASSES,
    HEADER,
    PRESETS,
    SynthPreset,
    load_info,
    load_truth,
    metadata_csv_text,
    plan_corpus,
    synthesize,
    write_clips,
)

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
NAME_RE = re.compile(r"^[0-9a-f]{32}\d+_[12]$")
MICRO = SynthPreset("micro", 1.0, n_labelled=12, n_unlabelled=18, n_eval=10, dev_cities=2, unseen_cities=1,
                    session_clips=(1, 4), labelled_per_session=2.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    summary = synthesize(out, "tiny", seed=0, progress=False)
    assert summary.created and summary.out_dir == out
    return out


def read_meta(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def rows(tiny) -> pd.DataFrame:
    """dev + eval metadata joined with the truth."""
    meta = pd.concat([read_meta(tiny / "dev_metadata.csv").assign(file="dev"),
                      read_meta(tiny / "eval_metadata.csv").assign(file="eval")], ignore_index=True)
    return meta.merge(load_truth(tiny), on="filename", suffixes=("", "_true"), validate="1:1")


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("name", ["dev_metadata.csv", "eval_metadata.csv"])
def test_metadata_csv_is_in_the_official_format(tiny, name):
    raw = (tiny / name).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + b",".join(h.encode() for h in HEADER) + b"\n")
    assert b"\r" not in raw and raw.endswith(b"\n")
    df = read_meta(tiny / name)
    assert tuple(df.columns) == HEADER
    assert df.record_time.map(lambda t: bool(TIME_RE.match(t))).all()
    pd.to_datetime(df.record_time, format="%Y-%m-%d %H:%M:%S")  # raises on an impossible date
    assert df.filename.map(lambda f: bool(NAME_RE.match(f))).all()
    assert set(df.scene_label) - {""} <= set(CLASSES)
    if name == "eval_metadata.csv":
        assert (df.scene_label == "").all()
    else:
        assert 0 < (df.scene_label != "").sum() < len(df)


def test_the_official_reader_idiom_reads_empty_labels_as_missing(tiny):
    """The baseline reads with plain pandas: unlabelled rows must come back as NaN, not as text."""
    df = pd.read_csv(tiny / "dev_metadata.csv", encoding="utf-8-sig")
    assert list(df.columns) == list(HEADER)
    assert df.scene_label.isna().sum() == PRESETS["tiny"].n_unlabelled


def test_counts_and_sessions_follow_the_preset(tiny, rows):
    p = PRESETS["tiny"]
    info = load_info(tiny)
    expected = {"labelled": p.n_labelled, "unlabelled": p.n_unlabelled, "eval": p.n_eval}
    assert rows.split.value_counts().to_dict() == expected
    assert info["counts"]["labelled"] == p.n_labelled and info["counts"]["labelled_sessions"] >= 100
    sizes = rows.groupby("session").size()
    assert sizes.min() >= p.session_clips[0] and sizes.max() <= p.session_clips[1]
    assert rows.filename.is_unique


def test_every_row_has_a_readable_wav_of_the_stated_shape(tiny, rows):
    wavs = sorted(p.stem for p in (tiny / "audio").glob("*.wav"))
    assert wavs == sorted(rows.filename)
    info = load_info(tiny)
    rng = np.random.default_rng(0)
    for f in rng.choice(rows.filename.to_numpy(), 12, replace=False):
        meta = sf.info(tiny / "audio" / f"{f}.wav")
        assert (meta.samplerate, meta.channels, meta.subtype) == (16000, 1, "PCM_16")
        assert meta.frames == int(info["clip_seconds"] * info["sample_rate"]) == 64000
        x, _ = sf.read(tiny / "audio" / f"{f}.wav", dtype="float32")
        assert 1e-3 < np.sqrt(np.mean(x**2)) < 0.5 and np.abs(x).max() < 1.0


# --------------------------------------------------------------------------- truth and sessions


def test_truth_covers_every_clip_and_agrees_with_the_labels(tiny, rows):
    truth = load_truth(tiny)
    assert list(truth.columns) == ["filename", "split", "scene_label", "session"]
    assert len(truth) == len(rows) and truth.filename.is_unique
    assert set(truth.scene_label) == set(CLASSES)
    lab = rows[rows.scene_label != ""]
    assert (lab.split == "labelled").all() and (lab.scene_label == lab.scene_label_true).all()
    assert set(rows.loc[rows.file == "eval", "split"]) == {"eval"}
    assert set(rows.loc[rows.file == "dev", "split"]) == {"labelled", "unlabelled"}


def test_sessions_are_single_class_and_never_span_dev_and_eval(rows):
    assert (rows.groupby("session").scene_label_true.nunique() == 1).all()
    # a session is exactly a (location, record_time) pair, as a loader would derive it
    keys = rows.groupby(["location", "record_time"]).session.nunique()
    assert (keys == 1).all() and rows.groupby("session")[["location", "record_time"]].nunique().max().max() == 1
    assert (rows.groupby("session").file.nunique() == 1).all()
    # labelled sessions also hold unlabelled clips (what session-consistent pseudo-labels use)
    lab_sessions = set(rows.loc[rows.split == "labelled", "session"])
    assert rows[rows.session.isin(lab_sessions)].split.eq("unlabelled").any()


def test_eval_has_cities_never_seen_in_dev(tiny, rows):
    info = load_info(tiny)
    dev_cities = set(rows.loc[rows.file == "dev", "location"])
    unseen = set(rows.loc[rows.file == "eval", "location"]) - dev_cities
    assert unseen and unseen == set(info["cities"]["unseen_in_eval"])
    share = rows[rows.file == "eval"].location.isin(unseen).mean()
    assert 0.1 < share < 0.7


# --------------------------------------------------------------------------- planted metadata effects


def test_city_priors_differ_and_are_not_degenerate(tiny, rows):
    priors = load_info(tiny)["class_priors"]
    mat = np.array([[priors[c][k] for k in CLASSES] for c in priors])
    assert np.allclose(mat.sum(1), 1.0) and mat.min() > 0.0 and mat.max() < 0.8
    tv = [0.5 * np.abs(a - b).sum() for i, a in enumerate(mat) for b in mat[i + 1:]]
    assert min(tv) > 0.1
    # and the drawn sessions show it: city and class are dependent (one count per session)
    sessions = rows[rows.file == "dev"].drop_duplicates("session")
    assert stats.chi2_contingency(pd.crosstab(sessions.location, sessions.scene_label_true)).pvalue < 0.01


def test_class_time_of_day_distributions_differ(tiny, rows):
    tod = load_info(tiny)["time_of_day"]["p_hour_given_class"]
    evening = {c: sum(tod[c][19:24]) for c in CLASSES}
    assert evening["Bar"] > 0.5 > 0.2 > evening["Construction site"]
    sessions = rows.drop_duplicates("session")
    hour = pd.to_datetime(sessions.record_time).dt.hour
    bar, building = hour[sessions.scene_label_true == "Bar"], hour[sessions.scene_label_true == "Construction site"]
    assert bar.mean() > building.mean() + 3
    assert stats.mannwhitneyu(bar, building).pvalue < 0.01


def test_ignored_attributes_carry_no_class_information(rows):
    sessions = rows.drop_duplicates("session")
    t = pd.to_datetime(sessions.record_time)
    assert t.dt.day_of_week.nunique() == 7 and t.dt.month.nunique() >= 5
    # minute of the hour: no dependence on class (session-level chi-square on quarter hours)
    table = pd.crosstab(sessions.scene_label_true, t.dt.minute // 15)
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_documented_metadata_effect_sizes(tiny):
    meta = load_info(tiny)["effect_sizes"]["metadata_bayes"]
    acc = {k: v["macro_accuracy"] for k, v in meta.items()}
    assert acc["chance"] == pytest.approx(0.1)
    assert 0.1 < acc["hour_only"] < acc["city_and_hour"] < 0.6
    assert 0.1 < acc["city_only"] < acc["city_and_hour"]


def test_bayes_accuracy_on_known_tables():
    k = len(CLASSES)
    separable = np.zeros((k, 24, k))
    for c in range(k):
        separable[c, c, c] = 1.0
    assert synth.metadata_effect(separable)["city_and_hour"]["macro_accuracy"] == pytest.approx(1.0)
    independent = np.ones((3, 24, k))
    assert synth.metadata_effect(independent)["city_and_hour"]["macro_accuracy"] == pytest.approx(1.0 / k)


# --------------------------------------------------------------------------- the long-range pair


def test_the_long_range_pair_differs_only_in_the_order_of_two_events(tiny):
    from dataclasses import replace

    from harness.data.synth import LONG_RANGE_EFFECT
    from harness.data.synth_sounds import RECIPES

    a, b = LONG_RANGE_EFFECT["classes"]
    order = {c: [cue for cue in RECIPES[c].cues if cue.name == "order"] for c in (a, b)}
    assert [cue.variant for cue in order[a]] == ["AB"] and [cue.variant for cue in order[b]] == ["BA"]
    assert replace(RECIPES[a], cue_text="", cues=()) == replace(RECIPES[b], cue_text="", cues=())
    assert ([cue for cue in RECIPES[a].cues if cue.name != "order"]
            == [cue for cue in RECIPES[b].cues if cue.name != "order"])
    info = load_info(tiny)
    assert all(priors[a] == priors[b] for priors in info["class_priors"].values())
    assert info["time_of_day"]["p_hour_given_class"][a] == info["time_of_day"]["p_hour_given_class"][b]


def _order_clips(variant: str, seeds: range) -> np.ndarray:
    from harness.data.synth_sounds import Cue, cue_order

    sp = {"chime_f": 700.0}
    return np.stack([cue_order(np.random.default_rng(s), sp, Cue("order", 1.0, 0.0, variant=variant), 4 * 16000, 16000)
                     for s in seeds])


def test_order_cue_variants_share_every_band_statistic_and_differ_in_order():
    from harness.data.synth_check import logmel_stats_of

    ab, ba = _order_clips("AB", range(40)), _order_clips("BA", range(40))
    stats_ab, stats_ba = logmel_stats_of(ab), logmel_stats_of(ba)
    # per-band mean and std over time: no band differs (Welch t-test, Bonferroni over 128 statistics)
    p = stats.ttest_ind(stats_ab, stats_ba, equal_var=False).pvalue
    assert p.min() > 0.05 / p.size, p.min()
    # and the order is there: the tonal event (a few strong partials) comes first in AB, second in BA
    def tone_first(clips: np.ndarray) -> float:
        spec = np.abs(np.stack([np.fft.rfft(c.reshape(-1, 800), axis=1) for c in clips]))  # 50-ms frames
        peaky = spec.max(-1) / (spec.mean(-1) + 1e-9)            # tonal frames have a high peak-to-mean ratio
        loud = spec.mean(-1) > 0.2 * spec.mean(-1).max(-1, keepdims=True)
        first_loud = loud.argmax(-1)
        return float(np.mean(peaky[np.arange(len(clips)), first_loud] > 20))
    assert tone_first(ab) > 0.9 and tone_first(ba) < 0.1


# --------------------------------------------------------------------------- difficulty


def test_audio_is_learnable_but_not_trivially_separable(tiny, rows):
    from harness.data.synth_check import logmel_stats, macro_accuracy

    dev = rows[rows.file == "dev"].reset_index(drop=True)
    x = logmel_stats([tiny / "audio" / f"{f}.wav" for f in dev.filename])
    y = dev.scene_label_true.map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    # loudness alone: class mean log-energies overlap (per-class interquartile ranges intersect)
    energy = x[:, :64].mean(1)
    q = np.array([np.percentile(energy[y == c], [25, 75]) for c in range(len(CLASSES))])
    overlaps = sum(q[i, 0] < q[j, 1] and q[j, 0] < q[i, 1] for i in range(len(q)) for j in range(i + 1, len(q)))
    assert overlaps >= 15
    # a nearest-centroid classifier on mean log-mels, split by session: far above chance, far below perfect
    sessions = dev.session.unique()
    test = dev.session.isin(np.random.default_rng(0).permutation(sessions)[: len(sessions) // 4]).to_numpy()
    train = ~test & (dev.split == "labelled").to_numpy()
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    centroids = np.stack([z[train & (y == c)].mean(0) for c in range(len(CLASSES))])
    pred = np.argmin(((z[test, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    acc = macro_accuracy(y[test], pred)
    assert 0.2 < acc < 0.85, acc


# --------------------------------------------------------------------------- determinism and writing


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_corpora_and_another_seed_differs(tmp_path):
    a = _tree_bytes(synthesize(tmp_path / "a", MICRO, seed=3, progress=False).out_dir)
    b = _tree_bytes(synthesize(tmp_path / "b", MICRO, seed=3, progress=False, workers=2).out_dir)
    assert a == b and len(a) == 40 + 4
    c = _tree_bytes(synthesize(tmp_path / "c", MICRO, seed=4, progress=False).out_dir)
    assert a["dev_metadata.csv"] != c["dev_metadata.csv"]
    audio_a = {v for k, v in a.items() if k.startswith("audio/")}
    audio_c = {v for k, v in c.items() if k.startswith("audio/")}
    assert len(audio_a) == 40 and not audio_a & audio_c


def test_tiny_wavs_rerender_byte_identically(tiny, tmp_path):
    plan = plan_corpus("tiny", 0)
    dev_text = metadata_csv_text(plan.rows[plan.rows.split != "eval"], with_labels=True)
    assert dev_text.encode() == (tiny / "dev_metadata.csv").read_bytes()
    sample = list(plan.rows.filename.iloc[::97])
    assert write_clips(plan, tmp_path, sample) == len(sample)
    for f in sample:
        assert (tmp_path / f"{f}.wav").read_bytes() == (tiny / "audio" / f"{f}.wav").read_bytes()
    other = plan_corpus("tiny", 1)
    assert not set(other.rows.filename) & set(plan.rows.filename)


def test_rerun_reuses_a_complete_corpus(tiny):
    before = {p: p.stat().st_mtime_ns for p in [tiny / "truth.csv", tiny / "synth_info.json"]}
    summary = synthesize(tiny, "tiny", seed=0, progress=False)
    assert not summary.created and summary.n_labelled == 300 and summary.n_eval == 200
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_refuses_a_directory_holding_something_else(tiny, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a synthetic corpus"):
        synthesize(foreign, MICRO, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="another synthetic corpus"):
        synthesize(tiny, "tiny", seed=1, progress=False)
    with pytest.raises(ValueError, match="another synthetic corpus"):
        synthesize(tiny, "small", seed=0, progress=False)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        synthesize(tmp_path / "x", "huge")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synthesize(empty, MICRO, progress=False).created


def test_a_crash_leaves_no_corpus_behind(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synth.render_clip

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "render_clip", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        synthesize(tmp_path / "corpus", MICRO, progress=False, workers=1)
    # only the empty build-lock file stays (removing a lock file would let two builders in at once)
    assert [p.name for p in tmp_path.iterdir()] == [".corpus.lock"]
    assert (tmp_path / ".corpus.lock").stat().st_size == 0


# --------------------------------------------------------------------------- the cas preset (planning only)


@pytest.fixture(scope="module")
def cas_plan():
    return plan_corpus("cas", 0)


def test_cas_plan_follows_the_official_rows(cas_plan, apsipa_metadata_dir):
    dev = read_meta(apsipa_metadata_dir / "APSIPA2025_GC_ASC_dev_metadata.csv")
    ev = read_meta(apsipa_metadata_dir / "APSIPA2025_GC_ASC_eval_metadata.csv")
    r = cas_plan.rows
    official = pd.concat([dev, ev], ignore_index=True)
    for col in ("filename", "location", "record_time"):
        assert r[col].tolist() == official[col].tolist()
    assert (r.split == "eval").sum() == len(ev) and (r.split == "labelled").sum() == (dev.scene_label != "").sum()
    lab = official.scene_label != ""
    assert (r.scene_label[lab] == official.scene_label[lab]).all()
    assert set(r.scene_label) == set(CLASSES)
    # the written dev metadata is the official file, byte for byte
    dev_text = metadata_csv_text(r[r.split != "eval"], with_labels=True).encode()
    assert dev_text == (apsipa_metadata_dir / "APSIPA2025_GC_ASC_dev_metadata.csv").read_bytes()
    assert cas_plan.preset.clip_samples == 160000


def test_cas_plan_gives_each_session_one_class(cas_plan):
    r = cas_plan.rows
    assert (r.groupby(["location", "record_time"]).scene_label.nunique() == 1).all()
    lab = r[r.split == "labelled"].groupby("session").scene_label.first()
    unl = r[(r.split != "labelled") & r.session.isin(lab.index)]
    assert len(unl) > 6000  # nearly every unlabelled clip sits in a labelled session
    assert (unl.scene_label.to_numpy() == lab.loc[unl.session].to_numpy()).all()
    unseen = set(r.loc[r.split == "eval", "location"]) - set(r.loc[r.split != "eval", "location"])
    assert len(unseen) == 6
    for city in unseen:
        assert np.allclose(cas_plan.city_priors[city], cas_plan.generic_prior)


def test_presets_are_frozen_and_sized_as_documented():
    tiny, small = PRESETS["tiny"], PRESETS["small"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.clip_seconds = 10.0  # type: ignore[misc]
    assert {p.sample_rate for p in PRESETS.values()} == {16000}
    assert small.clip_seconds == 10.0
    assert small.n_labelled + small.n_unlabelled >= 4 * (tiny.n_labelled + tiny.n_unlabelled)


def test_cas_plan_renders_and_documents(cas_plan, tmp_path):
    import json

    sample = list(cas_plan.rows.filename.iloc[[0, 1, -1]])  # two dev rows and one eval row
    assert write_clips(cas_plan, tmp_path, sample) == 3
    for f in sample:
        meta = sf.info(tmp_path / f"{f}.wav")
        assert (meta.samplerate, meta.frames, meta.subtype) == (16000, 160000, "PCM_16")
    info = json.loads(json.dumps(synth._info(cas_plan)))
    assert info["counts"]["labelled"] == 1740 and info["counts"]["eval"] == 1100
    assert len(info["cities"]["unseen_in_eval"]) == 6
    acc = info["effect_sizes"]["metadata_bayes"]
    assert 0.1 < acc["city_only"]["macro_accuracy"] <= acc["city_and_hour"]["macro_accuracy"] <= 1.0
