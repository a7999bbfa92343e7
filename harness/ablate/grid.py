"""The ablation grid: a small YAML file naming a base, its variants, the baselines and the seeds.

    name: ascmamba_ablation
    seeds: 5                      # or a list, e.g. [0, 1, 2]
    resources: {cpu: 1, gpu: 0}   # per run
    base:
      label: ascmamba              # how the base appears in tables
      config: null                # a saved run config; `--from-tune` puts best_config.yaml here
      overrides: [model=ascmamba_small]   # Hydra overrides, used only when config is null
    variants:                     # name -> overrides on top of the base
      fusion_none: [model.fusion=none]
      depth_plus_1: [model.num_blocks+=1]
    baselines:                    # name -> overrides; `model=<name>` is implied when absent
      cpmobile: []

Every run's config is resolved and validated here, before anything starts, so a typo in
a variant fails in a second with one line naming the file and the key.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from .identity import run_hash
from .overrides import apply_overrides

TOP_KEYS = ("name", "description", "seeds", "resources", "base", "variants", "baselines")
BASE_KEYS = ("label", "config", "overrides")
PATH_KEYS = ("cache_dir", "root", "metadata", "audio_dir", "eval_metadata")
DEFAULT_SEEDS = 5


@dataclass(frozen=True)
class Arm:
    """One row of the ablation table: the base, a variant of it, or a baseline."""

    name: str
    kind: str                     # base | variant | baseline
    overrides: tuple[str, ...]


@dataclass
class Grid:
    path: str
    name: str
    description: str
    base_label: str
    base_config: str | None
    base_overrides: tuple[str, ...]
    arms: list[Arm]
    seeds: list[int]
    resources: dict[str, float]
    cli_overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "path": self.path, "name": self.name, "description": self.description,
            "base": {"label": self.base_label, "config": self.base_config, "overrides": list(self.base_overrides)},
            "arms": [{"name": a.name, "kind": a.kind, "overrides": list(a.overrides)} for a in self.arms],
            "seeds": self.seeds, "resources": self.resources, "cli_overrides": list(self.cli_overrides),
        }


@dataclass(frozen=True)
class PlannedRun:
    arm: str
    kind: str
    seed: int
    hash: str
    config: dict = field(repr=False, hash=False, compare=False)


def _fail(path: str, key: str, msg: str) -> UserError:
    return UserError(f"{path}: {key}: {msg}")


def _str_list(path: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise _fail(path, key, "expected a list of key=value strings")
    return tuple(value)


def _seeds(path: str, value: Any) -> list[int]:
    if isinstance(value, bool) or value is None:
        raise _fail(path, "seeds", "expected a positive integer or a list of integers")
    if isinstance(value, int):
        if value < 1:
            raise _fail(path, "seeds", f"expected a positive integer, got {value}")
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if len(set(value)) != len(value):
            raise _fail(path, "seeds", "seeds repeat")
        return list(value)
    raise _fail(path, "seeds", "expected a positive integer or a list of integers")


def resolve_from_tune(name_or_dir: str, storage: str | Path) -> str:
    """`best_config.yaml` of a tune run given its folder, the file itself, or its name under `storage`."""
    p = Path(name_or_dir)
    for candidate in (p if p.suffix in (".yaml", ".yml") else p / "best_config.yaml",
                      Path(storage) / name_or_dir / "best_config.yaml"):
        if candidate.is_file():
            return str(candidate.resolve())
    raise UserError(f"--from-tune {name_or_dir}: no best_config.yaml there or under {storage}")


def load_grid(path: str | Path, from_tune_config: str | None = None, seeds: int | None = None,
              cli_overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    """Parse and check a grid file; `from_tune_config` replaces the base, `seeds` the seed list."""
    from search_spaces import resolve

    try:
        path = str(resolve(str(path)))
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
    except FileNotFoundError:
        raise UserError(f"{path}: ablation grid not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise UserError(f"{path}: {where}: {getattr(exc, 'problem', None) or 'not valid YAML'}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    for key in raw:
        if key not in TOP_KEYS:
            raise _fail(path, str(key), f"unknown key (known: {', '.join(TOP_KEYS)})")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise _fail(path, "base", "expected a mapping with label, config, overrides")
    for key in base:
        if key not in BASE_KEYS:
            raise _fail(path, f"base.{key}", f"unknown key (known: {', '.join(BASE_KEYS)})")
    base_config = from_tune_config or base.get("config")
    if base_config is not None:
        if not isinstance(base_config, str):
            raise _fail(path, "base.config", "expected a path to a run config")
        if not from_tune_config and not Path(base_config).is_absolute():
            base_config = str((Path(path).parent / base_config).resolve())
    label = str(base.get("label") or "base")
    arms = [Arm(label, "base", ())]
    for section, kind in (("variants", "variant"), ("baselines", "baseline")):
        entries = raw.get(section) or {}
        if not isinstance(entries, dict):
            raise _fail(path, section, "expected a mapping of name -> list of key=value overrides")
        for name, overrides in entries.items():
            key = f"{section}.{name}"
            if any(a.name == str(name) for a in arms):
                raise _fail(path, key, "name used twice")
            items = _str_list(path, key, overrides)
            if kind == "baseline" and not any(i.split("=", 1)[0].strip() == "model" for i in items):
                items = (f"model={name}",) + items
            arms.append(Arm(str(name), kind, items))
    resources = raw.get("resources") or {}
    if not isinstance(resources, dict) or not all(k in ("cpu", "gpu") and isinstance(v, (int, float)) and v >= 0
                                                  for k, v in resources.items()):
        raise _fail(path, "resources", "expected {cpu: N, gpu: N} with non-negative numbers")
    grid = Grid(
        path=path,
        name=str(raw.get("name") or Path(path).stem),
        description=str(raw.get("description") or ""),
        base_label=label,
        base_config=base_config,
        base_overrides=() if from_tune_config else _str_list(path, "base.overrides", base.get("overrides")),
        arms=arms,
        seeds=list(range(seeds)) if seeds else _seeds(path, raw.get("seeds", DEFAULT_SEEDS)),
        resources={"cpu": float(resources.get("cpu", 1)), "gpu": float(resources.get("gpu", 0))},
        cli_overrides=tuple(cli_overrides),
    )
    plan_runs(grid)  # resolve everything now: errors surface before any run starts
    return grid


def _absolute_paths(cfg: dict) -> dict:
    """Ray runs trials in their own folders: relative data paths must not depend on the cwd."""
    for key in PATH_KEYS:
        value = cfg["data"].get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            cfg["data"][key] = str(Path(value).resolve())
    return cfg


def base_dict(grid: Grid) -> dict:
    from ..train.config import compose_config, load_config, to_dict

    if grid.base_config:
        cfg = to_dict(load_config(grid.base_config))
    else:
        try:
            cfg = to_dict(compose_config(list(grid.base_overrides)))
        except ValueError as exc:
            raise _fail(grid.path, "base.overrides", str(exc)) from None
    try:
        return apply_overrides(cfg, grid.cli_overrides)
    except (ValueError, KeyError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise UserError(f"command-line override: {msg}") from None


def plan_runs(grid: Grid) -> list[PlannedRun]:
    """Every (arm, seed) with its validated config and hash, base first."""
    from ..train.config import from_dict, to_dict

    base = base_dict(grid)
    threads = max(1, int(grid.resources["cpu"]))
    runs = []
    for arm in grid.arms:
        section = {"base": "base", "variant": "variants", "baseline": "baselines"}[arm.kind]
        key = "base" if arm.kind == "base" else f"{section}.{arm.name}"
        for seed in grid.seeds:
            try:
                cfg = copy.deepcopy(base)
                cfg["seed"] = seed
                if cfg["data"]["split_seed"] is None:  # pin the split to the pairing seed, so an arm
                    cfg["data"]["split_seed"] = seed   # that reseeds (`seed+=1000`) keeps the same split
                cfg = apply_overrides(cfg, arm.overrides)
                cfg = to_dict(from_dict(_absolute_paths(cfg)))
                _check_model(cfg)
            except (ValueError, KeyError, TypeError) as exc:
                msg = exc.args[0] if exc.args else str(exc)
                raise _fail(grid.path, key, str(msg).splitlines()[0]) from None
            cfg["train"]["threads"] = cfg["train"]["threads"] or threads
            runs.append(PlannedRun(arm.name, arm.kind, seed, run_hash(cfg), cfg))
    return runs


def _check_model(cfg: dict) -> None:
    """Build the model once on the meta device: catches e.g. num_blocks=0 or a bad fusion name."""
    import torch

    from ascmamba import create_model

    kwargs = {k: v for k, v in cfg["model"].items() if k != "name" and v is not None}
    with torch.device("meta"):
        create_model(cfg["model"]["name"], **kwargs)
