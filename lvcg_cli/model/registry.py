"""A small timm-style registry: a registered name is an architecture.

Each entry is a builder and the sizes that define the architecture (kept with the model's
configuration, :data:`lvcg_cli.model.config.ARCHITECTURES`). ``--model.name lvcg-base``
alone therefore means lvcg-base's sizes (:class:`~lvcg_cli.model.config.ModelSettings` fills them
from here), and explicit ``--model.<key>`` values still apply on top. ``build_model`` takes the
resolved configuration and records it (``model.config``) for its checkpoints.

    ``lvcg-tiny``  small enough to pretrain in minutes and serve on a laptop CPU (the bundled weights)
    ``lvcg-base``  the paper's configuration: 100 Hz, 1000 samples, beats of 128, 20 beats,
                   encoder stages [96, 192, 256, 256], state 256, 2-layer GRU

Importing this module does not import torch (settings resolution reads the architectures on
every command); the builders do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lvcg_cli.errors import LvcgError
from lvcg_cli.model.config import ARCHITECTURES, DEFAULT_FS, InputSpec, ModelSettings, architecture

if TYPE_CHECKING:
    import torch

    from lvcg_cli.model.lvcg import LVCG

__all__ = [
    "MAX_PARAMETERS",
    "architecture",
    "build_model",
    "count_parameters",
    "list_models",
    "model_settings",
    "register_model",
]

GruDevice = Callable[["torch.device"], "torch.device"]
Builder = Callable[..., "LVCG"]


_REGISTRY: dict[str, Builder] = {}


def register_model(name: str, **sizes: Any) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(config, input_spec, gru_device=None) -> LVCG`` under ``name``.

    ``sizes`` are the :class:`ModelSettings` fields that make the architecture (added to
    :data:`~lvcg_cli.model.config.ARCHITECTURES`, so ``ModelSettings(name=name)`` has them); a
    built-in name keeps the sizes listed there. Unknown fields fail here, not at the first build.
    """
    unknown = sorted(set(sizes) - set(ModelSettings.model_fields) - {"name"})
    if unknown:
        raise ValueError(f"model {name!r}: unknown architecture fields {', '.join(unknown)}")

    def wrap(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        if sizes or name not in ARCHITECTURES:
            ARCHITECTURES[name] = dict(sizes)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        architecture(name)  # the one-line error with the closest name
        raise LvcgError(
            f"--model.name: model {name!r} has sizes but no builder; register it with register_model"
        )


def model_settings(name: str, **overrides: Any) -> ModelSettings:
    """The configuration of a registered architecture, with some fields overridden."""
    _check_name(name)
    return ModelSettings(name=name, **overrides)


MAX_PARAMETERS = 1_000_000_000
"""Most parameters a model may have (4 GiB in float32; lvcg-base has 4.7M): checked before allocating."""


class _Input:
    """The input of a model built without being told it (``DEFAULT_FS``)."""

    fs = DEFAULT_FS


def count_parameters(model: ModelSettings, data: InputSpec | None = None) -> int:
    """Parameters of the architecture these settings describe, counted on the meta device (no memory)."""
    import torch

    _check_name(model.name)
    with torch.device("meta"):
        shell = _REGISTRY[model.name](model, data or _Input())
    return int(sum(p.numel() for p in shell.parameters()))


def build_model(
    model: ModelSettings, data: InputSpec | None = None, *, gru_device: GruDevice | None = None
) -> LVCG:
    """Build the architecture ``model.name`` with the given (resolved) configuration.

    ``data`` tells the model its input sampling rate (the data settings; 100 Hz when None).
    ``gru_device`` chooses where the dynamics GRU runs for an input on a given device (the
    engine's :func:`~lvcg_cli.engine.device.gru_device` moves it off MPS); None: on the input's.
    The size is counted first without allocating, so settings asking for an absurd model (a
    hostile or corrupt checkpoint, a typo) are one line instead of an out-of-memory crash.
    """
    n_params = count_parameters(model, data)
    if n_params > MAX_PARAMETERS:
        raise LvcgError(
            f"--model: these settings describe a model of {n_params:,} parameters "
            f"({n_params * 4 / 2**30:,.0f} GiB in float32), over the bound of {MAX_PARAMETERS:,}"
        )
    return _REGISTRY[model.name](model, data or _Input(), gru_device=gru_device)


@register_model("lvcg-tiny")
def lvcg_tiny(model: ModelSettings, data: InputSpec, gru_device: GruDevice | None = None) -> LVCG:
    from lvcg_cli.model.lvcg import LVCG

    return LVCG(model, data, gru_device=gru_device)


@register_model("lvcg-base")
def lvcg_base(model: ModelSettings, data: InputSpec, gru_device: GruDevice | None = None) -> LVCG:
    from lvcg_cli.model.lvcg import LVCG

    return LVCG(model, data, gru_device=gru_device)
