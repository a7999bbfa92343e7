"""Shared test settings: small thread pools so the suite behaves on a 2-core CI machine."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def apsipa_metadata_dir() -> Path:
    """The official APSIPA 2025 metadata CSVs shipped inside the package."""
    return REPO / "harness" / "data" / "apsipa2025"
