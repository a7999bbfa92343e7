"""Checkpoints: written atomically, loaded with `weights_only=True` (no arbitrary pickles)."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..io import write_atomic
from ..errors import UserError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"{path}: refused: not a checkpoint that loads with weights_only=True ({first})"
        ) from None
