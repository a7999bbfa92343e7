"""Which runs live under a folder: a tune experiment, an ablation, or a parent of several."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.engine.store import is_ablation_dir
from harness.errors import UserError

TUNE_MARKERS = ("results.parquet", "results.csv", "space.json")


def is_tune_dir(path: Path) -> bool:
    return any((path / m).is_file() for m in TUNE_MARKERS)


@dataclass
class Found:
    tune: list[Path] = field(default_factory=list)
    ablation: list[Path] = field(default_factory=list)


def discover(run_dir: str | Path) -> Found:
    """The folder itself if it is a run, else its direct sub-folders that are."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    found = Found()
    candidates = ([root] if (is_tune_dir(root) or is_ablation_dir(root))
                  else sorted(p for p in root.iterdir() if p.is_dir()))
    for p in candidates:
        if is_ablation_dir(p):
            found.ablation.append(p)
        elif is_tune_dir(p):
            found.tune.append(p)
    if not found.tune and not found.ablation:
        raise UserError(f"{root}: no tune run (results.parquet/csv, space.json) or ablation (ablation.json) here")
    return found
