"""The ablation grid: a small YAML file (`GridFile`; `search_spaces/ablation*.yaml`) naming a base
(Hydra overrides or a saved run config), its variants (overrides on the base, `model.num_blocks+=1`
too), the baselines (`model=<name>` implied) and the seeds.

Every run's config is resolved and validated here, before anything starts, so a typo in
a variant fails in a second with one line naming the file and the key.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..config_file import Resources, check_resources, load_typed, read_yaml
from ..errors import UserError
from ..train.overrides import apply_overrides, parse_overrides
from .identity import run_hash

PATH_KEYS = ("cache_dir", "root", "metadata", "audio_dir", "eval_metadata")
DEFAULT_SEEDS = 5


@dataclass
class GridBase:
    label: str = "base"              # how the base appears in tables
    config: str | None = None     # a saved run config; relative to the grid file
    overrides: list[str] = field(default_factory=list)   # used only when config is null


@dataclass
class GridFile:
    """The schema of a grid file; OmegaConf rejects unknown keys and wrong types."""

    name: str | None = None       # default: the file's stem
    description: str = ""
    seeds: Any = DEFAULT_SEEDS       # a positive integer or a list of integers
    resources: Resources = field(default_factory=Resources)
    base: GridBase = field(default_factory=GridBase)
    variants: dict[str, list[str] | None] = field(default_factory=dict)
    baselines: dict[str, list[str] | None] = field(default_factory=dict)


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


def _arms(path: str, doc: dict) -> list[Arm]:
    """The base, then the variants and baselines; every override is parsed now (one line naming
    the arm if it is not `key=value`), and a baseline selects `model=<name>` unless it names one."""
    arms = [Arm(doc["base"]["label"], "base", ())]
    for section, kind in (("variants", "variant"), ("baselines", "baseline")):
        for name, overrides in doc[section].items():
            key, items = f"{section}.{name}", tuple(overrides or ())
            if any(a.name == str(name) for a in arms):
                raise _fail(path, key, "name used twice")
            try:
                keys = {o.key for o in parse_overrides(items)}
            except UserError as exc:
                raise _fail(path, key, str(exc)) from None
            if kind == "baseline" and "model" not in keys:
                items = (f"model={name}",) + items
            arms.append(Arm(str(name), kind, items))
    return arms


def load_grid(path: str | Path, from_tune_config: str | None = None, seeds: int | None = None,
              cli_overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    """Parse and check a grid file; `from_tune_config` replaces the base, `seeds` the seed list."""
    from search_spaces import resolve

    try:
        path = str(resolve(str(path)))
    except FileNotFoundError:
        raise UserError(f"{path}: ablation grid not found") from None
    doc = OmegaConf.to_container(load_typed(GridFile, read_yaml(path, "ablation grid"), path))
    base_config = from_tune_config or doc["base"]["config"]
    if base_config is not None and not from_tune_config and not Path(base_config).is_absolute():
        base_config = str((Path(path).parent / base_config).resolve())
    try:
        parse_overrides(doc["base"]["overrides"])
    except UserError as exc:
        raise _fail(path, "base.overrides", str(exc)) from None
    grid = Grid(
        path=path,
        name=doc["name"] or Path(path).stem,
        description=doc["description"],
        base_label=doc["base"]["label"],
        base_config=base_config,
        base_overrides=() if from_tune_config else tuple(doc["base"]["overrides"]),
        arms=_arms(path, doc),
        seeds=list(range(seeds)) if seeds else _seeds(path, doc["seeds"]),
        resources=check_resources(path, doc["resources"]),
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
    except UserError as exc:
        raise UserError(f"command-line override: {exc}") from None


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
                cfg = to_dict(from_dict(_absolute_paths(cfg)))   # validates, builds the model on the meta device
            except ValueError as exc:
                raise _fail(grid.path, key, str(exc).splitlines()[0]) from None
            cfg["train"]["threads"] = cfg["train"]["threads"] or threads
            runs.append(PlannedRun(arm.name, arm.kind, seed, run_hash(cfg), cfg))
    return runs

