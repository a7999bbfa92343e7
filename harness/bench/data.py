"""`ascbench bench data`: one epoch's data time from the feature cache vs. log-mels on the fly (the
same clips in the same shuffled batches), the share of a training step the cached path costs, and a
trial's start-up (constructing a `Trial`) with the driver's data handle vs. preparing its own data.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from ..data.audio import load_clip
from ..data.features import LogMel
from ..data.handle import DataHandle, make_handle, prepare_run_data
from ..train.config import RunConfig, compose_config
from ..train.trial import Trial
from .common import median_ms
from .train import train_step


def run_data_benchmark(quick: bool = False, model: str = "ascmamba_tiny", steps: int = 3) -> dict:
    torch.set_num_threads(2)
    cfg = compose_config([f"model={model}", "pseudo=none"])
    data = prepare_run_data(cfg, progress=True)
    trial = Trial(cfg, data=make_handle(data))
    arrays = trial.train_set
    batch = cfg.train.batch_size
    order = np.random.default_rng(0).permutation(len(arrays))
    if quick:
        order = order[: 4 * batch]
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    fe, seconds = data.front_end, data.seconds
    paths = data.corpus.clips.set_index("clip_id").loc[list(arrays.clip_ids), "path"].to_numpy()
    logmel = LogMel(fe)

    start = time.perf_counter()
    for idx in batches:
        trial.batches.batch(arrays, idx)
    cached = time.perf_counter() - start

    start = time.perf_counter()
    with torch.no_grad():
        for idx in batches:
            waves = torch.from_numpy(np.stack([load_clip(p, fe.sample_rate, seconds) for p in paths[idx]]))
            x = logmel(waves)
            trial.batches.normalise(x)
    on_the_fly = time.perf_counter() - start

    x, ctx = trial.batches.batch(arrays, batches[0])
    y = torch.from_numpy(arrays.labels[batches[0]])
    trial.model.train()
    step = median_ms(lambda: train_step(trial.model, trial.optimizer, x, ctx, y), steps, trial.device) / 1e3
    startup = trial_startup(cfg, trial.data, reps=3 if quick else 7)
    per_batch_cached = cached / len(batches)
    return {
        "clips": int(len(order)),
        "batches": len(batches),
        "batch_size": batch,
        "front_end": fe.to_dict(),
        "epoch_data_s_cache": cached,
        "epoch_data_s_on_the_fly": on_the_fly,
        "speedup_cache_vs_on_the_fly": on_the_fly / cached,
        "train_step_s": step,
        "model": model,
        "cache_share_of_step": per_batch_cached / (per_batch_cached + step),
        "threads": torch.get_num_threads(),
        **startup,
    }


def trial_startup(cfg: RunConfig, handle: DataHandle, reps: int) -> dict:
    """Median seconds to construct `Trial(cfg)` (it prepares its data: CSV, wav headers, split,
    cache key) and `Trial(cfg, data=handle)` (it memory-maps the cache), alternating the two."""
    times: dict[str, list[float]] = {"prepare": [], "handle": []}
    for _ in range(reps):
        for way, data in (("prepare", None), ("handle", handle)):
            start = time.perf_counter()
            Trial(cfg, data=data)
            times[way].append(time.perf_counter() - start)
    return {"trial_startup_s_prepare": statistics.median(times["prepare"]),
            "trial_startup_s_handle": statistics.median(times["handle"]), "trial_startup_reps": reps}


def format_data_table(r: dict) -> str:
    return "\n".join([
        f"data path, one epoch of {r['clips']} clips in {r['batches']} batches of {r['batch_size']}:",
        f"  from the feature cache (memory map): {r['epoch_data_s_cache'] * 1000:9.1f} ms",
        f"  log-mels on the fly (wav + mel):     {r['epoch_data_s_on_the_fly'] * 1000:9.1f} ms",
        f"  cache speed-up: {r['speedup_cache_vs_on_the_fly']:.1f}x (goal >= 10x)",
        f"  {r['model']} training step (batch {r['batch_size']}): {r['train_step_s'] * 1000:.1f} ms;"
        f" cached data is {100 * r['cache_share_of_step']:.2f}% of a step (goal < 5%)",
        f"trial start-up (median of {r['trial_startup_reps']}): preparing its own data "
        f"{r['trial_startup_s_prepare'] * 1000:.0f} ms, from the driver's data handle "
        f"{r['trial_startup_s_handle'] * 1000:.0f} ms",
    ])
