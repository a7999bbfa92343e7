"""Shared test settings: small thread pools so the suite behaves on a 2-core CI machine."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support import REPO

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def apsipa_metadata_dir() -> Path:
    """The official APSIPA 2025 metadata CSVs shipped inside the package."""
    return REPO / "harness" / "data" / "apsipa2025"


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the session's Ray runtime, so `-m "not ray"` can leave them out."""
    for item in items:
        if "ray_runtime" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_runtime():
    """One real local Ray runtime for the whole test session (started on first use)."""
    import ray

    from harness.ray_runtime import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def micro_data_config(tmp_path_factory):
    """A DataConfig of the `micro` synthetic preset in a per-session cache (seconds to build)."""
    from harness.data.prepare import DataConfig, prepare_data

    cache = tmp_path_factory.mktemp("ascbench-cache")
    cfg = DataConfig(preset="micro", cache_dir=str(cache))
    prepare_data(cfg, seed=0, progress=False)
    return cfg
