"""`ascbench predict`: the challenge submission CSV from a training run's best.pt."""
from __future__ import annotations

import argparse

from .options import add_command, add_quiet


def run(args: argparse.Namespace) -> int:
    from ..train.predict import predict_csv

    info = predict_csv(args.checkpoint, args.metadata, args.audio_dir, args.out, progress=not args.quiet)
    print(f"wrote {info['out']}: {info['rows']} rows ({info['unseen_city_rows']} from cities unseen in training)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "predict", "Write the challenge submission CSV from a checkpoint.", run,
                    "Fill scene_label of an evaluation CSV (same rows, order, header) from best.pt.")
    p.add_argument("--checkpoint", required=True, help="best.pt of a training run")
    p.add_argument("--metadata", required=True, help="evaluation CSV (official format, empty labels)")
    p.add_argument("--audio-dir", required=True, help="folder of the evaluation audio")
    p.add_argument("--out", required=True, help="submission CSV to write")
    add_quiet(p)
