"""`ascbench data synth|check|prepare`: write the synthetic corpus; validate, or load, split and cache a dataset."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .options import PRESETS, add_command, add_data_arguments, add_quiet, data_overrides

if TYPE_CHECKING:
    from ..data.prepare import DataConfig


def data_config(args: argparse.Namespace, **extra: Any) -> DataConfig:
    """The `data` config of the dataset options (`add_dataset_arguments`) and the command's own keys."""
    from ..data.prepare import DataConfig

    keys = {key.removeprefix("data."): value for key, value in data_overrides(args).items()}
    return DataConfig(**keys, preset=args.preset, on_bad_audio=args.on_bad_audio, **extra)


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synth import synthesize

    s = synthesize(args.out, preset=args.preset, seed=args.seed, progress=not args.quiet)
    verb = "wrote" if s.created else "reused"
    print(f"{verb} {s.out_dir}: {s.n_labelled} labelled, {s.n_unlabelled} unlabelled, {s.n_eval} eval clips "
          f"of {s.clip_seconds:g} s at {s.sample_rate} Hz ({s.n_sessions} sessions)")
    print(f"  metadata: {s.dev_csv.name}, {s.eval_csv.name}; true classes (never read by training): {s.truth_csv.name}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.audio_check import probe_audio, summarise
    from ..data.prepare import load_corpus

    cfg = data_config(args)
    corpus, seconds, _ = load_corpus(cfg, progress=not args.quiet)
    print(summarise(probe_audio(corpus, cfg.on_bad_audio, seconds)))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare_data

    cfg = data_config(args, val_fraction=args.val_fraction, holdout_cities=list(args.holdout_city or []),
                      cache_dir=args.cache_dir)
    data = prepare_data(cfg, seed=args.seed, progress=not args.quiet)
    print(json.dumps(data.describe(), indent=2))
    return 0


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """What `check` and `prepare` share: the data options, the synthetic preset, bad-audio policy, --quiet."""
    add_data_arguments(parser)
    parser.add_argument("--preset", default="tiny", choices=PRESETS, help="synthetic corpus size")
    parser.add_argument("--on-bad-audio", default="error", choices=["error", "skip"],
                        help="stop at the first bad wav (default) or skip bad clips and list them")
    add_quiet(parser)


def add_parser(sub: argparse._SubParsersAction) -> None:
    what = "Write the synthetic corpus, or load, split and cache a dataset."
    p = sub.add_parser("data", help=what, description=what)
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = add_command(actions, "synth", "Write the synthetic corpus in the official APSIPA format.", run_synth,
                    "Write the synthetic corpus (wavs + official-format CSVs + truth.csv).")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--preset", default="tiny", choices=PRESETS, help="corpus size (default tiny)")
    s.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    add_quiet(s, "no progress bar")

    c = add_command(actions, "check", "Validate a dataset (metadata and every wav header) and print a summary.",
                    run_check, "Validate a dataset without training: metadata rows, audio files (missing, "
                               "corrupt, empty) and a summary per class, city, session, duration and sample rate.")
    add_dataset_arguments(c)

    q = add_command(actions, "prepare", "Load a dataset strictly, split it by session, build its feature cache.",
                    run_prepare, "Load a dataset strictly, split it by session and build its log-mel cache; "
                                 "prints a summary.")
    add_dataset_arguments(q)
    q.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    q.add_argument("--val-fraction", type=float, default=0.2)
    q.add_argument("--holdout-city", action="append", help="leave this city out of training (repeatable)")
    q.add_argument("--cache-dir", help="feature cache folder (default $ASCBENCH_CACHE or ~/.cache/ascbench)")
