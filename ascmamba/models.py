"""Imports every module that registers models, so the registry is complete."""
from . import ascmamba_model  # noqa: F401
from .baselines import apsipa_setrans, cpmobile, patch_transformer  # noqa: F401
