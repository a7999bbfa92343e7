"""Calibration of the synthetic corpus's difficulty with a fast proxy classifier.

Why: the corpus is meant to be hard enough that models differ (a small audio-only network
should land around 55-75 % macro accuracy on `tiny`, not 100 % and not chance) and metadata
should help by a few points. Until the training loop exists, a pooled-statistics linear model
stands in: log-mel (16 kHz, n_fft 1024, window 640, hop 320, 64 mels) mean and std per band,
multinomial logistic regression (L2, L-BFGS; scikit-learn). It is deliberately weaker than a network (it cannot
see temporal structure), so it should land a little lower, around 45-65 %.

Every split is by session: the proxy is trained on the labelled clips of ~75 % of the sessions
and tested on every clip (true labels from truth.csv) of the other sessions, 4 folds. A random
clip-level split is reported beside it to show how much session leakage inflates the score.

    python -m harness.data.synth_check DIR [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torchaudio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .synth import LONG_RANGE_EFFECT, TIME_FORMAT, load_info, load_truth
from .synth_sounds import CLASSES


def logmel_stats(paths: list[Path], sample_rate: int = 16000) -> np.ndarray:
    """(clips, 128): per-band mean and std over time of the log-mel spectrogram."""
    return np.concatenate([logmel_stats_of(np.stack([sf.read(p, dtype="float32")[0] for p in paths[i:i + 64]]),
                                           sample_rate) for i in range(0, len(paths), 64)])


def logmel_stats_of(waves: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(clips, 128) statistics of a (clips, samples) array: the proxy's features."""
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, win_length=640, hop_length=320, n_mels=64)
    with torch.no_grad():
        lm = torch.log(mel(torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32))) + 1e-6)  # (b, mels, frames)
    return torch.cat([lm.mean(-1), lm.std(-1)], dim=1).numpy().astype(np.float64)


def metadata_features(locations: pd.Series, times: pd.Series, cities: list[str]) -> np.ndarray:
    """One-hot dev city (all zeros for a city never seen) and hour of day as sin/cos (1st and 2nd harmonic)."""
    onehot = np.stack([(locations == c).to_numpy(float) for c in cities], axis=1)
    t = pd.to_datetime(times, format=TIME_FORMAT)
    a = 2 * np.pi * (t.dt.hour + t.dt.minute / 60.0).to_numpy() / 24.0
    return np.concatenate([onehot, np.stack([np.sin(a), np.cos(a), np.sin(2 * a), np.cos(2 * a)], axis=1)], axis=1)


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float = 1e-2,
                steps: int = 500) -> np.ndarray:
    """Multinomial logistic regression (scikit-learn, L-BFGS) on standardised features with a
    class-balanced loss (the metric is macro). `l2` weighs the squared weights against the mean
    loss, i.e. scikit-learn's C = 1 / (2 * l2 * n)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=1.0 / (2 * l2 * len(y_train)), class_weight="balanced", max_iter=steps))
    return model.fit(x_train, y_train).predict(x_test)


def macro_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the classes present in `y` of the share of that class's clips predicted correctly."""
    return float(balanced_accuracy_score(y, pred))


