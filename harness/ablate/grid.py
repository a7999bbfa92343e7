"""The ablation grid: a small YAML file (`GridFile`; `search_spaces/ablation*.yaml`; its keys in the README).

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

    @property
    def key(self) -> str:
        """Where the arm is in the grid file, as messages name it: `base`, `variants.<name>`, `baselines.<name>`."""
        return "base" if self.kind == "base" else f"{self.kind}s.{self.name}"


@dataclass
class Grid:
    """A checked grid; `dataclasses.asdict` of it is the manifest's `grid`."""

    path: str
    name: str
    description: str
    base: GridBase                # config: absolute, or the --from-tune config (then no overrides)
    arms: list[Arm]
    seeds: list[int]
    resources: dict[str, float]
    cli_overrides: tuple[str, ...] = ()


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
    if isinstance(value, int) and not isinstance(value, bool):
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


def _arms(path: str, doc: GridFile) -> list[Arm]:
    """The base, then the variants and baselines; every override is parsed now (one line naming
    the arm if it is not `key=value`), and a baseline selects `model=<name>` unless it names one."""
    arms = [Arm(doc.base.label, "base", ())]
    for kind, section in (("variant", doc.variants), ("baseline", doc.baselines)):
        for name, overrides in section.items():
            arm = Arm(str(name), kind, tuple(overrides or ()))
            if any(a.name == arm.name for a in arms):
                raise _fail(path, arm.key, "name used twice")
            try:
                keys = {o.key for o in parse_overrides(arm.overrides)}
            except UserError as exc:
                raise _fail(path, arm.key, str(exc)) from None
            if kind == "baseline" and "model" not in keys:
                arm = Arm(arm.name, kind, (f"model={name}",) + arm.overrides)
            arms.append(arm)
    return arms


def load_grid(path: str | Path, from_tune_config: str | None = None, seeds: int | None = None,
              cli_overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    """Parse and check a grid file; `from_tune_config` replaces the base, `seeds` the seed list."""
    from search_spaces import resolve

    try:
        path = str(resolve(str(path)))
    except FileNotFoundError:
        raise UserError(f"{path}: ablation grid not found") from None
    doc: GridFile = OmegaConf.to_object(load_typed(GridFile, read_yaml(path, "ablation grid"), path))
    try:
        parse_overrides(doc.base.overrides)
    except UserError as exc:
        raise _fail(path, "base.overrides", str(exc)) from None
    base = doc.base
    if from_tune_config:
        base = GridBase(base.label, from_tune_config)
    elif base.config is not None and not Path(base.config).is_absolute():
        base.config = str((Path(path).parent / base.config).resolve())
    grid = Grid(
        path=path,
        name=doc.name or Path(path).stem,
        description=doc.description,
        base=base,
        arms=_arms(path, doc),
        seeds=list(range(seeds)) if seeds else _seeds(path, doc.seeds),
        resources=check_resources(path, vars(doc.resources)),
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

    if grid.base.config:
        cfg = to_dict(load_config(grid.base.config))
    else:
        try:
            cfg = to_dict(compose_config(grid.base.overrides))
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
        for seed in grid.seeds:
            try:
                cfg = copy.deepcopy(base)
                cfg["seed"] = seed
                if cfg["data"]["split_seed"] is None:  # pin the split to the pairing seed, so an arm
                    cfg["data"]["split_seed"] = seed   # that reseeds (`seed+=1000`) keeps the same split
                cfg = apply_overrides(cfg, arm.overrides)
                cfg = to_dict(from_dict(_absolute_paths(cfg)))   # validates, builds the model on the meta device
            except ValueError as exc:
                raise _fail(grid.path, arm.key, str(exc).splitlines()[0]) from None
            cfg["train"]["threads"] = cfg["train"]["threads"] or threads
            runs.append(PlannedRun(arm.name, arm.kind, seed, run_hash(cfg), cfg))
    return runs

