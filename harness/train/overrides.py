"""`key=value` overrides of the run config, parsed and applied here only: one grammar (Hydra's) for
the command line, grid bases, variants and baselines, and a search space's base.

`group=option` replaces the whole group by that option's defaults (so a baseline inherits no
ASCMamba-only knob); `a.b=value` sets one existing key, typed by the structured RunConfig (`+`/`++`
accepted, `~` and sweeps refused). The one extension of Hydra's grammar is `a.b+=N` / `a.b-=N`:
relative to the current value, or to the model's registered default when the config leaves it None
("depth plus one" on a resolved best config). As in Hydra, group selections apply first.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config_file import explain
from ..errors import UserError

GROUPS = ("model", "data", "train", "pseudo")
RELATIVE = re.compile(r"\s*([\w.]+)\s*([+-])=(.*)", re.S)


@dataclass(frozen=True)
class Override:
    key: str
    value: Any
    text: str                 # as written, for messages
    sign: int = 0             # +1 / -1 for a relative override, 0 to set


@functools.lru_cache(maxsize=1)
def _parser() -> OverridesParser:
    return OverridesParser.create()


def parse_override(item: Any) -> Override:
    """One override in Hydra's grammar (plus `+=`/`-=`); a UserError names what is wrong with it."""
    if not isinstance(item, str) or ("=" not in item and not item.startswith("~")):
        raise UserError(f"override {item!r}: expected key=value")
    rel = RELATIVE.fullmatch(item)
    try:
        parsed = _parser().parse_override(f"{rel[1]}={rel[3]}" if rel else item)
    except HydraException as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise UserError(f"override {item!r}: {lines[-1] if lines else 'not a Hydra override'}") from None
    if parsed.is_delete():
        raise UserError(f"override {item!r}: deleting keys is not supported; every key of the run config stays")
    if parsed.is_sweep_override():
        raise UserError(f"override {item!r}: a sweep is not supported here; give one value")
    return Override(parsed.key_or_group, parsed.value(), item, (1 if rel[2] == "+" else -1) if rel else 0)


def parse_overrides(items: Iterable[Any]) -> list[Override]:
    return [parse_override(i) for i in items]


def format_override(key: str, value: Any) -> str:
    """`key=value` that parses back to `value` (JSON quoting suits Hydra's grammar; numpy scalars as Python's)."""
    return f"{key}={json.dumps(value.item() if hasattr(value, 'item') else value, ensure_ascii=False)}"


def group_options(group: str) -> list[str]:
    """The option files of a config group (`model=cpmobile` picks harness/conf/model/cpmobile.yaml)."""
    folder = resources.files("harness.conf") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@functools.lru_cache(maxsize=64)
def _composed(group_option: tuple[str, ...]) -> DictConfig:
    """Hydra's composition of harness/conf/config.yaml with group selections only (cached)."""
    from hydra import compose, initialize_config_module
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra

    from .config import RunConfig

    ConfigStore.instance().store(name="run_schema", node=RunConfig)   # the schema config.yaml names
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="harness.conf", version_base="1.3"):
            return compose(config_name="config", overrides=list(group_option))
    finally:
        GlobalHydra.instance().clear()


def default_node() -> DictConfig:
    """The composed default run config as a typed, writable node."""
    return copy.deepcopy(_composed(()))


def _select_group(cfg: DictConfig, o: Override) -> None:
    options = group_options(o.key)
    if o.sign or not isinstance(o.value, str) or o.value not in options:
        raise UserError(f"{o.key}={o.text.partition('=')[2]}: no such {o.key} config; available: {', '.join(options)}")
    cfg[o.key] = copy.deepcopy(_composed((f"{o.key}={o.value}",))[o.key])


def _check_key(cfg: DictConfig, key: str) -> None:
    group, _, leaf = key.partition(".")
    if group in GROUPS and leaf in cfg[group]:
        return
    if not leaf and key in cfg and key not in GROUPS:
        return
    if group in GROUPS and leaf:
        raise UserError(f"{key}: no such config key (keys of {group}: {', '.join(cfg[group])})")
    raise UserError(f"{key}: no such config key (groups: {', '.join(GROUPS)}; top-level keys: seed)")


def _relative(cfg: DictConfig, o: Override) -> Any:
    current = OmegaConf.select(cfg, o.key)
    if current is None and o.key.startswith("model."):
        from ascmamba import get_spec

        current = get_spec(cfg.model.name).defaults.get(o.key.split(".", 1)[1])
    number = (int, float)
    if isinstance(o.value, bool) or not isinstance(o.value, number) or not isinstance(current, number):
        raise UserError(f"{o.key}: relative override needs numbers, got {current!r} and {o.value!r}")
    return current + o.sign * o.value


def _set_key(cfg: DictConfig, o: Override) -> None:
    _check_key(cfg, o.key)
    value = _relative(cfg, o) if o.sign else o.value
    try:
        OmegaConf.update(cfg, o.key, value, merge=False)
    except OmegaConfBaseException as exc:
        raise UserError(f"{o.text}: {explain(exc)}") from None


def apply_to_node(cfg: DictConfig, overrides: Sequence[Override]) -> DictConfig:
    """Apply in place, group selections first (Hydra's order), then keys in the order given."""
    for o in sorted(overrides, key=lambda o: o.key not in GROUPS):
        (_select_group if o.key in GROUPS else _set_key)(cfg, o)
    return cfg


def apply_overrides(cfg: dict, items: Iterable[Any]) -> dict:
    """A copy of the run-config dict `cfg` with the override strings `items` applied."""
    from .config import RunConfig

    node = OmegaConf.merge(OmegaConf.structured(RunConfig), cfg)
    apply_to_node(node, parse_overrides(items))
    return OmegaConf.to_container(node)
