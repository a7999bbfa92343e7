"""`ascbench train` and `ascbench predict`."""
from __future__ import annotations

import argparse

import json

from .data_cli import add_data_arguments, test_data_overrides
from .errors import UserError


def cmd_train(args: argparse.Namespace) -> int:
    from .train.config import load_config
    from .train.run import run_training, summarise

    overrides = list(args.overrides)
    if args.model:
        overrides.append(f"model.name={args.model}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.metadata or args.audio_dir or args.source:
        if bool(args.metadata) != bool(args.audio_dir):
            raise UserError("--metadata and --audio-dir go together")
        source = args.source or "apsipa"
        if args.config is None:
            overrides.append(f"data={source}")
        else:
            overrides.append(f"data.source={source}")
        overrides += [f"data.metadata={args.metadata}", f"data.audio_dir={args.audio_dir}"]
    overrides += [f"{k}={json.dumps(v)}" for k, v in test_data_overrides(args).items()]
    cfg = load_config(args.config, overrides)
    final = run_training(cfg, args.out, progress=not args.quiet)
    print(summarise(final))
    print(f"wrote {args.out}: config.yaml, metrics.csv, final.json, best.pt")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .train.predict import predict_csv

    info = predict_csv(args.checkpoint, args.metadata, args.audio_dir, args.out, progress=not args.quiet)
    print(f"wrote {info['out']}: {info['rows']} rows ({info['unseen_city_rows']} from cities unseen in training)")
    return 0


def add_train_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="Train one model (semi-supervised, resumable) and write its results.",
                       description="Train one model with two-step pseudo-labelling; re-running with the same --out "
                                   "resumes from the last epoch. Extra key=value arguments override the config "
                                   "(Hydra syntax, e.g. model=cpmobile pseudo=one_step train.lr=0.001).")
    p.add_argument("--model", help="registered model name (see `ascbench models`)")
    add_data_arguments(p)
    p.add_argument("--epochs", type=int, help="total epochs over all pseudo-label stages")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order, augmentation and split")
    p.add_argument("--config", help="a saved run config (e.g. best_config.yaml of a tune run)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=cmd_train)

    q = sub.add_parser("predict", help="Write the challenge submission CSV from a checkpoint.",
                       description="Fill scene_label of an evaluation CSV (same rows, order, header) from best.pt.")
    q.add_argument("--checkpoint", required=True, help="best.pt of a training run")
    q.add_argument("--metadata", required=True, help="evaluation CSV (official format, empty labels)")
    q.add_argument("--audio-dir", required=True, help="folder of the evaluation audio")
    q.add_argument("--out", required=True, help="submission CSV to write")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_predict)
