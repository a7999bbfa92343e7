"""The ablation results store: one JSON record per finished run hash, written atomically.

Layout of an ablation folder:

    ablation.json        what was asked: the grid, the plan (arm, seed -> hash), provenance, wall time
    results/<hash>.json  one finished run: its config, final report, params/MACs, wall time
    ray/                 Ray Tune experiments (per-epoch checkpoints, for --resume)

A record exists only once its run finished, so "done" is simply "the file exists".
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..io import write_json_atomic

MANIFEST = "ablation.json"
RESULTS = "results"


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.dir = self.root / RESULTS

    def path(self, run_hash: str) -> Path:
        return self.dir / f"{run_hash}.json"

    def done(self, run_hash: str) -> bool:
        return self.path(run_hash).is_file()

    def put(self, record: dict) -> Path:
        return write_json_atomic(self.path(record["hash"]), record)

    def get(self, run_hash: str) -> dict:
        return json.loads(self.path(run_hash).read_text(encoding="utf-8"))

    def all(self) -> dict[str, dict]:
        if not self.dir.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.dir.glob("*.json"))}

    def write_manifest(self, manifest: dict) -> Path:
        return write_json_atomic(self.root / MANIFEST, manifest)

    def manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.is_file():
            raise UserError(f"{self.root}: not an ablation folder (no {MANIFEST})")
        return json.loads(path.read_text(encoding="utf-8"))


def is_ablation_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()
