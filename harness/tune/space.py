"""Search-space YAML: a typed OmegaConf schema (`SpaceFile`), the checks typing cannot express,
the canonical form. The format is the README's "Tuning" section and `search_spaces/quick.yaml`.

Everything here runs before Ray starts, so a typo in a space file costs a second, not a cluster
start-up: an unknown key or a wrong type (rejected by OmegaConf), bounds in the wrong order, an
empty choice or a distribution the key's type cannot take is one line naming file and key.
"""
from __future__ import annotations

import builtins
import dataclasses
import enum
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config_file import RENAMED, Resources, check_resources, load_typed, read_yaml
from ..errors import UserError
from ..schema import STRATEGY_DEFAULTS
from ..train.config import RunConfig, from_dict, to_dict
from ..train.dotted import merge_params
from ..train.metrics import RANKABLE_METRICS
from ..train.overrides import GROUPS, Override, apply_to_node, default_node, parse_overrides

KINDS = ("choice", "uniform", "loguniform", "int")
# which distributions a key of each type can take; lists are not searchable
ALLOWED = {bool: ("choice",), str: ("choice",), int: ("choice", "int"),
           float: ("choice", "uniform", "loguniform", "int")}

Mode = enum.Enum("Mode", {"min": "min", "max": "max"})
# how trials are chosen and stopped; asha + tpe is the product, fifo + random the baseline
# `ascbench bench asha` measures it against
Scheduler = enum.Enum("Scheduler", {"asha": "asha", "fifo": "fifo"})
Searcher = enum.Enum("Searcher", {"tpe": "tpe", "random": "random"})


@dataclass
class Budget:   # trials, epochs per trial, ASHA's rungs
    samples: int = 8
    max_epochs: int = 4
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int = 2
    max_failures: int = 1


@dataclass
class Strategy:
    scheduler: Scheduler = Scheduler[STRATEGY_DEFAULTS["scheduler"]]
    searcher: Searcher = Searcher[STRATEGY_DEFAULTS["searcher"]]


