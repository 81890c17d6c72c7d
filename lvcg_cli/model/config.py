"""The model's own configuration: what an architecture is made of and how its loss is weighted.

Plain pydantic models owned by the model package, so the model can be built, tested and typed
without the command line's settings machinery; :mod:`lvcg_cli.settings` uses them as its
``model`` section and as ``train.loss`` (field names are the YAML keys, the ``--model.key``
overrides and what checkpoints store).

A registered name *is* an architecture (as in timm): ``ModelSettings(name="lvcg-base")`` has
lvcg-base's sizes, and only the fields given explicitly differ from them (:data:`ARCHITECTURES`).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lvcg_cli.errors import LvcgError

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_FS",
    "DEFAULT_MODEL",
    "ConfigModel",
    "InputSpec",
    "LossWeights",
    "ModelSettings",
    "architecture",
]

DEFAULT_MODEL = "lvcg-tiny"
"""The architecture of the bundled weights, and of a model whose name is not given."""
DEFAULT_FS = 100.0
"""Input sampling rate (Hz) of a model built without being told its input."""


_SHARED: dict[str, Any] = {
    "beat_len": 128,
    "max_beats": 20,
    "n_tokens": 1,
    "residual_refine": False,
    "decoder_state": True,
}
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "lvcg-tiny": {
        **_SHARED,
        "d_token": 64,
        "encoder_channels": [32, 48, 64],
        "lifter_channels": 48,
        "lifter_layers": 6,
        "state_dim": 128,
        "gru_layers": 1,
    },
    "lvcg-base": {
        **_SHARED,
        "d_token": 256,
        "encoder_channels": [96, 192, 256, 256],
        "lifter_channels": 64,
        "lifter_layers": 6,
        "state_dim": 256,
        "gru_layers": 2,
    },
}
"""The sizes each registered name stands for; :func:`lvcg_cli.model.registry.register_model` adds
to it (a name and its builder are registered there, with these sizes)."""


def architecture(name: str) -> dict[str, Any]:
    """The sizes registered with ``name`` (a copy); one-line :class:`LvcgError` for an unknown name."""
    if name not in ARCHITECTURES:
        known = sorted(ARCHITECTURES)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.0)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LvcgError(f"--model.name: unknown model {name!r}{hint}; available: {', '.join(known)}")
    return {k: list(v) if isinstance(v, list | tuple) else v for k, v in ARCHITECTURES[name].items()}


class ConfigModel(BaseModel):
    """Base of the model's configuration: unknown keys are errors, assignments are validated."""

    # allow_inf_nan=False: a dropout of nan or a ridge of inf is a typo, never a configuration.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )


class InputSpec(Protocol):
    """What the model must know of its input: the sampling rate (``DataSettings`` is one)."""

    @property
    def fs(self) -> float: ...


class ModelSettings(ConfigModel):
    """Architecture of LVCG; the registered name fills every size that is not given."""

    name: str = Field(DEFAULT_MODEL, description="Registered architecture name (see model/registry.py).")
    geometry: Literal["ideal", "dower"] = Field(
        "dower", description="Fixed lead-field matrix used to project."
    )
    lift: Literal["pinv", "kors"] = Field(
        "pinv", description="Physics lift: ridge pseudo-inverse or Kors regression."
    )
    lift_eps: float = Field(1e-3, ge=0, description="Ridge term of the pseudo-inverse lift.")
    # Upper bounds: a checkpoint's settings define the model that is allocated before its weights
    # are compared, so sizes are bounded here first (and the whole model in model/registry.py).
    beat_len: int = Field(128, ge=16, le=2048, description="Samples per resampled beat.")
    max_beats: int = Field(20, ge=1, le=512, description="Beats per record (padded with a mask).")
    n_tokens: int = Field(1, ge=1, le=64, description="Tokens per beat in the bottleneck.")
    d_token: int = Field(64, ge=4, le=4096, description="Width of each beat token.")
    encoder_channels: list[int] = Field(
        default_factory=lambda: [32, 48, 64], description="Channels of the ResNet-style beat encoder stages."
    )
    lifter_channels: int = Field(48, ge=4, le=1024, description="Channels of the learned lifting network.")
    lifter_layers: int = Field(
        6, ge=0, le=32, description="Dilated conv layers of the learned lifting network."
    )
    state_dim: int = Field(128, ge=4, le=8192, description="GRU state size (inter-beat dynamics).")
    gru_layers: int = Field(1, ge=1, le=16, description="GRU layers.")
    residual_refine: bool = Field(
        False,
        description="Small learned correction of the projected decoded field (reads only that projection).",
    )
    decoder_state: bool = Field(
        True, description="Let the beat decoder also read the causal GRU state (else: tokens only)."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout in encoder and decoder.")

    @model_validator(mode="before")
    @classmethod
    def _sizes_of_the_name(cls, data: Any) -> Any:
        """Fill what is not given from the registered architecture of ``name`` (explicit values win)."""
        if not isinstance(data, dict):
            return data
        sizes = architecture(str(data.get("name", DEFAULT_MODEL)))
        filled = {
            key: data[key] if key in data else sizes[key]
            for key in cls.model_fields
            if key in data or key in sizes
        }
        filled.update(
            {key: value for key, value in data.items() if key not in filled}
        )  # unknown keys: refused
        return filled

    @field_validator("encoder_channels")
    @classmethod
    def _positive_channels(cls, channels: list[int]) -> list[int]:
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"must be a non-empty list of positive integers (got {channels})")
        if len(channels) > 12 or max(channels) > 4096:
            raise ValueError(
                f"must be at most 12 stages of at most 4096 channels "
                f"(got {len(channels)} stages, the widest {max(channels)})"
            )
        return channels


class LossWeights(ConfigModel):
    """Weights of the loss terms; every term is a mean, so weights are comparable."""

    hidden: float = Field(1.0, ge=0, description="Reconstruction of the hidden leads.")
    visible: float = Field(0.1, ge=0, description="Reconstruction of the visible leads.")
    beat: float = Field(0.5, ge=0, description="Beat-level latent VCG reconstruction.")
    temporal: float = Field(0.1, ge=0, description="Next-beat prediction of the GRU.")
    lift: float = Field(
        0.5, ge=0, description="Hidden leads through the un-bottlenecked lifted field (deep supervision)."
    )
    invariance: float = Field(
        1.0,
        ge=0,
        description="Beat tokens of the view vs those of the all-lead reference field.",
    )