def _folds(sessions: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Test masks of k folds of whole sessions (scikit-learn's GroupKFold, shuffled)."""
    folds = GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(sessions, groups=sessions)
    return [np.isin(np.arange(len(sessions)), test) for _, test in folds]


def calibrate(out_dir: str | Path, folds: int = 4, seed: int = 0) -> dict:
    """Macro accuracy of the proxy: audio only and audio + metadata, by session, leaky, and on eval."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the problems are tiny: extra threads only add synchronisation
    try:
        return _calibrate(Path(out_dir), folds, seed)
    finally:
        torch.set_num_threads(threads)


def _calibrate(out: Path, folds: int, seed: int) -> dict:
    info = load_info(out)
    meta, x_audio, x_meta = _features(out, info)
    x_both = np.concatenate([x_audio, x_meta], axis=1)
    y = meta.scene_label.map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    lab = meta.split.to_numpy() == "labelled"
    res, labelled_only, pair_acc = _session_folds(meta, x_audio, x_meta, x_both, y, folds, seed)
    return {
        "corpus": {"preset": info["preset"], "seed": info["seed"], "dir": str(out)},
        "proxy": "log-mel mean+std per band (64 mels, n_fft 1024, win 640, hop 320) -> multinomial logistic regression",
        "session_split": {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": [round(a, 4) for a in v]}
                          for name, v in res.items()},
        "leakage": {"audio_random_clip_split": _leaky_split(x_audio, y, lab, folds, seed),
                    "audio_session_split_labelled_clips": float(np.mean(labelled_only)),
                    "note": "both scored on labelled clips only; the difference is what session leakage adds"},
        "eval": _eval_scores(meta, {"audio": x_audio, "audio_meta": x_both}, y, list(info["cities"]["dev"])),
        "long_range_pair": {"classes": LONG_RANGE_EFFECT["classes"], "audio_session_split": float(np.mean(pair_acc)),
                            "folds": [round(a, 4) for a in pair_acc], "chance": 0.5},
        "metadata_bayes_macro": info["effect_sizes"]["metadata_bayes"]["city_and_hour"]["macro_accuracy"],
        "chance": 1.0 / len(CLASSES),
    }


def _features(out: Path, info: dict) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every clip (development and evaluation) with its true class, the audio proxy and the metadata features."""
    truth = load_truth(out)
    dev = pd.read_csv(out / "dev_metadata.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    ev = pd.read_csv(out / "eval_metadata.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    meta = pd.concat([dev, ev], ignore_index=True).drop(columns="scene_label")
    meta = meta.merge(truth, on="filename", validate="1:1")
    x_audio = logmel_stats([out / "audio" / f"{f}.wav" for f in meta.filename], int(info["sample_rate"]))
    x_meta = metadata_features(meta.location, meta.record_time, list(info["cities"]["dev"]))
    return meta, x_audio, x_meta


def _session_folds(meta: pd.DataFrame, x_audio: np.ndarray, x_meta: np.ndarray, x_both: np.ndarray, y: np.ndarray,
                   folds: int, seed: int) -> tuple[dict[str, list[float]], list[float], list[float]]:
    """Session-grouped folds of the development clips: each proxy's macro accuracy, the audio proxy on
    labelled test clips only (to compare with the leaky split), and on the long-range pair alone (chance 50 %)."""
    split = meta.split.to_numpy()
    is_dev, lab = split != "eval", split == "labelled"
    pair = np.isin(meta.scene_label.to_numpy(), LONG_RANGE_EFFECT["classes"])
    res: dict[str, list[float]] = {"audio": [], "audio_meta": [], "meta": []}
    pair_acc: list[float] = []
    labelled_only: list[float] = []
    for test in _folds(meta.session.to_numpy()[is_dev], folds, seed):
        test_mask = np.zeros(len(meta), bool)
        test_mask[np.flatnonzero(is_dev)[test]] = True
        train_mask = lab & ~test_mask
        for name, x in (("audio", x_audio), ("audio_meta", x_both), ("meta", x_meta)):
            pred = fit_predict(x[train_mask], y[train_mask], x[test_mask])
            res[name].append(macro_accuracy(y[test_mask], pred))
            if name == "audio":
                keep = lab[test_mask]
                labelled_only.append(macro_accuracy(y[test_mask][keep], pred[keep]))
        pair_train, pair_test = train_mask & pair, test_mask & pair
        if pair_train.any() and pair_test.any():
            pair_acc.append(macro_accuracy(y[pair_test],
                                           fit_predict(x_audio[pair_train], y[pair_train], x_audio[pair_test])))
    return res, labelled_only, pair_acc


def _leaky_split(x_audio: np.ndarray, y: np.ndarray, lab: np.ndarray, folds: int, seed: int) -> float:
    """The leaky split: labelled clips in k random folds regardless of session."""
    rng = np.random.default_rng(seed)
    leaky = []
    lab_idx = rng.permutation(np.flatnonzero(lab))
    for part in np.array_split(lab_idx, folds):
        train = np.setdiff1d(lab_idx, part)
        leaky.append(macro_accuracy(y[part], fit_predict(x_audio[train], y[train], x_audio[part])))
    return float(np.mean(leaky))


def _eval_scores(meta: pd.DataFrame, proxies: dict[str, np.ndarray], y: np.ndarray, cities: list[str]) -> dict:
    """Each proxy trained on all labelled clips, scored on the evaluation clips (seen and unseen cities apart)."""
    split = meta.split.to_numpy()
    lab, is_eval = split == "labelled", split == "eval"
    unseen = is_eval & ~meta.location.isin(cities).to_numpy()
    seen = is_eval & ~unseen
    out = {}
    for name, x in proxies.items():
        pred = fit_predict(x[lab], y[lab], x[is_eval])
        out[name] = {
            "all": macro_accuracy(y[is_eval], pred),
            "seen_cities": macro_accuracy(y[seen], pred[seen[is_eval]]) if seen.any() else math.nan,
            "unseen_cities": macro_accuracy(y[unseen], pred[unseen[is_eval]]) if unseen.any() else math.nan,
        }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:5.1f} %"


def format_calibration(s: dict) -> str:
    """The calibration as a small table of macro accuracies."""
    ss, e, leak = s["session_split"], s["eval"], s["leakage"]

    def eval_row(v: dict) -> str:
        return f"{_pct(v['all'])}  (seen cities {_pct(v['seen_cities'])}, unseen {_pct(v['unseen_cities'])})"

    c = s["corpus"]
    def folds_row(v: dict) -> str:
        return f"{_pct(v['mean'])} +- {100 * v['std']:.1f}"

    rows = [
        ("audio only, split by session", folds_row(ss["audio"])),
        ("audio + city + hour, split by session", folds_row(ss["audio_meta"])),
        ("metadata only (proxy), split by session", folds_row(ss["meta"])),
        ("metadata only, Bayes-optimal (planted)", _pct(s["metadata_bayes_macro"])),
        ("audio only, random clip split (leaky)", _pct(leak["audio_random_clip_split"])),
        ("  the same labelled clips, split by session", _pct(leak["audio_session_split_labelled_clips"])),
        (f"long-range pair {' vs '.join(s['long_range_pair']['classes'])}, audio, by session (chance 50 %)",
         _pct(s["long_range_pair"]["audio_session_split"])),
        ("eval, audio only", eval_row(e["audio"])),
        ("eval, audio + city + hour", eval_row(e["audio_meta"])),
        ("chance", _pct(s["chance"])),
    ]
    head = f"corpus {c['dir']} (preset {c['preset']}, seed {c['seed']}); proxy: {s['proxy']}\nmacro accuracy"
    return "\n".join([head] + [f"  {name:<44} {value}" for name, value in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Calibrate a synthetic corpus with a pooled log-mel logistic-regression proxy.")
    ap.add_argument("dir", help="a corpus written by `ascbench data synth`")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = ap.parse_args(argv)
    s = calibrate(args.dir, folds=args.folds)
    print(json.dumps(s, indent=2) if args.json else format_calibration(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
