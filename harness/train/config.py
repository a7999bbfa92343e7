"""The run config: typed schemas for the `model`, `data`, `train` and `pseudo` groups, composed by Hydra.

The schemas are dataclasses registered with Hydra's ConfigStore, so an unknown key
or a value of the wrong type fails at composition, before any work starts. Group
files under `harness/conf/` only set values; `key=value` overrides work on top.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import OmegaConf

from ..config_file import load_typed, read_yaml
from ..data.prepare import DataConfig
from ..errors import UserError
from .overrides import GROUPS, apply_to_node, default_node, parse_overrides


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
DEVICES = ("auto", "cpu", "cuda")


def stage_epochs(cfg: RunConfig) -> list[int]:
    """Epochs of each stage: [stage0] / [stage0, rest] / [stage0, step1, rest]."""
    total, p = cfg.train.epochs, cfg.pseudo
    if total < 1:
        raise UserError(f"train.epochs must be >= 1, got {total}")
    if p.mode not in PSEUDO_MODES:
        raise UserError(f"pseudo.mode {p.mode!r} is not one of: {', '.join(PSEUDO_MODES)}")
    if p.mode == "none":
        return [total]
    n_stages = 3 if p.mode == "two_step" else 2
    if total < n_stages:
        raise UserError(f"pseudo.mode={p.mode} needs train.epochs >= {n_stages}, got {total}")
    s0 = p.stage0_epochs if p.stage0_epochs is not None else max(1, total // 2)
    if n_stages == 2:
        stages = [s0, total - s0]
    else:
        s1 = p.step1_epochs if p.step1_epochs is not None else max(1, total // 4)
        stages = [s0, s1, total - s0 - s1]
    if min(stages) < 1:
        raise UserError(
            f"pseudo stages {stages} do not fit train.epochs={total}: every stage needs at least one epoch"
        )
    return stages


def validate(cfg: RunConfig) -> RunConfig:
    """Checks that typing cannot express; raises a one-line UserError naming the key."""
    stage_epochs(cfg)
    _check_ranges(cfg)
    _check_choices(cfg)
    _check_model_builds(cfg)
    return cfg


# (dotted key, lowest allowed, highest allowed or None, which ends are included: "[]", "[)", "()"); None
# values (a model default, threads left to torch, the corpus's own clip length) are not checked
RANGES: tuple[tuple[str, float, float | None, str], ...] = (
    ("pseudo.tau1", 0, 1, "[]"), ("pseudo.tau2", 0, 1, "[]"), ("pseudo.tau_session", 0, 1, "[]"),
    ("train.lr", 0, None, "()"), ("train.batch_size", 0, None, "()"), ("train.eval_batch_size", 0, None, "()"),
    ("train.bn_recalibration_batches", 0, None, "[)"), ("train.label_smoothing", 0, 1, "[)"),
    ("model.channels", 1, None, "[)"), ("model.dense_depth", 0, None, "[)"), ("model.num_blocks", 0, None, "[)"),
    ("model.d_state", 1, None, "[)"), ("model.expand", 1, None, "[)"), ("model.head_bands", 1, None, "[)"),
    ("model.dropout", 0.0, 1.0, "[)"), ("model.city_dropout", 0.0, 1.0, "[]"), ("train.threads", 1, None, "[)"),
    ("train.weight_decay", 0.0, None, "[)"), ("train.warmup_epochs", 0.0, None, "[)"),
    ("train.mixup_alpha", 0.0, None, "[)"), ("train.mixup_prob", 0.0, 1.0, "[]"),
    ("train.time_masks", 0, None, "[)"), ("train.time_mask_frac", 0.0, 1.0, "[]"),
    ("train.freq_masks", 0, None, "[)"), ("train.freq_mask_bins", 0, None, "[)"), ("pseudo.weight", 0.0, None, "[)"),
    ("data.seconds", 0, None, "()"), ("data.val_fraction", 0, 1, "()"),
)


def _check_ranges(cfg: RunConfig) -> None:
    """Sizes and rates: a negative block count once trained a model without blocks, a negative
    channel count ended in a traceback."""
    for dotted, low, high, ends in RANGES:
        group, key = dotted.split(".")
        value = getattr(getattr(cfg, group), key)
        if value is None:
            continue
        below = value < low if ends[0] == "[" else value <= low
        above = high is not None and (value > high if ends[1] == "]" else value >= high)
        if below or above:
            lower = f"{'>=' if ends[0] == '[' else '>'} {low}"
            expected = lower if high is None else f"in {ends[0]}{low}, {high}{ends[1]}"
            raise UserError(f"{dotted} must be {expected}, got {value}")


def _check_model_builds(cfg: RunConfig) -> None:
    """Build the model once on the meta device (no memory, no time), so a constructor argument
    the model rejects is a one-line error naming the key before any data is loaded."""
    import torch

    from ascmamba import create_model

    with torch.device("meta"):
        try:
            create_model(cfg.model.name, **cfg.model.overrides())
        except (ValueError, TypeError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"model ({cfg.model.name}): {first}") from None


def _check_choices(cfg: RunConfig) -> None:
    """Name errors that would otherwise surface only after the data is built."""
    from ascmamba import list_models
    from ascmamba.fusion import FUSIONS

    from ..data.audio_check import ON_BAD_AUDIO
    from ..data.prepare import FRONT_ENDS, SOURCES

    m, d = cfg.model, cfg.data
    checks = (("model.name", m.name, list_models()), ("model.fusion", m.fusion, FUSIONS),
              ("model.paths", m.paths, ("tf", "ft", "t", "f")), ("train.device", cfg.train.device, DEVICES),
              ("data.source", d.source, SOURCES), ("data.front_end", d.front_end, ("auto", *FRONT_ENDS)),
              ("data.on_bad_audio", d.on_bad_audio, ON_BAD_AUDIO),
              ("data.preset", d.preset, ("micro", "tiny", "small", "cas")))
    for key, value, allowed in checks:
        if value is not None and value not in allowed:   # None: the model's registered default
            raise UserError(f"{key} {value!r} is not one of: {', '.join(allowed)}")


def compose_config(overrides: Sequence[str] = ()) -> RunConfig:
    """The run config from `harness/conf/config.yaml` plus `key=value` overrides (harness/train/overrides.py)."""
    return validate(OmegaConf.to_object(apply_to_node(default_node(), parse_overrides(overrides))))


def to_dict(cfg: RunConfig) -> dict:
    return asdict(cfg)


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from a dict (a saved config), with schema checks."""
    return validate(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), d)))


def load_config(path: str | None, overrides: Sequence[str] = ()) -> RunConfig:
    """A saved run config (e.g. a tune run's best config) plus `key=value` overrides, or the
    composed defaults plus overrides when `path` is None."""
    if path is None:
        return compose_config(overrides)
    items = parse_overrides(overrides)
    shape = f"a run config (a YAML mapping of {', '.join(GROUPS)} and seed)"
    node = load_typed(RunConfig, read_yaml(path, "config file"), str(path), shape)
    return validate(OmegaConf.to_object(apply_to_node(node, items)))
