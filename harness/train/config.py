"""The run config: typed schemas for the `model`, `data`, `train` and `pseudo` groups, composed by Hydra.

The schemas are dataclasses registered with Hydra's ConfigStore, so an unknown key
or a value of the wrong type fails at composition, before any work starts. Group
files under `harness/conf/` only set values; `key=value` overrides work on top.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ..data.prepare import DataConfig


@dataclass
class ModelConfig:
    """A registry name plus constructor overrides; `None` keeps the registry default."""

    name: str = "ascmamba_tiny"
    num_classes: int | None = None   # set from the data
    num_cities: int | None = None    # set from the data
    channels: int | None = None
    dense_depth: int | None = None
    num_blocks: int | None = None
    d_state: int | None = None
    expand: int | None = None
    bidirectional: bool | None = None
    paths: str | None = None
    downsample: list[int] | None = None  # encoder (time, frequency) strides after the dense block
    stem_stride: list[int] | None = None  # (time, frequency) strides before it
    head: str | None = None              # freq_stats | freq_mean (ASCMamba)
    head_bands: int | None = None
    zero_init_blocks: bool | None = None  # each Mamba path starts as the identity
    residual: str | None = None           # shared | per_direction (SEMamba's wiring)
    fusion: str | None = None
    dropout: float | None = None
    city_dropout: float | None = None
    scan_backend: str | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name" and v is not None}


@dataclass
class TrainConfig:
    epochs: int = 12                 # the whole budget, all pseudo-label stages together
    batch_size: int = 16
    lr: float = 5e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.05
    mixup_alpha: float = 0.3         # 0 disables mixup
    mixup_prob: float = 0.2
    time_masks: int = 2              # SpecAugment time masks per clip (0 disables)
    time_mask_frac: float = 0.1      # max width of one time mask, as a share of the frames
    freq_masks: int = 2
    freq_mask_bins: int = 8          # max width of one frequency mask in mel bins
    amp: bool = True                 # mixed precision, CUDA only
    device: str = "auto"             # auto | cpu | cuda
    threads: int | None = None       # torch threads on CPU (default: torch's)
    eval_batch_size: int = 64
    # before each validation, re-estimate BatchNorm statistics from up to this many batches of
    # eval_batch_size training clips with the epoch's final weights (0: keep the running average)
    bn_recalibration_batches: int = 1


@dataclass
class PseudoConfig:
    """Semi-supervised schedule. Stage 0 trains on labelled clips; `two_step` then labels the
    pool (tau1, optional session agreement), trains on labelled + pseudo, relabels (tau2) and
    trains the final model; `one_step` is the official baseline's argmax-on-everything scheme."""

    mode: str = "two_step"           # two_step | one_step | none
    stage0_epochs: int | None = None  # default: half the budget
    step1_epochs: int | None = None   # default: a quarter (two_step); the rest is the last stage
    tau1: float = 0.9
    tau2: float = 0.9
    tau_session: float = 0.0          # 0 disables the session-agreement filter
    weight: float = 1.0               # loss weight of pseudo-labelled clips


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    seed: int = 0


PSEUDO_MODES = ("two_step", "one_step", "none")


