"""`ascbench data synth` and `ascbench data prepare`: write the synthetic corpus, or load, split and cache a dataset."""
from __future__ import annotations

import argparse
import json

from .data.prepare import DataConfig, prepare_data
from .errors import UserError


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """--metadata/--audio-dir/--source, shared by every command that reads a dataset."""
    p.add_argument("--metadata", help="APSIPA metadata CSV (or DCASE meta file with --source dcase); default: built-in synthetic corpus")
    p.add_argument("--audio-dir", help="folder of the audio (DCASE: the dataset root)")
    p.add_argument("--source", choices=["apsipa", "dcase", "synthetic"], help="dataset format (default: apsipa with --metadata, else synthetic)")
    p.add_argument("--test-metadata", help="labelled test CSV (APSIPA format) or evaluation fold (DCASE; default "
                                           "evaluation_setup/fold1_evaluate.csv under the dataset root); without it "
                                           "APSIPA holds out whole sessions (data.test_fraction, default 0.2)")
    p.add_argument("--test-city", action="append", metavar="CITY",
                   help="hold every labelled clip of CITY out as test (APSIPA; repeatable)")


def test_data_overrides(args: argparse.Namespace) -> dict:
    """--test-metadata/--test-city as `data.*` config keys."""
    out: dict = {}
    if getattr(args, "test_metadata", None):
        out["data.test_metadata"] = args.test_metadata
    if getattr(args, "test_city", None):
        out["data.test_cities"] = list(args.test_city)
    return out


def data_config_from_args(args: argparse.Namespace, **extra) -> DataConfig:
    if bool(args.metadata) != bool(args.audio_dir):
        raise UserError("--metadata and --audio-dir go together")
    source = args.source or ("apsipa" if args.metadata else "synthetic")
    test = {k.split(".", 1)[1]: v for k, v in test_data_overrides(args).items()}
    return DataConfig(source=source, metadata=args.metadata, audio_dir=args.audio_dir, **test, **extra)


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synth import synthesize

    s = synthesize(args.out, preset=args.preset, seed=args.seed, progress=not args.quiet)
    verb = "wrote" if s.created else "reused"
    print(f"{verb} {s.out_dir}: {s.n_labelled} labelled, {s.n_unlabelled} unlabelled, {s.n_eval} eval clips "
          f"of {s.clip_seconds:g} s at {s.sample_rate} Hz ({s.n_sessions} sessions)")
    print(f"  metadata: {s.dev_csv.name}, {s.eval_csv.name}; true classes (never read by training): {s.truth_csv.name}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    cfg = data_config_from_args(
        args, val_fraction=args.val_fraction, holdout_cities=list(args.holdout_city or []),
        preset=args.preset, cache_dir=args.cache_dir, on_bad_audio=args.on_bad_audio,
    )
    data = prepare_data(cfg, seed=args.seed, progress=not args.quiet)
    print(json.dumps(data.describe(), indent=2))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .data.audio_check import probe_audio, summarise
    from .data.prepare import load_corpus

    cfg = data_config_from_args(args, preset=args.preset, on_bad_audio=args.on_bad_audio)
    corpus, seconds, _ = load_corpus(cfg, progress=not args.quiet)
    print(summarise(probe_audio(corpus, cfg.on_bad_audio, seconds)))
    return 0


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="Write the synthetic corpus, or load, split and cache a dataset.",
                       description="Write the synthetic corpus, or load, split and cache a dataset.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = dsub.add_parser("synth", help="Write the synthetic corpus in the official APSIPA format.",
                        description="Write the synthetic corpus (wavs + official-format CSVs + truth.csv).")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--preset", default="tiny", choices=["micro", "tiny", "small", "cas"], help="corpus size (default tiny)")
    s.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_synth)

    c = dsub.add_parser("check", help="Validate a dataset (metadata and every wav header) and print a summary.",
                        description="Validate a dataset without training: metadata rows, audio files (missing, "
                                    "corrupt, empty) and a summary per class, city, session, duration and sample rate.")
    add_data_arguments(c)
    c.add_argument("--preset", default="tiny", choices=["micro", "tiny", "small", "cas"], help="synthetic corpus size")
    c.add_argument("--on-bad-audio", default="error", choices=["error", "skip"],
                   help="stop at the first bad wav (default) or skip bad clips and list them")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=cmd_check)

    q = dsub.add_parser("prepare", help="Load a dataset strictly, split it by session, build its feature cache.",
                        description="Load a dataset strictly, split it by session and build its log-mel cache; prints a summary.")
    add_data_arguments(q)
    q.add_argument("--preset", default="tiny", choices=["micro", "tiny", "small", "cas"], help="synthetic corpus size")
    q.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    q.add_argument("--val-fraction", type=float, default=0.2)
    q.add_argument("--holdout-city", action="append", help="leave this city out of training (repeatable)")
    q.add_argument("--cache-dir", help="feature cache folder (default $ASCBENCH_CACHE or ~/.cache/ascbench)")
    q.add_argument("--on-bad-audio", default="error", choices=["error", "skip"],
                   help="stop at the first bad wav (default) or skip bad clips and list them")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_prepare)
