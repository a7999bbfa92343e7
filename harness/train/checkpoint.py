"""Saved state: checkpoints, written atomically, loaded with `weights_only=True` (no arbitrary
pickles), and what a trial saves besides weights and optimiser: its progress and the random generators.

A file that does not load (truncated at any byte, not a checkpoint, a pickle of anything but
tensors and plain data) is refused in one line; so are weights that do not fit the model
they claim to be. Every epoch reseeds from (seed, epoch), so a resumed run replays the same data
order, augmentation and dropout as an uninterrupted one; the generator states are saved too, so a
resume mid-stage continues bit for bit.
"""
from __future__ import annotations

import copy
import io
import pickle
import random
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError, fs_error, is_fs_error
from ..io import write_bytes_atomic

# 2: the scheduler's state is torch's LambdaLR state (version 1 saved {progress, base_lrs})
CHECKPOINT_VERSION = 2
STATE_KEYS = ("model_state", "config", "optimizer", "scheduler", "epoch", "best_macro_acc", "best_epoch",
              "best_model_state", "history", "pseudo_ids", "pseudo_labels", "pseudo_steps", "rng")


@dataclass
class TrialState:
    """Everything that changes between epochs; saved whole in every checkpoint."""

    epoch: int = 0                       # epochs completed
    best_macro_acc: float = -1.0
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    pseudo_ids: list[str] = field(default_factory=list)    # clips currently pseudo-labelled
    pseudo_labels: list[int] = field(default_factory=list)
    pseudo_steps: list[dict] = field(default_factory=list)  # summary of each labelling step
    best_test: dict = field(default_factory=dict)  # test scalars of the validation-chosen checkpoint

    def to_dict(self) -> dict:
        return {**asdict(self), "pseudo_labels": torch.tensor(self.pseudo_labels, dtype=torch.long)}

    @classmethod
    def from_dict(cls, state: dict) -> TrialState:
        saved = {f.name: copy.copy(state[f.name]) for f in fields(cls) if f.name in state}  # best_test: may be absent
        return cls(**{**saved, "pseudo_labels": state["pseudo_labels"].tolist()})


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**31 - 1)


def reseed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """The global torch, Python and NumPy generator states, as tensors and plain data
    (checkpoints load with `weights_only=True`)."""
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "numpy_pos": int(np.random.get_state()[2])}


def set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    random.setstate((3, tuple(rng["python"]), None))
    np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), int(rng["numpy_pos"]), 0, 0.0))


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
