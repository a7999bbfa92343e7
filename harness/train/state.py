"""What a trial checkpoints besides weights and optimiser: its progress and the random generators.

Every epoch reseeds from (seed, epoch), so a resumed run replays the same data order,
augmentation and dropout as an uninterrupted one; the generator states are saved too, so a
resume mid-stage continues bit for bit.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch

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
        return {"epoch": self.epoch, "best_macro_acc": self.best_macro_acc, "best_epoch": self.best_epoch,
                "history": self.history, "pseudo_ids": list(self.pseudo_ids),
                "pseudo_labels": torch.tensor(self.pseudo_labels, dtype=torch.long),
                "pseudo_steps": self.pseudo_steps, "best_test": self.best_test}

    @classmethod
    def from_dict(cls, state: dict) -> TrialState:
        return cls(epoch=int(state["epoch"]), best_macro_acc=float(state["best_macro_acc"]),
                   best_epoch=int(state["best_epoch"]), history=list(state["history"]),
                   pseudo_ids=list(state["pseudo_ids"]), pseudo_labels=state["pseudo_labels"].tolist(),
                   pseudo_steps=list(state["pseudo_steps"]), best_test=dict(state.get("best_test", {})))


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
