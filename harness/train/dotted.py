"""Dotted keys (`model.fusion`) into a run-config dict: how a trial's sampled values land on the
space's base (trials, results, confirmation), in one place that needs neither Ray nor torch.
`key=value` strings are parsed and applied by `overrides.py`."""
from __future__ import annotations

import copy
from typing import Any

from ..errors import UserError


def set_dotted(cfg: dict, dotted: str, value: Any) -> None:
    """Set an existing run-config key such as `model.fusion` in place; a UserError names a wrong key."""
    *parents, leaf = dotted.split(".")
    node = cfg
    for key in parents:
        if not isinstance(node.get(key), dict):
            raise UserError(f"{dotted}: {key!r} is not a config group")
        node = node[key]
    if leaf not in node:
        raise UserError(f"{dotted}: no such config key")
    node[leaf] = value


def merge_params(base: dict, params: dict[str, Any]) -> dict:
    """`base` run-config dict with dotted `params` (e.g. {"model.fusion": "film"}) set on a copy."""
    merged = copy.deepcopy(base)
    for dotted, value in params.items():
        set_dotted(merged, dotted, value)
    return merged


def get_dotted(cfg: dict, dotted: str) -> Any:
    """The value of an existing run-config key such as `train.lr`; a UserError names a wrong key."""
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise UserError(f"{dotted}: no such config key")
        node = node[key]
    return node
