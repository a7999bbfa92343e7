"""Check `key=value` overrides against the run-config schema before Hydra sees them.

Hydra's own messages name neither the expected type nor the options, and Hydra's `+key=value`
(append a key) was accepted and then silently dropped by the typed schema. Here every override
is one known key or one group option, or a one-line `UserError` saying what was expected.
"""
from __future__ import annotations

import dataclasses
import typing
from importlib import resources

from ..errors import UserError

GROUPS = ("model", "data", "train", "pseudo")


def _schema() -> dict[str, type]:
    from .config import RunConfig

    return {f.name: f.type for f in dataclasses.fields(RunConfig)}


def group_options(group: str) -> list[str]:
    """The option files of a config group (`model=cpmobile` picks harness/conf/model/cpmobile.yaml)."""
    folder = resources.files("harness.conf") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _group_class(group: str) -> type:
    from .config import RunConfig

    return typing.get_type_hints(RunConfig)[group]


def field_type(dotted: str) -> typing.Any:
    """The annotated type of a dotted run-config key, or None when there is no such key."""
    from .config import RunConfig

    node: typing.Any = RunConfig
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node):
            return None
        hints = typing.get_type_hints(node)
        if part not in hints:
            return None
        node = hints[part]
    return node


def type_name(tp: typing.Any) -> str:
    """`int | None` -> "an integer (or null)"; used in messages only."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (typing.Union, type(int | None)) else [tp]
    optional = len(args) < len(typing.get_args(tp)) if typing.get_origin(tp) else False
    names = {int: "an integer", float: "a float", bool: "true or false", str: "a string"}
    base = args[0] if args else tp
    if typing.get_origin(base) is list:
        inner = typing.get_args(base)
        text = f"a list of {names.get(inner[0], 'values').split(' ', 1)[-1]}s" if inner else "a list"
    else:
        text = names.get(base, getattr(base, "__name__", str(base)))
    return text + (" (or null)" if optional else "")


def check_override(item: str) -> str:
    """The override as Hydra should get it; a UserError naming the key and what is allowed otherwise.
    `+key=value` and `++key=value` are accepted for keys that exist (and passed on without the sign)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override {item!r}: expected key=value")
    key = key.strip()
    if key.startswith("~"):
        raise UserError(f"override {item!r}: deleting keys is not supported; every key of the run config stays")
    bare = key.lstrip("+")
    if bare in GROUPS:
        options = group_options(bare)
        if value.strip() not in options:
            raise UserError(f"{bare}={value}: no such {bare} config; available: {', '.join(options)}")
        return f"{bare}={value}"
    if field_type(bare) is None or dataclasses.is_dataclass(field_type(bare)):
        group, _, leaf = bare.partition(".")
        if group in GROUPS and leaf:
            known = ", ".join(f.name for f in dataclasses.fields(_group_class(group)))
            raise UserError(f"{bare}: no such config key (keys of {group}: {known})")
        raise UserError(f"{bare}: no such config key (groups: {', '.join(GROUPS)}; top-level keys: seed)")
    return f"{bare}={value}"
