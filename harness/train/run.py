"""`ascbench train`: one trial to a folder, resumable, with everything needed to trust and reuse it.

Writes under OUT: config.yaml (resolved), split.json, metrics.csv (one row per epoch),
final.json (best epoch's per-class / per-city / confusion report, pseudo-label steps),
best.pt (inference bundle for `ascbench predict`) and last.pt (full state, for resuming).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import yaml
from tqdm import tqdm

from ..errors import UserError, make_dirs
from ..io import write_atomic, write_json_atomic, write_text_atomic
from .checkpoint import save_checkpoint
from .config import RunConfig, to_dict
from .trial import Trial

LAST = "last.pt"
BEST = "best.pt"


def run_training(cfg: RunConfig, out_dir: str | Path, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train `cfg` into `out_dir`, resuming from `out_dir/last.pt` when present.

    `stop_after` ends the process's work after that many epochs in total (for tests of resuming).
    """
    out = Path(out_dir)
    created = not out.exists()
    make_dirs(out, "output folder")
    try:
        return _train_into(cfg, out, progress, stop_after)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()   # only if nothing was written: a failure before the first epoch leaves no empty folder
        raise


def _train_into(cfg: RunConfig, out: Path, progress: bool, stop_after: int | None) -> dict:
    config_yaml = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    config_path = out / "config.yaml"
    if config_path.exists() and config_path.read_text() != config_yaml and (out / LAST).exists():
        raise UserError(f"{out} holds a run with a different config; choose another --out")
    trial = Trial(cfg, progress=progress)
    if (out / LAST).exists():
        trial.resume(out / LAST)
    write_text_atomic(config_path, config_yaml)
    write_json_atomic(out / "split.json", trial.data.split.to_dict())
    bar = tqdm(total=cfg.train.epochs, initial=trial.state.epoch, desc=cfg.model.name, unit="epoch",
               disable=not progress)

    def store(metrics: dict, final: dict | None) -> bool:
        save_checkpoint(out / LAST, trial.state_dict())
        if trial.state.best_epoch == trial.state.epoch:
            save_checkpoint(out / BEST, trial.inference_bundle(trial.best_model_state))
        write_atomic(out / "metrics.csv", lambda p: pd.DataFrame(trial.state.history).to_csv(p, index=False))
        if final is not None:
            write_json_atomic(out / "final.json", final)
        bar.update(trial.state.epoch - bar.n)
        bar.set_postfix({"val_macro": f"{metrics['val/macro_acc']:.3f}",
                         "best": f"{metrics['val/best_macro_acc']:.3f}"})
        return stop_after is None or trial.state.epoch < stop_after

    final = trial.run(store)
    bar.close()
    return final if final is not None else {"stopped_at": trial.state.epoch}


def summarise(final: dict) -> str:
    val = final["val"]
    lines = [
        f"best epoch {final['best_epoch']}/{final['epochs']} (chosen on validation): val macro acc "
        f"{val['macro_acc']:.4f}, acc {val['acc']:.4f}, log loss {val['log_loss']:.4f} (n={val['n']} clips)",
    ]
    test = final.get("test")
    if test:
        unseen = (f"; unseen cities {test['unseen_macro_acc']:.4f} (n={test['unseen_n']})"
                  if "unseen_macro_acc" in test else "")
        lines.append(f"test (that checkpoint, reported only): macro acc {test['macro_acc']:.4f}, "
                     f"acc {test['acc']:.4f}, log loss {test['log_loss']:.4f} (n={test['n']} clips){unseen}")
    for step in final["pseudo_steps"]:
        acc = step.get("accuracy_kept")
        lines.append(f"pseudo step {step['step']}: kept {step['kept']}/{step['pool']}"
                     + (f", {acc:.1%} correct" if acc is not None else ""))
    return "\n".join(lines)
