"""Shipped search spaces and ablation grids (YAML), usable after a non-editable install."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def resolve(spec: str) -> Path:
    """A path if it exists, else a shipped file by bare name (`quick`, `ablation.yaml`)."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = resources.files(__name__) / name
    if shipped.is_file():
        with resources.as_file(shipped) as p:
            return Path(p)
    known = sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir()
                   if p.name.endswith(".yaml"))
    raise FileNotFoundError(f"{spec}: no such file, and nothing shipped of that name (shipped: {', '.join(known)})")