@dataclass
class DistSpec:
    """One searched key as written: exactly one distribution, plus step (int) and when."""

    choice: list[Any] | None = None
    uniform: list[float] | None = None
    loguniform: list[float] | None = None
    int: list[builtins.int] | None = None     # `builtins.`: the field shadows the type in the class
    step: builtins.int | None = None
    when: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpaceFile:
    """The schema of a space file; OmegaConf rejects unknown keys and wrong types."""

    metric: str = "val/best_macro_acc"
    mode: Mode = Mode.max
    seed: int = 0
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    strategy: Strategy = field(default_factory=Strategy)
    base: Any = None          # a mapping of config keys (nested or dotted) or a list of overrides
    search: dict[str, DistSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Dist:
    """One searched key: its distribution and, optionally, the values of other keys it needs."""

    key: str
    kind: str
    values: tuple = ()            # choice
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None       # int
    when: dict[str, tuple] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The canonical form (space.json): the fields its kind sets, all but `key`."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "key" and v not in (None, (), {})}

    @classmethod
    def from_dict(cls, key: str, d: dict) -> Dist:
        when = {k: tuple(v) for k, v in d.get("when", {}).items()}
        return cls(key, **(d | {"values": tuple(d.get("values", ())), "when": when}))


@dataclass(frozen=True)
class Space:
    source: str                   # the file it came from (for messages)
    metric: str
    mode: str
    seed: int
    budget: dict[str, int]
    resources: dict[str, float]   # cpu, gpu per trial
    strategy: dict[str, str]      # scheduler (asha | fifo), searcher (tpe | random)
    base: dict                    # the full RunConfig dict every trial starts from
    search: tuple[Dist, ...]

    def canonical(self) -> dict:
        """What identifies the experiment (space.json): everything except where the file lived."""
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        return doc | {"search": {d.key: d.to_dict() for d in self.search}}


def space_from_canonical(doc: dict, source: str) -> Space:
    """The space an experiment stored (space.json); resources stored before the keys were renamed
    (`cpus`, `gpus`) are read as `cpu`, `gpu`."""
    return Space(source=source, metric=doc["metric"], mode=doc["mode"], seed=doc["seed"], budget=doc["budget"],
                 resources={RENAMED.get(k, k): v for k, v in doc["resources"].items()},
                 strategy={**STRATEGY_DEFAULTS, **doc.get("strategy", {})}, base=doc["base"],
                 search=tuple(Dist.from_dict(key, d) for key, d in doc["search"].items()))


def resolve_space_path(spec: str) -> Path:
    """A path if it exists, else a shipped space by bare name (works after a non-editable install)."""
    from search_spaces import resolve

    try:
        return resolve(spec)
    except FileNotFoundError as exc:   # raised by us with the one-line message: no such file or shipped name
        raise UserError(str(exc)) from None


def _key_type(key: str) -> Any:
    """The declared type of a dotted RunConfig key (Optional stripped), or None if there is no such key."""
    node: Any = RunConfig
    for part in key.split("."):
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return None
        node = hints[part]
    args = [a for a in typing.get_args(node) if a is not type(None)]
    return args[0] if typing.get_origin(node) in (typing.Union, types.UnionType) and len(args) == 1 else node


def _check_metric(where: str, metric: str) -> str:
    if metric.startswith("test/"):
        raise UserError(f"{where}: metric: {metric!r}: test figures are only reported, never used to choose; "
                        f"rank by one of: {', '.join(RANKABLE_METRICS)}")
    if metric not in RANKABLE_METRICS:
        raise UserError(f"{where}: metric: {metric!r} is not a metric every epoch reports; "
                        f"expected one of: {', '.join(RANKABLE_METRICS)}")
    return metric


def _check_budget(where: str, budget: dict[str, int], samples: int | None) -> dict[str, int]:
    for key, value in budget.items():
        if value < (0 if key == "max_failures" else 1):
            raise UserError(f"{where}: budget.{key}: must be a positive integer, got {value!r}")
    if samples is not None:
        if samples < 1:
            raise UserError(f"--samples must be >= 1, got {samples}")
        budget["samples"] = samples
    if budget["grace_period"] > budget["max_epochs"]:
        raise UserError(f"{where}: budget.grace_period: {budget['grace_period']} exceeds max_epochs "
                        f"{budget['max_epochs']}")
    if budget["reduction_factor"] < 2:
        raise UserError(f"{where}: budget.reduction_factor: must be >= 2")
    return budget


def _base_overrides(where: str, raw: Any) -> list[Override]:
    """The space's base as overrides: a list of `key=value` strings, or a mapping (nested groups or
    dotted keys; a string at a group, `model: cpmobile`, selects that group option)."""
    if isinstance(raw, list):
        return parse_overrides(raw)
    if not isinstance(raw, dict):
        raise UserError(f"{where}: base: expected a mapping of config keys or a list of key=value overrides")
    out: list[Override] = []
    for key, value in raw.items():
        if isinstance(value, dict) and key in GROUPS:
            out += [Override(f"{key}.{o.key}", o.value, f"{key}.{o.text}") for o in _base_overrides(where, value)]
        else:
            out.append(Override(str(key), value, f"{key}={value}"))
    return out


def _apply(prefix: str, node: Any, overrides: list[Override]) -> None:
    try:
        apply_to_node(node, overrides)
    except UserError as exc:
        raise UserError(f"{prefix}{exc}") from None


def build_base(where: str, raw: Any, budget: dict[str, int], res: dict[str, float], cli: list[Override]) -> dict:
    """The full RunConfig dict every trial starts from: defaults, the space's base, the epoch budget,
    a torch pool sized to the trial's cpu, then the command line's overrides."""
    base = _base_overrides(where, raw if raw is not None else {})
    node = default_node()
    _apply(f"{where}: base.", node, base)
    keys = {o.key for o in base}
    if "train.epochs" in keys and node.train.epochs != budget["max_epochs"]:
        raise UserError(f"{where}: base.train.epochs: set the budget with budget.max_epochs instead")
    node.train.epochs = budget["max_epochs"]
    if "train.threads" not in keys | {o.key for o in cli} and res["cpu"] >= 1:
        node.train.threads = int(res["cpu"])  # one torch pool per trial, sized to its reservation
    _apply("command-line override: ", node, cli)
    try:
        return to_dict(from_dict(OmegaConf.to_container(node)))
    except ValueError as exc:
        raise UserError(f"{where}: base: {exc}") from None


def _choice(fail: Any, key: str, spec: dict) -> Dist:
    values = spec["choice"]
    if not values:
        raise fail("choice needs a non-empty list of values")
    if len(set(map(repr, values))) != len(values):
        raise fail("choice values repeat")
    return Dist(key, "choice", values=tuple(values), when=_when(spec))


def _range(fail: Any, key: str, kind: str, spec: dict) -> Dist:
    arg = spec[kind]
    if len(arg) != 2:
        raise fail(f"{kind} needs [low, high] numbers, got {arg!r}")
    low, high = arg
    if not low < high:
        raise fail(f"bounds in the wrong order: low {low} must be below high {high}")
    step = spec["step"]
    if kind == "int":
        step = 1 if step is None else step
        if step < 1:
            raise fail(f"step must be a positive integer, got {step!r}")
        if (high - low) % step:
            raise fail(f"high - low ({high - low}) is not a multiple of step {step}")
    if kind == "loguniform" and low <= 0:
        raise fail(f"loguniform needs low > 0, got {low}")
    return Dist(key, kind, low=low, high=high, step=step, when=_when(spec))


def _when(spec: dict) -> dict[str, tuple]:
    return {k: tuple(v) if isinstance(v, list) else (v,) for k, v in spec["when"].items()}


def _parse_dist(where: str, key: str, spec: dict) -> Dist:
    def fail(msg: str) -> UserError:
        return UserError(f"{where}: search.{key}: {msg}")

    typ = _key_type(key)
    if typ is None or dataclasses.is_dataclass(typ):
        raise fail("no such config key")
    if key == "train.epochs":
        raise fail("the epoch budget is budget.max_epochs, not a searched key")
    kinds = [k for k in KINDS if spec[k] is not None]
    if len(kinds) != 1:
        raise fail(f"needs exactly one of {', '.join(KINDS)} (plus optional step, when); got {kinds or 'none'}")
    if spec["step"] is not None and kinds[0] != "int":
        raise fail("step only goes with int")
    allowed = ALLOWED.get(typ, ())
    if kinds[0] not in allowed:
        tname = getattr(typ, "__name__", str(typ))
        raise fail(f"a {tname} key cannot take {kinds[0]}"
                   + (f" (allowed: {', '.join(allowed)})" if allowed else " (not searchable)"))
    return _choice(fail, key, spec) if kinds[0] == "choice" else _range(fail, key, kinds[0], spec)


def _check_values(where: str, base: dict, dist: Dist) -> None:
    """Each end of a range and every choice must make a valid RunConfig (a type the key takes,
    tau in [0, 1], a registered model or fusion)."""
    for value in list(dist.values) if dist.kind == "choice" else [dist.low, dist.high]:
        try:
            from_dict(merge_params(base, {dist.key: value}))
        except OmegaConfBaseException:
            raise UserError(f"{where}: search.{dist.key}: choice value {value!r} is not a "
                            f"{_key_type(dist.key).__name__}") from None
        except ValueError as exc:
            raise UserError(f"{where}: search.{dist.key}: value {value!r} is invalid: {exc}") from None


def build_space(raw: Any, source: str, overrides: Sequence[str] | None = None, samples: int | None = None) -> Space:
    """Validate a parsed YAML document; `overrides` (`key=value`, as on the command line) go onto
    `base`, `samples` onto the budget."""
    where = str(source)
    doc = OmegaConf.to_container(load_typed(SpaceFile, raw, where), enum_to_str=True)
    metric = _check_metric(where, doc["metric"])
    budget = _check_budget(where, doc["budget"], samples)
    res = check_resources(where, doc["resources"])
    cli = parse_overrides(overrides or ())
    base = build_base(where, doc["base"], budget, res, cli)
    if not doc["search"]:
        raise UserError(f"{where}: search: needs at least one searched key")
    fixed = {o.key for o in cli}
    dists: list[Dist] = []
    for key, spec in doc["search"].items():
        if key in fixed:
            raise UserError(f"{where}: search.{key}: is searched, so it cannot also be fixed on the command line")
        dists.append(_parse_dist(where, key, spec))
        _check_values(where, base, dists[-1])
    return Space(source=where, metric=metric, mode=doc["mode"], seed=doc["seed"], budget=budget, resources=res,
                 strategy=doc["strategy"], base=base, search=_dependency_order(where, dists))


def _dependency_order(where: str, dists: list[Dist]) -> tuple[Dist, ...]:
    """Keys a conditional depends on are sampled before it (file order otherwise); cycles are errors."""
    by_key = {d.key: d for d in dists}
    for d in dists:
        for cond, values in d.when.items():
            if cond not in by_key:
                raise UserError(f"{where}: search.{d.key}: when refers to {cond!r}, which is not a searched key")
            if by_key[cond].kind == "choice":
                missing = [v for v in values if v not in by_key[cond].values]
                if missing:
                    raise UserError(f"{where}: search.{d.key}: when {cond} = {missing[0]!r}, but {cond} never "
                                    f"takes that value")
    ordered: dict[str, Dist] = {}   # by key, in the order placed
    while len(ordered) < len(dists):
        ready = [d for d in dists if d.key not in ordered and all(c in ordered for c in d.when)]
        if not ready:
            stuck = next(d for d in dists if d.key not in ordered)
            raise UserError(f"{where}: search.{stuck.key}: its when conditions form a cycle")
        ordered.update((d.key, d) for d in ready)
    return tuple(ordered.values())


def load_space(spec: str, overrides: Sequence[str] | None = None, samples: int | None = None) -> Space:
    """A space file (or a shipped name) with `key=value` overrides on its base."""
    path = resolve_space_path(spec)
    return build_space(read_yaml(path, "search space", where=spec), spec, overrides=overrides, samples=samples)


def diff_canonical(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two canonical spaces, for the refusal message."""
    changed: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            changed += diff_canonical(a, b, f"{prefix}{key}.")
        elif json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            changed.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return changed
