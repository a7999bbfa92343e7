"""The registry as a table: what `ascbench models` prints and the report reuses."""
from __future__ import annotations

import pandas as pd

from ascmamba import create_model, get_spec, list_models
from ascmamba.complexity import model_complexity

from .errors import UserError


def registry_table(family: str | None = None, seconds: float = 10.0) -> pd.DataFrame:
    """One row per registered model: family, params, MACs per `seconds` clip, metadata use."""
    names = list_models(family)
    if not names:
        families = sorted({get_spec(n).family for n in list_models()})
        raise UserError(f"no models of family {family!r}; families: {', '.join(families)}")
    rows = []
    for name in names:
        spec = get_spec(name)
        model = create_model(name)
        cx = model_complexity(model, spec.front_end, seconds)
        one_second = model_complexity(model, spec.front_end, 1.0)  # DCASE's unit: MACs per 1-s clip
        rows.append({
            "name": name,
            "family": spec.family,
            "params": cx.params,
            "macs": cx.macs,
            "macs_1s": one_second.macs,
            "scan_macs": cx.macs_by_kind.get("scan", 0),
            "metadata": model.uses_metadata,
            "front_end": f"{spec.front_end.sample_rate / 1000:g}kHz/{spec.front_end.n_mels}mel/hop{spec.front_end.hop_length}",
            "description": spec.description,
        })
    return pd.DataFrame(rows)


def format_registry_table(df: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "name": df["name"],
        "family": df["family"],
        "params": df["params"].map(lambda p: f"{p / 1e3:,.1f}k"),
        "MMACs/10s": df["macs"].map(lambda m: f"{m / 1e6:,.1f}"),
        "MMACs/1s": df["macs_1s"].map(lambda m: f"{m / 1e6:,.1f}"),
        "of which scan": df["scan_macs"].map(lambda m: f"{m / 1e6:,.1f}" if m else "-"),
        "metadata": df["metadata"].map({True: "yes", False: "no"}),
        "front end": df["front_end"],
    })
    return shown.to_string(index=False)
