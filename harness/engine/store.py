"""The results store of every engine experiment: `results/<id>.json`, one record per trial or run, and
`provenance.json`. Records are built in the driver from Ray's documented result API (`ResultGrid` over
`ExperimentAnalysis`, `Result.metrics_dataframe`): nothing else reads Ray's files, reports read these.
An ablation run's record exists only once it finished, so "done" is "the file exists"."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import write_text_atomic
from ..schema import ERROR, FINISHED, INTERRUPTED, MANIFEST, PROVENANCE, RECORDS, STOPPED
from .provenance import provenance


class ResultStore:
    """The records of one experiment folder; `write(rel, text)` lands a file in it (default: an atomic
    local write; a tune experiment on a URI storage passes its `ExperimentDir.write_text`)."""

    def __init__(self, root: str | Path, write: Callable[[str, str], Any] | None = None):
        self.root = Path(root)
        self.dir = self.root / RECORDS
        self._write = write or (lambda rel, text: write_text_atomic(self.root / rel, text))

    def _put_json(self, rel: str, data: Any) -> None:
        self._write(rel, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def done(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, record: dict) -> None:
        self._put_json(f"{RECORDS}/{record['id']}.json", record)

    def get(self, key: str) -> dict:
        return json.loads(self.path(key).read_text(encoding="utf-8"))

    def all(self) -> dict[str, dict]:
        return {p.stem: self.get(p.stem) for p in sorted(self.dir.glob("*.json"))}   # {} without the folder

    def write_provenance(self) -> None:
        """Where the numbers came from, recorded by the machine that runs the experiment."""
        self._put_json(PROVENANCE, provenance())

    def write_manifest(self, manifest: dict) -> None:
        self._put_json(MANIFEST, manifest)

    def manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.is_file():
            raise UserError(f"{self.root}: not an ablation folder (no {MANIFEST})")
        return json.loads(path.read_text(encoding="utf-8"))


def is_ablation_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def ended_status(errored: bool, last: dict, max_epochs: int) -> str | None:
    """How a trial ended, from its last result: Ray marks the result a trial ends on with `done`
    (the trainable returned, or the scheduler stopped it); None when it has not ended."""
    if errored:
        return ERROR
    if last.get("done"):
        return FINISHED if int(last.get("epoch") or 0) >= max_epochs else STOPPED
    return None


def read_results(experiment: str | Path) -> list[Any]:
    """Every trial of the Ray experiment at `experiment` as a `ray.tune.Result` ([] when Ray kept no state)."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    try:
        return list(ResultGrid(ExperimentAnalysis(str(experiment))))
    except (ValueError, FileNotFoundError):   # no experiment snapshot written yet
        return []


def trial_record(result: Any, key: str, max_epochs: int) -> dict:
    """One trial's record: config, status, per-epoch history and last reported metrics."""
    last = result.metrics or {}
    frame = result.metrics_dataframe
    history = [] if frame is None or frame.empty else json.loads(
        frame[[c for c in frame.columns if not c.startswith("config/")]].to_json(orient="records"))
    return {
        "id": key, "config": result.config,
        "status": ended_status(result.error is not None, last, max_epochs) or INTERRUPTED,
        "history": history,
        "metrics": {k: v for k, v in last.items() if k.startswith(("val/", "test/", "train/"))},
        "wall_s": last.get("time_total_s"), "trial_dir": str(result.path),
        "error": "" if result.error is None else str(result.error),
    }
