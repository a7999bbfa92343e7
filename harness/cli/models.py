"""`ascbench models`: the registry as a table, with the front end each model trains on and its MACs there."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import UserError
from .options import SOURCES, add_command

if TYPE_CHECKING:
    import pandas as pd

    from ascmamba import FrontEnd


def describe_front_end(front_end: FrontEnd) -> str:
    """`name: 44.1kHz/64mel/hop882`, the name being the `data.front_end` value that selects it."""
    from ..data.prepare import FRONT_ENDS

    name = next((key for key, known in FRONT_ENDS.items() if known == front_end), "custom")
    return f"{name}: {front_end.sample_rate / 1000:g}kHz/{front_end.n_mels}mel/hop{front_end.hop_length}"


def registry_table(family: str | None = None, source: str = "synthetic") -> pd.DataFrame:
    """One row per registered model: family, params, MACs per 10-s and 1-s clip on the front end a
    run on `source` data trains on (`resolve_front_end`, as training resolves it), metadata use."""
    import pandas as pd

    from ascmamba import create_model, get_spec, list_models
    from ascmamba.complexity import model_complexity

    from ..data.prepare import DataConfig, resolve_front_end

    names = list_models(family)
    if not names:
        families = sorted({get_spec(n).family for n in list_models()})
        raise UserError(f"no models of family {family!r}; families: {', '.join(families)}")
    data = DataConfig(source=source)
    rows = []
    for name in names:
        spec = get_spec(name)
        model = create_model(name)
        front_end = resolve_front_end(data, spec.front_end)
        cx = model_complexity(model, front_end, 10.0)
        rows.append({
            "name": name,
            "family": spec.family,
            "params": cx.params,
            "macs": cx.macs,
            "macs_1s": model_complexity(model, front_end, 1.0).macs,  # DCASE's unit: MACs per 1-s clip
            "scan_macs": cx.macs_by_kind.get("scan", 0),
            "metadata": model.uses_metadata,
            "source": source,
            "front_end": describe_front_end(front_end),
            "declared_front_end": describe_front_end(spec.front_end),
            "description": spec.description,
        })
    return pd.DataFrame(rows)


def format_registry_table(df: pd.DataFrame) -> str:
    import pandas as pd

    shown = pd.DataFrame({
        "name": df["name"],
        "family": df["family"],
        "params": df["params"].map(lambda p: f"{p / 1e3:,.1f}k"),
        "MMACs/10s": df["macs"].map(lambda m: f"{m / 1e6:,.1f}"),
        "MMACs/1s": df["macs_1s"].map(lambda m: f"{m / 1e6:,.1f}"),
        "of which scan": df["scan_macs"].map(lambda m: f"{m / 1e6:,.1f}" if m else "-"),
        "metadata": df["metadata"].map({True: "yes", False: "no"}),
        "front end (trains)": df["front_end"],
        "declared": [d if d != t else "same" for d, t in zip(df["declared_front_end"], df["front_end"], strict=True)],
    })
    return shown.to_string(index=False)


def run(args: argparse.Namespace) -> int:
    df = registry_table(args.family, args.source)
    if args.json:
        print(df.to_json(orient="records", indent=2))
        return 0
    print(format_registry_table(df))
    print(f"\nMACs per 10-s clip and per 1-s clip (DCASE's unit) on the front end a run on {args.source} data "
          "trains on (data.front_end: auto; --source for another); the selective scan is counted analytically.")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "models", "List the model registry: family, parameters, MACs per 10-s clip on the front "
                                   "end that trains, metadata use.", run)
    p.add_argument("--family", help="only models of this family (ascmamba, cnn, transformer, official)")
    p.add_argument("--source", default="synthetic", choices=SOURCES,
                   help="the data the runs train on, which decides the front end (default synthetic, as `train`)")
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
