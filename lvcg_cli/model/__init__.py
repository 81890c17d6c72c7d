"""The LVCG model: fixed geometry layer, learned lifter, beat encoder, dynamics, decoder and losses."""

from lvcg_cli.model.lvcg import LVCG, RHYTHM_FEATURES
from lvcg_cli.model.registry import build_model, list_models, model_settings, register_model

__all__ = ["LVCG", "RHYTHM_FEATURES", "build_model", "list_models", "model_settings", "register_model"]
