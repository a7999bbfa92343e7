"""One in-process `ascbench tune` run on the micro corpus, for the tune test modules."""
from __future__ import annotations

import time
from pathlib import Path

import yaml


def micro_overrides(micro_data_config) -> list[str]:
    return ["data.preset=micro", f"data.cache_dir={micro_data_config.cache_dir}"]


def run_micro_tune(tmp: Path, doc: dict, name: str, micro_data_config, **options) -> tuple[int, Path]:
    """Write `doc` to tmp/NAME.yaml, tune it into tmp/runs/NAME on the micro corpus; (exit code, folder)."""
    from harness.tune.run import TuneOptions, run_tune

    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    opts = TuneOptions(space=str(path), name=name, storage=str(tmp / "runs"),
                       overrides=micro_overrides(micro_data_config), **options)
    t0 = time.monotonic()
    rc = run_tune(opts)
    print(f"{name} tune: {time.monotonic() - t0:.1f}s")
    return rc, tmp / "runs" / name