def stage_epochs(cfg: RunConfig) -> list[int]:
    """Epochs of each stage: [stage0] / [stage0, rest] / [stage0, step1, rest]."""
    total, p = cfg.train.epochs, cfg.pseudo
    if total < 1:
        raise ValueError(f"train.epochs must be >= 1, got {total}")
    if p.mode not in PSEUDO_MODES:
        raise ValueError(f"pseudo.mode {p.mode!r} is not one of: {', '.join(PSEUDO_MODES)}")
    if p.mode == "none":
        return [total]
    n_stages = 3 if p.mode == "two_step" else 2
    if total < n_stages:
        raise ValueError(f"pseudo.mode={p.mode} needs train.epochs >= {n_stages}, got {total}")
    s0 = p.stage0_epochs if p.stage0_epochs is not None else max(1, total // 2)
    if n_stages == 2:
        stages = [s0, total - s0]
    else:
        s1 = p.step1_epochs if p.step1_epochs is not None else max(1, total // 4)
        stages = [s0, s1, total - s0 - s1]
    if min(stages) < 1:
        raise ValueError(
            f"pseudo stages {stages} do not fit train.epochs={total}: every stage needs at least one epoch"
        )
    return stages


def validate(cfg: RunConfig) -> RunConfig:
    """Checks that typing cannot express; raises one-line ValueErrors naming the key."""
    stage_epochs(cfg)
    for key in ("tau1", "tau2", "tau_session"):
        value = getattr(cfg.pseudo, key)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"pseudo.{key} must be in [0, 1], got {value}")
    t = cfg.train
    for key, value in (("lr", t.lr), ("batch_size", t.batch_size), ("eval_batch_size", t.eval_batch_size)):
        if value <= 0:
            raise ValueError(f"train.{key} must be > 0, got {value}")
    if t.bn_recalibration_batches < 0:
        raise ValueError(f"train.bn_recalibration_batches must be >= 0, got {t.bn_recalibration_batches}")
    if not 0.0 <= t.label_smoothing < 1.0:
        raise ValueError(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
    if t.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"train.device must be auto, cpu or cuda, got {t.device!r}")
    _validate_model_and_data(cfg)
    return cfg


def _validate_model_and_data(cfg: RunConfig) -> None:
    """Name errors that would otherwise surface only after the data is built."""
    from ascmamba import list_models
    from ascmamba.fusion import FUSIONS

    from ..data.audio_check import ON_BAD_AUDIO
    from ..data.prepare import FRONT_ENDS, SOURCES

    models = list_models()
    if cfg.model.name not in models:
        raise ValueError(f"model.name {cfg.model.name!r} is not one of: {', '.join(models)}")
    if cfg.model.fusion is not None and cfg.model.fusion not in FUSIONS:
        raise ValueError(f"model.fusion {cfg.model.fusion!r} is not one of: {', '.join(FUSIONS)}")
    if cfg.model.paths is not None and cfg.model.paths not in ("tf", "ft", "t", "f"):
        raise ValueError(f"model.paths {cfg.model.paths!r} is not one of: tf, ft, t, f")
    d = cfg.data
    checks = (("source", d.source, SOURCES), ("front_end", d.front_end, ("auto", *FRONT_ENDS)),
              ("on_bad_audio", d.on_bad_audio, ON_BAD_AUDIO), ("preset", d.preset, ("micro", "tiny", "small", "cas")))
    for key, value, allowed in checks:
        if value not in allowed:
            raise ValueError(f"data.{key} {value!r} is not one of: {', '.join(allowed)}")
    if not 0.0 < d.val_fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")


_STORED = False


def _store_schemas() -> None:
    global _STORED
    if not _STORED:
        ConfigStore.instance().store(name="run_schema", node=RunConfig)
        _STORED = True


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run config from `harness/conf/config.yaml` plus Hydra `key=value` overrides."""
    _store_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="harness.conf", version_base="1.3"):
            composed = compose(config_name="config", overrides=list(overrides))
        cfg = OmegaConf.to_object(composed)
    except Exception as exc:  # Hydra/OmegaConf errors carry multi-line context; keep the first line
        if isinstance(exc, ValueError) and str(exc).startswith(("train.", "pseudo.", "model.", "data.")):
            raise
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip() and not ln.startswith("full_key")]
        raise ValueError("config: " + (" ".join(lines[:2]) if lines else type(exc).__name__)) from None
    finally:
        GlobalHydra.instance().clear()
    return validate(cfg)


def to_dict(cfg: RunConfig) -> dict:
    return asdict(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from a dict (a saved config), with schema checks."""
    _store_schemas()
    merged = OmegaConf.merge(OmegaConf.structured(RunConfig), d)
    return validate(OmegaConf.to_object(merged))


def load_config(path: str | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A saved run config (e.g. a tune run's best config) plus `key=value` overrides, or the
    composed defaults plus Hydra overrides when `path` is None."""
    if path is None:
        return compose_config(overrides)
    _store_schemas()
    try:
        saved = OmegaConf.load(path)
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), saved, OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(merged)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip() and not ln.startswith("full_key")]
        raise ValueError(f"{path}: " + (" ".join(lines[:2]) if lines else type(exc).__name__)) from None
    return validate(cfg)
