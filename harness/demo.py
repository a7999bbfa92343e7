"""`ascbench demo` / `make demo`: the main job end to end on embedded defaults.

Runs what exists so far: the registry table, then one training step (forward,
backward, optimiser) of every registered model on a CPU-sized batch.
"""
from __future__ import annotations

import time

import torch

from ascmamba import MetaContext, create_model, get_spec, list_models
from ascmamba.metadata import TIME_FEATURES

from .model_table import format_registry_table, registry_table


def smoke_step(name: str, batch: int = 4, seconds: float = 3.0, seed: int = 0) -> tuple[float, float]:
    """One AdamW step of `name` on random log-mels; returns (loss, seconds taken)."""
    torch.manual_seed(seed)
    spec = get_spec(name)
    model = create_model(name)
    mel = torch.randn(batch, 1, spec.front_end.frames(seconds), spec.front_end.n_mels)
    context = MetaContext(torch.randint(0, 9, (batch,)), torch.randn(batch, TIME_FEATURES))
    target = torch.randint(0, model.num_classes, (batch,))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(mel, context), target)
    loss.backward()
    optimiser.step()
    return float(loss), time.perf_counter() - start


def run_demo() -> int:
    print("== model registry ==")
    print(format_registry_table(registry_table()))
    print("\n== one training step per model (batch 4, 3-s clips, CPU) ==")
    for name in list_models():
        loss, seconds = smoke_step(name)
        print(f"{name:28s} loss {loss:6.3f}  {seconds * 1000:8.1f} ms")
    return 0
