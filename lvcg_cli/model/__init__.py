"""The LVCG model: fixed geometry layer, learned lifter, beat encoder, dynamics, decoder and losses.

Names are imported when first used, so ``lvcg_cli.model.config`` (read by every command's settings)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LVCG": "lvcg_cli.model.lvcg",
    "RHYTHM_FEATURES": "lvcg_cli.model.lvcg",
    "LossWeights": "lvcg_cli.model.config",
    "ModelSettings": "lvcg_cli.model.config",
    "architecture": "lvcg_cli.model.registry",
    "build_model": "lvcg_cli.model.registry",
    "list_models": "lvcg_cli.model.registry",
    "model_settings": "lvcg_cli.model.registry",
    "register_model": "lvcg_cli.model.registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'lvcg_cli.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
