"""Params and MACs of a run's model at the run's own front end, clip length and class count."""
from __future__ import annotations

from ascmamba import create_model
from ascmamba.complexity import model_complexity
from ascmamba.frontend import FrontEnd


def run_complexity(config: dict, data: dict) -> dict:
    """`data` is the provenance block of a final report (classes, cities, front_end, seconds)."""
    kwargs = {k: v for k, v in config["model"].items() if k != "name" and v is not None}
    kwargs["num_classes"] = len(data["classes"])
    kwargs["num_cities"] = max(1, len(data["cities"]))
    model = create_model(config["model"]["name"], **kwargs)
    seconds = float(data["seconds"])
    cx = model_complexity(model, FrontEnd(**data["front_end"]), seconds)
    return {"params": cx.params, "macs": cx.macs, "macs_by_kind": cx.macs_by_kind, "seconds": seconds}
