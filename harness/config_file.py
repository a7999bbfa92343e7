"""Typed YAML files: a search space, an ablation grid or a saved run config read into an OmegaConf
structured config, so an unknown key or a wrong type is rejected by OmegaConf and reported as one
line naming the file and the key, before anything runs."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from .errors import UserError, fs_errors

# OmegaConf's node names -> how a message says what was expected
TYPE_WORDS = {"Integer": "an integer", "Float": "a float", "Boolean": "true or false", "String": "a string"}
# OmegaConf's messages -> what was expected: (pattern, words for its group or a format string)
EXPECTED: tuple[tuple[str, Any], ...] = (
    (r"converted to (\w+)", TYPE_WORDS),
    (r"expected one of \[(.*)\]", "one of {}"),
    (r"(is not a ListConfig)", "a list"),
    (r"Cannot convert '\w+' to (string)", "a string"),
    (r"type hint '(\w+)", {"list": "a list", "List": "a list", "str": "a string", "int": "an integer",
                            "float": "a float", "bool": "true or false", "dict": "a mapping", "Dict": "a mapping"}),
    (r"(is not a subclass of|Cannot merge)", "a mapping"),
)
# resources keys that were renamed: the old spelling gets a line naming the new one
RENAMED = {"cpus": "cpu", "gpus": "gpu"}


@dataclass
class Resources:
    """What one trial or run reserves, the same keys in spaces and grids; fractional gpu packs runs."""

    cpu: float = 1.0
    gpu: float = 0.0


def check_resources(where: str, res: dict[str, float]) -> dict[str, float]:
    """The typed `resources` section; the bounds typing cannot express are one line naming the key."""
    for key, value in res.items():
        if value < 0:
            raise UserError(f"{where}: resources.{key}: must be a number >= 0, got {value}")
    if res["cpu"] <= 0 and res["gpu"] <= 0:
        raise UserError(f"{where}: resources: a trial needs some cpu or gpu")
    return {"cpu": float(res["cpu"]), "gpu": float(res["gpu"])}


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`line L, column C: problem` of a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def read_yaml(path: str | Path, what: str, where: str | None = None) -> Any:
    """The parsed document; a missing, unreadable, non-UTF-8 or malformed file is one line."""
    where = where or str(path)
    with fs_errors(path, f"read the {what}"):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{where}: {what} not found") from None
        except UnicodeDecodeError:
            raise UserError(f"{where}: not a UTF-8 text file; expected a {what} (YAML)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML: {yaml_problem(exc)}") from None


def _unknown_key(leaf: str, schema: type) -> str:
    if schema is Resources and leaf in RENAMED:
        return f"renamed: write {RENAMED[leaf]} (resources are {{cpu: N, gpu: N}})"
    return f"unknown key {leaf!r} (allowed: {', '.join(f.name for f in dataclasses.fields(schema))})"


def explain(exc: OmegaConfBaseException) -> str:
    """What was wrong with one key, from OmegaConf's multi-line message (the key is the caller's)."""
    msg = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
    if isinstance(exc, ConfigKeyError) and dataclasses.is_dataclass(exc.object_type):
        return _unknown_key(str(exc.key), exc.object_type)
    if "is not Optional" in msg:
        return "must not be null"
    got = f", got {exc.value!r}" if getattr(exc, "value", None) is not None else ""
    for pattern, words in EXPECTED:
        if m := re.search(pattern, msg):
            return f"expected {words.get(m[1], m[1]) if isinstance(words, dict) else words.format(*m.groups())}{got}"
    return msg[:200]


def load_typed(schema: type, doc: Any, where: str, shape: str = "a mapping at the top level") -> DictConfig:
    """`doc` merged over the schema's defaults, top-level key by key so that every error names its
    key; a missing (null) section keeps its defaults."""
    if not isinstance(doc, dict):
        raise UserError(f"{where}: expected {shape}, got {type(doc).__name__}")
    cfg = OmegaConf.structured(schema)
    for key, value in doc.items():
        if value is None and key in cfg:
            continue
        try:
            cfg.merge_with({key: value})
        except OmegaConfBaseException as exc:
            full = exc.full_key or str(key)
            if full == str(key) and isinstance(exc, ConfigKeyError):
                raise UserError(f"{where}: {key}: unknown top-level key {str(key)!r} "
                                f"(allowed: {', '.join(cfg)})") from None
            raise UserError(f"{where}: {full}: {explain(exc)}") from None
    return cfg
