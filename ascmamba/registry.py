"""One registry and one factory for every model family.

`@register_model` records an entrypoint with its declared defaults (front end,
parameter count, family); `create_model(name, **overrides)` is the only way
models are built, and an override of `None` falls back to the default.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .frontend import FrontEnd
from .interface import ASCModel


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    builder: Callable[..., ASCModel]
    defaults: dict[str, Any]
    front_end: FrontEnd
    expected_params: int
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    family: str,
    front_end: FrontEnd,
    expected_params: int,
    defaults: dict[str, Any] | None = None,
    description: str = "",
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[..., ASCModel]], Callable[..., ASCModel]]:
    """Register `builder(**kwargs) -> ASCModel` under `name` with its declared defaults."""

    def decorator(builder: Callable[..., ASCModel]) -> Callable[..., ASCModel]:
        add_model(ModelSpec(name, family, builder, dict(defaults or {}), front_end, expected_params, description, tags))
        return builder

    return decorator


def add_model(spec: ModelSpec) -> None:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec


def _ensure_loaded() -> None:
    # Importing the model modules runs their @register_model decorators.
    from . import models  # noqa: F401


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown model {name!r}; registered models: {known}") from None


def list_models(family: str | None = None) -> list[str]:
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def resolve_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The full constructor arguments of `name` after applying non-None overrides."""
    spec = get_spec(name)
    config = dict(spec.defaults)
    for key, value in overrides.items():
        if value is None:
            continue
        config[key] = value
    return config


def create_model(name: str, **overrides: Any) -> ASCModel:
    """Build a registered model; `None` overrides keep the model's defaults."""
    spec = get_spec(name)
    try:
        return spec.builder(**resolve_config(name, **overrides))
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            key = str(exc).split("argument")[-1].strip(" '\"")
            raise ValueError(f"model {name!r} has no parameter {key!r}") from None
        raise
