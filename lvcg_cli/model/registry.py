"""A small timm-style registry of LVCG architectures.

Each registered name has a bundled preset (``lvcg_cli/assets/presets/<name>.yaml``) that fills
:class:`~lvcg_cli.settings.ModelSettings`; the preset is the single source of truth for the sizes.
``build_model`` takes the *resolved* settings (preset < YAML < env < CLI), so any field can still
be overridden, and the model records them (``model.config``) for its checkpoints.

    ``lvcg-tiny``  small enough to pretrain in minutes and serve on a laptop CPU (the bundled weights)
    ``lvcg-base``  the paper's configuration: 100 Hz, 1000 samples, beats of 128, 20 beats,
                   encoder stages [96, 192, 256, 256], state 256, 2-layer GRU
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch

from lvcg_cli.errors import LvcgError
from lvcg_cli.model.lvcg import LVCG
from lvcg_cli.settings import DataSettings, ModelSettings, load_preset

__all__ = [
    "MAX_PARAMETERS",
    "build_model",
    "count_parameters",
    "list_models",
    "model_settings",
    "register_model",
]

Builder = Callable[[ModelSettings, DataSettings], LVCG]
_REGISTRY: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(model_settings, data_settings) -> LVCG`` under ``name``."""

    def wrap(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list_models(), n=1, cutoff=0.0)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LvcgError(f"--model.name: unknown model {name!r}{hint}; available: {', '.join(list_models())}")


def model_settings(name: str, **overrides) -> ModelSettings:
    """The ModelSettings of a registered architecture from its bundled preset (plus overrides)."""
    _check_name(name)
    fields = dict(load_preset(name).get("model", {}))
    fields.update(overrides)
    return ModelSettings(**fields)


MAX_PARAMETERS = 1_000_000_000
"""Most parameters a model may have (4 GiB in float32; lvcg-base has 4.7M): checked before allocating."""


def count_parameters(model: ModelSettings, data: DataSettings | None = None) -> int:
    """Parameters of the architecture these settings describe, counted on the meta device (no memory)."""
    _check_name(model.name)
    with torch.device("meta"):
        shell = _REGISTRY[model.name](model, data or DataSettings())
    return int(sum(p.numel() for p in shell.parameters()))


def build_model(model: ModelSettings, data: DataSettings | None = None) -> LVCG:
    """Build the architecture ``model.name`` with the given (resolved) settings.

    The size is counted first without allocating, so settings asking for an absurd model (a
    hostile or corrupt checkpoint, a typo) are one line instead of an out-of-memory crash.
    """
    n_params = count_parameters(model, data)
    if n_params > MAX_PARAMETERS:
        raise LvcgError(
            f"--model: these settings describe a model of {n_params:,} parameters "
            f"({n_params * 4 / 2**30:,.0f} GiB in float32), over the bound of {MAX_PARAMETERS:,}"
        )
    return _REGISTRY[model.name](model, data or DataSettings())


@register_model("lvcg-tiny")
def lvcg_tiny(model: ModelSettings, data: DataSettings) -> LVCG:
    return LVCG(model, data)


@register_model("lvcg-base")
def lvcg_base(model: ModelSettings, data: DataSettings) -> LVCG:
    return LVCG(model, data)
