"""Search-space YAML: parse, validate against the real RunConfig schema, canonicalise.

Everything here runs before Ray starts, so a typo in a space file costs a second, not a
cluster start-up: an unknown key, bounds in the wrong order, an empty choice or a
distribution the key's type cannot take is a one-line ValueError naming file and key.

Format (see README "Tuning")::

    metric: val/best_macro_acc
    mode: max
    seed: 0                      # TPE sampler seed
    budget: {samples: 6, max_epochs: 4, grace_period: 1, reduction_factor: 2,
             max_concurrent: 2, max_failures: 1}
    resources: {cpus: 1, gpus: 0}          # per trial; fractional gpus allowed
    strategy: {scheduler: asha, searcher: tpe}   # defaults; fifo / random are the baselines
    base: {model: {name: ascmamba_tiny}, pseudo.mode: none}   # nested or dotted
    search:
      train.lr: {loguniform: [1.0e-4, 1.0e-2]}
      model.num_blocks: {int: [2, 6], step: 2}
      model.fusion: {choice: [none, concat, film]}
      model.city_dropout: {uniform: [0.0, 0.3], when: {model.fusion: [concat, film]}}
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError, fs_errors
from ..schema import STRATEGY_DEFAULTS
from ..train.config import RunConfig, compose_config, from_dict, to_dict, yaml_problem
from ..train.metrics import RANKABLE_METRICS
from ..train.dotted import merge_params

KINDS = ("choice", "uniform", "loguniform", "int")
TOP_KEYS = {"metric", "mode", "seed", "budget", "resources", "strategy", "base", "search"}
# how trials are chosen and stopped; asha + tpe is the product, fifo + random the baseline
# `ascbench bench asha` measures it against
STRATEGY_CHOICES = {"scheduler": ("asha", "fifo"), "searcher": ("tpe", "random")}
BUDGET_DEFAULTS = {"samples": 8, "max_epochs": 4, "grace_period": 1, "reduction_factor": 2,
                   "max_concurrent": 2, "max_failures": 1}
RESOURCE_DEFAULTS = {"cpus": 1.0, "gpus": 0.0}


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
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "choice":
            d["values"] = list(self.values)
        else:
            d.update(low=self.low, high=self.high)
        if self.step is not None:
            d["step"] = self.step
        if self.when:
            d["when"] = {k: list(v) for k, v in self.when.items()}
        return d


@dataclass(frozen=True)
class Space:
    source: str                   # the file it came from (for messages)
    metric: str
    mode: str
    seed: int
    budget: dict[str, int]
    resources: dict[str, float]
    strategy: dict[str, str]      # scheduler (asha | fifo), searcher (tpe | random)
    base: dict                    # the full RunConfig dict every trial starts from
    search: tuple[Dist, ...]

    @property
    def name(self) -> str:
        return Path(self.source).stem

    def canonical(self) -> dict:
        """What identifies the experiment: everything except where the file lived."""
        return {
            "metric": self.metric, "mode": self.mode, "seed": self.seed,
            "budget": dict(self.budget), "resources": dict(self.resources),
            "strategy": dict(self.strategy), "base": self.base, "search": {d.key: d.to_dict() for d in self.search},
        }


def resolve_space_path(spec: str) -> Path:
    """A path if it exists, else a shipped space by bare name (works after a non-editable install)."""
    from search_spaces import resolve

    try:
        return resolve(spec)
    except FileNotFoundError as exc:   # raised by us with the one-line message: no such file or shipped name
        raise UserError(str(exc)) from None


def _flatten(node: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted in ("model", "data", "train", "pseudo"):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _field_type(key: str) -> Any:
    """The declared type of a dotted RunConfig key (Optional stripped), or None if there is no such key."""
    node: Any = RunConfig
    hint: Any = None
    for part in key.split("."):
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return None
        hints = typing.get_type_hints(node)
        if part not in hints:
            return None
        hint = node = hints[part]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in args if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    return hint


def _value_fits(value: Any, typ: Any) -> bool:
    if typ is bool:
        return isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is str:
        return isinstance(value, str)
    return False


ALLOWED = {bool: ("choice",), str: ("choice",), int: ("choice", "int"), float: ("choice", "uniform", "loguniform", "int")}


def _parse_dist(where: str, key: str, spec: Any, typ: Any) -> Dist:
    def fail(msg: str) -> UserError:
        return UserError(f"{where}: search.{key}: {msg}")

    if not isinstance(spec, dict):
        raise fail(f"expected a mapping like {{choice: [...]}} or {{uniform: [low, high]}}, got {spec!r}")
    kinds = [k for k in spec if k in KINDS]
    extra = set(spec) - set(KINDS) - {"step", "when"}
    if len(kinds) != 1 or extra:
        raise fail(f"needs exactly one of {', '.join(KINDS)} (plus optional step, when); got keys {sorted(spec)}")
    kind = kinds[0]
    allowed = ALLOWED.get(typ, ())
    if kind not in allowed:
        tname = getattr(typ, "__name__", str(typ))
        raise fail(f"a {tname} key cannot take {kind}" + (f" (allowed: {', '.join(allowed)})" if allowed else " (not searchable)"))
    arg = spec[kind]
    when_raw = spec.get("when") or {}
    if not isinstance(when_raw, dict):
        raise fail("when must map a searched key to the value(s) that enable this one")
    when = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in when_raw.items()}
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise fail("choice needs a non-empty list of values")
        bad = [v for v in arg if not _value_fits(v, typ)]
        if bad:
            raise fail(f"choice value {bad[0]!r} is not a {typ.__name__}")
        if len(set(map(repr, arg))) != len(arg):
            raise fail("choice values repeat")
        if "step" in spec:
            raise fail("step only goes with int")
        return Dist(key, kind, values=tuple(arg), when=when)
    if not (isinstance(arg, list) and len(arg) == 2 and all(_value_fits(v, float) for v in arg)):
        raise fail(f"{kind} needs [low, high] numbers, got {arg!r}")
    low, high = arg
    if not low < high:
        raise fail(f"bounds in the wrong order: low {low} must be below high {high}")
    step = spec.get("step")
    if kind == "int":
        if not all(_value_fits(v, int) for v in arg):
            raise fail(f"int bounds must be integers, got {arg!r}")
        step = 1 if step is None else step
        if not _value_fits(step, int) or step < 1:
            raise fail(f"step must be a positive integer, got {step!r}")
        if (high - low) % step:
            raise fail(f"high - low ({high - low}) is not a multiple of step {step}")
    elif step is not None:
        raise fail("step only goes with int")
    if kind == "loguniform" and low <= 0:
        raise fail(f"loguniform needs low > 0, got {low}")
    if kind in ("uniform", "loguniform"):
        low, high = float(low), float(high)
    return Dist(key, kind, low=low, high=high, step=step, when=when)


def _check_values(where: str, base: dict, dist: Dist) -> None:
    """Each end of a range and every choice must make a valid RunConfig (e.g. tau in [0, 1])."""
    probes = list(dist.values) if dist.kind == "choice" else [dist.low, dist.high]
    for value in probes:
        if _field_type(dist.key) is float and isinstance(value, int):
            value = float(value)
        try:
            cfg = from_dict(merge_params(base, {dist.key: value}))
            if dist.key == "model.name":
                from ascmamba.registry import get_spec
                get_spec(cfg.model.name)
            if dist.key == "model.fusion":
                from ascmamba.fusion import check_fusion
                check_fusion(value)
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise UserError(f"{where}: search.{dist.key}: value {value!r} is invalid: {msg}") from None


def default_base() -> dict:
    """The composed default RunConfig as a dict (the same defaults `ascbench train` starts from)."""
    return to_dict(compose_config([]))


def build_space(raw: Any, source: str, overrides: dict[str, Any] | None = None, samples: int | None = None) -> Space:
    """Validate a parsed YAML document; `overrides` (dotted) go onto `base`, `samples` onto the budget."""
    where = source
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping at the top level")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise UserError(f"{where}: unknown top-level key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(TOP_KEYS))})")
    metric = raw.get("metric", "val/best_macro_acc")
    mode = raw.get("mode", "max")
    if mode not in ("min", "max"):
        raise UserError(f"{where}: mode: must be min or max, got {mode!r}")
    if isinstance(metric, str) and metric.startswith("test/"):
        raise UserError(f"{where}: metric: {metric!r}: test figures are only reported, never used to choose; "
                        f"rank by one of: {', '.join(RANKABLE_METRICS)}")
    if metric not in RANKABLE_METRICS:
        raise UserError(f"{where}: metric: {metric!r} is not a metric every epoch reports; "
                        f"expected one of: {', '.join(RANKABLE_METRICS)}")
    seed = raw.get("seed", 0)
    if not _value_fits(seed, int):
        raise UserError(f"{where}: seed: must be an integer, got {seed!r}")

    budget = dict(BUDGET_DEFAULTS)
    for key, value in (raw.get("budget") or {}).items():
        if key not in budget:
            raise UserError(f"{where}: budget.{key}: unknown key (allowed: {', '.join(budget)})")
        if not _value_fits(value, int) or value < (0 if key == "max_failures" else 1):
            raise UserError(f"{where}: budget.{key}: must be a positive integer, got {value!r}")
        budget[key] = value
    if samples is not None:
        if samples < 1:
            raise UserError(f"--samples must be >= 1, got {samples}")
        budget["samples"] = samples
    if budget["grace_period"] > budget["max_epochs"]:
        raise UserError(f"{where}: budget.grace_period: {budget['grace_period']} exceeds max_epochs {budget['max_epochs']}")
    if budget["reduction_factor"] < 2:
        raise UserError(f"{where}: budget.reduction_factor: must be >= 2")

    res = dict(RESOURCE_DEFAULTS)
    for key, value in (raw.get("resources") or {}).items():
        if key not in res:
            raise UserError(f"{where}: resources.{key}: unknown key (allowed: cpus, gpus)")
        if not _value_fits(value, float) or value < 0:
            raise UserError(f"{where}: resources.{key}: must be a number >= 0, got {value!r}")
        res[key] = float(value)
    if res["cpus"] <= 0 and res["gpus"] <= 0:
        raise UserError(f"{where}: resources: a trial needs some cpus or gpus")

    strategy = dict(STRATEGY_DEFAULTS)
    strategy_raw = raw.get("strategy") or {}
    if not isinstance(strategy_raw, dict):
        raise UserError(f"{where}: strategy: expected a mapping like {{scheduler: asha, searcher: tpe}}")
    for key, value in strategy_raw.items():
        if key not in STRATEGY_CHOICES:
            raise UserError(f"{where}: strategy.{key}: unknown key (allowed: {', '.join(STRATEGY_CHOICES)})")
        if value not in STRATEGY_CHOICES[key]:
            raise UserError(f"{where}: strategy.{key}: expected one of {', '.join(STRATEGY_CHOICES[key])}, got {value!r}")
        strategy[key] = value

    base_raw = raw.get("base") or {}
    if not isinstance(base_raw, dict):
        raise UserError(f"{where}: base: expected a mapping of config keys")
    fixed = _flatten(base_raw)
    if "train.epochs" in fixed and fixed["train.epochs"] != budget["max_epochs"]:
        raise UserError(f"{where}: base.train.epochs: set the budget with budget.max_epochs instead")
    fixed["train.epochs"] = budget["max_epochs"]
    if "train.threads" not in fixed and res["cpus"] >= 1:
        fixed["train.threads"] = int(res["cpus"])  # one torch pool per trial, sized to its reservation
    for key, value in (overrides or {}).items():
        fixed[key] = value
    base = default_base()
    for key, value in fixed.items():
        if _field_type(key) is None:
            raise UserError(f"{where}: base.{key}: no such config key")
        if _field_type(key) is float and _value_fits(value, int):
            value = float(value)
        try:
            base = merge_params(base, {key: value})
        except UserError as exc:
            raise UserError(f"{where}: base.{key}: {exc}") from None
    try:
        base = to_dict(from_dict(base))
    except ValueError as exc:
        raise UserError(f"{where}: base: {exc}") from None

    search_raw = raw.get("search") or {}
    if not isinstance(search_raw, dict) or not search_raw:
        raise UserError(f"{where}: search: needs at least one searched key")
    dists: list[Dist] = []
    for key, spec in search_raw.items():
        typ = _field_type(key)
        if typ is None or dataclasses.is_dataclass(typ):
            raise UserError(f"{where}: search.{key}: no such config key")
        if key in (overrides or {}):
            raise UserError(f"{where}: search.{key}: is searched, so it cannot also be fixed on the command line")
        if key == "train.epochs":
            raise UserError(f"{where}: search.train.epochs: the epoch budget is budget.max_epochs, not a searched key")
        dist = _parse_dist(where, key, spec, typ)
        _check_values(where, base, dist)
        dists.append(dist)
    return Space(source=str(source), metric=metric, mode=mode, seed=seed, budget=budget, resources=res,
                 strategy=strategy, base=base, search=_dependency_order(where, dists))


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
                    raise UserError(f"{where}: search.{d.key}: when {cond} = {missing[0]!r}, but {cond} never takes that value")
    ordered: list[Dist] = []
    placed: set[str] = set()
    while len(ordered) < len(dists):
        ready = [d for d in dists if d.key not in placed and all(c in placed for c in d.when)]
        if not ready:
            stuck = next(d for d in dists if d.key not in placed)
            raise UserError(f"{where}: search.{stuck.key}: its when conditions form a cycle")
        for d in ready:
            ordered.append(d)
            placed.add(d.key)
    return tuple(ordered)


def load_space(spec: str, overrides: dict[str, Any] | None = None, samples: int | None = None) -> Space:
    path = resolve_space_path(spec)
    try:
        with fs_errors(path, "read the search space"):
            text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{spec}: not valid YAML: {yaml_problem(exc)}") from None
    return build_space(raw, spec, overrides=overrides, samples=samples)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` command-line arguments (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r}: expected key=value")
        out[key.strip()] = yaml.safe_load(value) if value else None
    return out


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
