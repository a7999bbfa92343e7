"""A small real ablation on the `micro` corpus, shared by test_ablate.py and test_report.py.

Both modules call `micro_ablation`; the second call finds every run hash done and trains
nothing, so the session pays for the runs once.
"""
from __future__ import annotations

from pathlib import Path

import yaml

GRID = {
    "name": "micro",
    "seeds": 2,
    "resources": {"cpu": 1, "gpu": 0},
    "base": {"label": "tiny", "overrides": ["model=ascmamba_tiny", "train.epochs=2", "pseudo=none",
                                            "train.batch_size=16"]},
    "variants": {"fusion_none": ["model.fusion=none"]},
    "baselines": {"cpmobile": []},
}


def micro_ablation(tmp_path_factory, data_cfg) -> tuple[Path, dict]:
    from harness.ablate.execute import run_ablation
    from harness.ablate.grid import load_grid

    base = tmp_path_factory.getbasetemp() / "micro-ablation"
    base.mkdir(exist_ok=True)
    grid_path = base / "grid.yaml"
    grid_path.write_text(yaml.safe_dump(GRID))
    grid = load_grid(grid_path, cli_overrides=["data.preset=micro", f"data.cache_dir={data_cfg.cache_dir}"])
    manifest = run_ablation(grid, base / "runs", progress=False)
    return base / "runs" / "micro", manifest
