"""ASCMamba and its baselines behind one registry: `create_model(name, **overrides)`."""
from .frontend import APSIPA_FRONT_END, DCASE_FRONT_END, FRONT_END_16K, FrontEnd
from .interface import ASCModel, MetaContext
from .registry import create_model, get_spec, list_models, register_model, resolve_config

__all__ = [
    "APSIPA_FRONT_END", "DCASE_FRONT_END", "FRONT_END_16K", "FrontEnd", "ASCModel", "MetaContext",
    "create_model", "get_spec", "list_models", "register_model", "resolve_config",
]
