"""`ascbench bench train`: training throughput of every registered model at its default front end,
next to parameters and MACs, and as a ratio to the DCASE-style CP-Mobile CNN measured in the same run.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ascmamba import MetaContext, create_model, get_spec, list_models
from ascmamba.complexity import model_complexity
from ascmamba.metadata import TIME_FEATURES

from .common import median_ms

REFERENCE = "cpmobile"


def training_step_inputs(name: str, batch: int, seconds: float, device: torch.device) -> tuple:
    """(model, AdamW, log-mels, metadata context, labels) for training steps of `name` on random
    `seconds`-s clips, seeded, on `device` (shared with gpu_check's bf16 step)."""
    spec = get_spec(name)
    torch.manual_seed(0)
    model = create_model(name).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, spec.front_end.frames(seconds), spec.front_end.n_mels, device=device)
    ctx = MetaContext(torch.ones(batch, dtype=torch.long, device=device),
                      torch.zeros(batch, TIME_FEATURES, device=device))
    y = torch.randint(0, model.num_classes, (batch,), device=device)
    return model, opt, x, ctx, y


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, ctx: MetaContext,
               y: torch.Tensor) -> None:
    """One full training step, what `bench train` and `bench data` time: forward, backward, optimiser step."""
    loss = F.cross_entropy(model(x, ctx), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _throughput(name: str, batch: int, seconds: float, steps: int, device: torch.device) -> float:
    model, opt, x, ctx, y = training_step_inputs(name, batch, seconds, device)
    return batch / (median_ms(lambda: train_step(model, opt, x, ctx, y), steps, device) / 1e3)


def run_train_benchmark(quick: bool = False, models: list[str] | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(2)
    batch, steps = (4, 1) if quick else (8, 3)
    seconds = 10.0
    names = models or list_models()
    if REFERENCE not in names:
        names = [REFERENCE, *names]
    rows = []
    for name in names:
        spec = get_spec(name)
        cx = model_complexity(create_model(name), spec.front_end, seconds)
        rows.append({"model": name, "family": spec.family, "params": cx.params, "macs": cx.macs,
                     "clips_per_s": _throughput(name, batch, seconds, steps, device)})
    ref = next(r["clips_per_s"] for r in rows if r["model"] == REFERENCE)
    for r in rows:
        r["vs_reference"] = r["clips_per_s"] / ref
    return {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "batch": batch, "clip_seconds": seconds, "steps": steps, "reference": REFERENCE, "rows": rows}


def format_train_table(r: dict) -> str:
    lines = [f"training throughput, {r['device']}, batch {r['batch']} of {r['clip_seconds']:g}-s clips, "
             f"median of {r['steps']} steps after a warm-up; reference {r['reference']}",
             f"{'model':28s} {'family':12s} {'params':>10s} {'GMACs/clip':>11s} {'clips/s':>9s} {'vs ref':>8s}"]
    for row in sorted(r["rows"], key=lambda x: -x["clips_per_s"]):
        lines.append(f"{row['model']:28s} {row['family']:12s} {row['params'] / 1e3:9.1f}k {row['macs'] / 1e9:11.3f} "
                     f"{row['clips_per_s']:9.2f} {row['vs_reference']:7.3f}x")
    return "\n".join(lines)
