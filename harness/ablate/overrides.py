"""Apply `key=value` overrides to a run-config dict: the one syntax of grids and the command line.

Three forms, because an ablation needs all three and Hydra's compose only works before a
config exists (a tune run's `best_config.yaml` is already resolved):
- `group=option` (model=cpmobile, pseudo=none): replace the whole group by its Hydra defaults,
  so a baseline does not inherit ASCMamba-only knobs such as `model.fusion`;
- `a.b=value`: set one key; the value is parsed as YAML (false, null, 3, 1e-3);
- `a.b+=N` / `a.b-=N`: relative to the current value, or to the model's registered default
  when the config leaves it None (how "depth plus one" works on any base).
"""
from __future__ import annotations

import copy
import functools
from typing import Any

import yaml

from ..errors import UserError
from ..train.dotted import get_dotted, set_dotted

GROUPS = ("model", "data", "train", "pseudo")


@functools.lru_cache(maxsize=64)
def _group_defaults(group: str, option: str) -> dict:
    from ..train.config import compose_config, to_dict

    return to_dict(compose_config([f"{group}={option}"]))[group]


def _current(cfg: dict, dotted: str) -> Any:
    node = get_dotted(cfg, dotted)
    if node is None and dotted.startswith("model."):
        from ascmamba import get_spec

        node = get_spec(cfg["model"]["name"]).defaults.get(dotted.split(".", 1)[1])
    return node


def apply_override(cfg: dict, item: str) -> None:
    """Apply one override in place; raises a UserError naming the key."""
    if not isinstance(item, str) or "=" not in item:
        raise UserError(f"{item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key.endswith(("+", "-")):
        sign, key = (1 if key[-1] == "+" else -1), key[:-1].strip()
        step = yaml.safe_load(raw)
        current = _current(cfg, key)
        if not isinstance(step, (int, float)) or not isinstance(current, (int, float)):
            raise UserError(f"{key}: relative override needs numbers, got {current!r} and {raw!r}")
        set_dotted(cfg, key, current + sign * step)
        return
    if "." not in key and key in GROUPS:
        cfg[key] = copy.deepcopy(_group_defaults(key, raw.strip()))
        return
    set_dotted(cfg, key, yaml.safe_load(raw) if raw.strip() else None)


def apply_overrides(cfg: dict, items: list[str] | tuple[str, ...]) -> dict:
    """A copy of `cfg` with `items` applied in order."""
    out = copy.deepcopy(cfg)
    for item in items:
        apply_override(out, item)
    return out
