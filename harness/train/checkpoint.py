"""Checkpoints: written atomically, loaded with `weights_only=True` (no arbitrary pickles).

A file that does not load (truncated at any byte, not a checkpoint, a pickle of anything but
tensors and plain data) is refused in one line; so are weights that do not fit the model
they claim to be.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError, fs_error, is_fs_error
from ..io import write_bytes_atomic


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    buffer = io.BytesIO()   # serialised first: a full disk is then an OSError naming the path
    torch.save(state, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if is_fs_error(exc):
            raise fs_error(exc, path, "read the checkpoint") from None
        raise _refused(path, exc) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, UnicodeDecodeError) as exc:   # what a truncated or foreign file raises in torch.load
        raise _refused(path, exc) from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: refused: expected a checkpoint dictionary, found {type(state).__name__}")
    return state


def _refused(path: Path, exc: BaseException) -> UserError:
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return UserError(f"{path}: refused: not a checkpoint that loads with weights_only=True ({first})")


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: str | Path, what: str) -> None:
    """`model.load_state_dict(state)`, or one line saying how the weights do not fit `what`."""
    result = model.state_dict()
    missing = [k for k in result if k not in state]
    unexpected = [k for k in state if k not in result]
    wrong = [k for k in result if k in state and getattr(state[k], "shape", None) != result[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {name} (first: {v[0]})" for name, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if v]
        raise UserError(f"{path}: refused: its weights do not fit {what}: tensors " + "; ".join(parts))
    model.load_state_dict(state)
