"""`ascbench predict`: the challenge submission from a best checkpoint.

Writes the evaluation CSV back with `scene_label` filled in: same rows, order and
header (and the BOM the official files carry). Cities absent from training map to
the unknown-city index, as the model was trained to handle.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ascmamba import create_model
from ascmamba.frontend import FrontEnd
from ascmamba.metadata import CityVocabulary

from ..data.apsipa import HEADER, load_apsipa, read_metadata
from ..data.audio_check import probe_audio
from ..data.cache import FeatureCache, FeatureSpec
from ..data.prepare import clip_arrays
from ..errors import UserError
from ..io import write_text_atomic
from .batches import FeatureBatches
from .checkpoint import load_checkpoint, load_weights


def predict_csv(
    checkpoint: str | Path, metadata: str | Path, audio_dir: str | Path, out: str | Path,
    cache_dir: str | None = None, batch_size: int = 64, progress: bool = True,
) -> dict:
    if Path(out).is_dir():
        raise UserError(f"{out}: --out is a folder; expected the path of the submission CSV to write")
    bundle = load_checkpoint(checkpoint)
    for key in ("model_name", "model_kwargs", "model_state", "classes", "cities", "front_end", "seconds"):
        if key not in bundle:
            raise UserError(f"{checkpoint}: not an ascbench checkpoint (missing {key!r})")
    classes = tuple(bundle["classes"])
    corpus = probe_audio(load_apsipa(metadata, audio_dir, classes), "error", float(bundle["seconds"])).corpus
    cached = FeatureCache(cache_dir).get_or_build(
        corpus.clips["clip_id"].tolist(), corpus.clips["path"].tolist(),
        FeatureSpec(FrontEnd(**bundle["front_end"]), float(bundle["seconds"])), progress=progress,
    )
    try:
        model = create_model(bundle["model_name"], **bundle["model_kwargs"])
    except (KeyError, TypeError, ValueError) as exc:   # the registry's and the constructor's refusals
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise UserError(f"{checkpoint}: refused: declares a model that cannot be built ({msg})") from None
    load_weights(model, bundle["model_state"], checkpoint, f"its declared model {bundle['model_name']}")
    model.eval()
    arrays = clip_arrays(corpus, CityVocabulary(bundle["cities"]), cached, corpus.clips["clip_id"].tolist(),
                         corpus.time_matrix())
    batches = FeatureBatches(cached.features, bundle["norm_mean"], bundle["norm_std"], torch.device("cpu"))
    with torch.no_grad():
        preds = [model(x, ctx).argmax(dim=1).numpy() for x, ctx in batches.chunks(arrays, batch_size)]
    labels = [classes[i] for i in np.concatenate(preds)] if preds else []

    rows = read_metadata(metadata, classes)  # the original strings, untouched
    rows["scene_label"] = labels
    bom = "\ufeff" if Path(metadata).read_bytes().startswith(b"\xef\xbb\xbf") else ""
    write_text_atomic(out, bom + rows[HEADER].to_csv(index=False, lineterminator="\n"))
    unseen = int((arrays.cities == 0).sum())
    return {"rows": len(labels), "unseen_city_rows": unseen, "out": str(out)}
