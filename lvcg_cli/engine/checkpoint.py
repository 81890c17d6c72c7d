"""Checkpoints: plain dicts of tensors and JSON-able values, written atomically, read safely.

A checkpoint loads with ``torch.load(path, weights_only=True)``, so opening one can never run
arbitrary pickled code; that is why the random-number states are stored as tensors and lists
rather than as the objects Python and numpy hand out. Loading rebuilds the architecture from
the checkpoint's own settings and loads the state strictly: the published LVCG code loaded with
``strict=False`` and so silently accepted checkpoints of another architecture, which here is a
one-line error instead.

Layout (``format`` ``lvcg-checkpoint/2``)::

    format, model_state, settings (full resolved settings, JSON-able), arch {name, n_params,
    embedding_dim}, step, and for resuming: optimizer, scheduler, rng, epoch-free position (step)
"""

from __future__ import annotations

import random
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from lvcg_cli.atomic import atomic_path
from lvcg_cli.errors import LvcgError, first_line
from lvcg_cli.settings import MODEL_INPUT_KEYS, DataSettings, ModelSettings, Settings

if TYPE_CHECKING:
    from torch import nn

CHECKPOINT_FORMAT = "lvcg-checkpoint/2"
"""Version 2 (lvcg 0.2): the reconstruction goes through the beat tokens, beats are encoded after
dividing the field by its RMS, the embedding gained the VCG block. A version-1 file would load
into the same tensor shapes yet compute something else, so it is refused rather than guessed."""
BUNDLED_WEIGHTS = "lvcg-tiny.pt"

PREPROCESSING_KEYS = MODEL_INPUT_KEYS
"""The data settings that change what the model sees; a checkpoint only fits runs that agree on them."""


# --------------------------------------------------------------------------------------------
# random-number states as tensors (weights_only-safe)
# --------------------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """The Python, numpy, torch (and CUDA) generator states, as tensors and numbers only."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()  # noqa: NPY002 - the global state is what we save
    state: dict[str, Any] = {
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": int(py_version),
        "python_gauss": py_gauss,
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }
    assert np_name == "MT19937"
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the states from :func:`capture_rng`."""
    random.setstate(
        (state["python_version"], tuple(int(v) for v in state["python"].tolist()), state["python_gauss"])
    )
    np.random.set_state(  # noqa: NPY002 - the global state is what we restore
        (
            "MT19937",
            state["numpy"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# --------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def describe_arch(model: nn.Module) -> dict[str, Any]:
    """Name, parameter count and embedding size of a model (stored with every checkpoint)."""
    model = unwrap_model(model)
    config = getattr(model, "config", None)
    if isinstance(config, dict):  # LVCG keeps {"model": {...}, "data": {...}}
        name = config.get("model", {}).get("name") or config.get("name")
    else:
        name = getattr(config, "name", None)
    return {
        "name": str(name or type(model).__name__),
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "embedding_dim": int(getattr(model, "embedding_dim", 0) or 0),
    }


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    settings: Settings | dict[str, Any],
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    rng: dict[str, Any] | list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (a killed job leaves the previous file, never half of one).

    ``rng`` is what :func:`capture_rng` returned (or a list of them, one per rank); it is only
    needed for exact resumption. ``extra`` holds further JSON-able values (e.g. metrics).
    """
    settings_dict = settings.model_dump(mode="json") if isinstance(settings, BaseModel) else dict(settings)
    plain = unwrap_model(model)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model_state": {k: v.detach().cpu() for k, v in plain.state_dict().items()},
        "settings": settings_dict,
        "arch": describe_arch(plain),
        "step": int(step),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if rng is not None:
        payload["rng"] = rng
    if extra:
        payload["extra"] = extra
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # Through a Python file object, a full disk is an OSError (atomic_path says it in one line);
        # torch's own path writer turns it into a RuntimeError about zip positions.
        torch.save(payload, handle)


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------
def bundled_weights_path() -> Path:
    """Where the packaged default lvcg-tiny weights live (they may be absent in a dev checkout)."""
    return Path(str(resources.files("lvcg_cli") / "assets" / "weights" / BUNDLED_WEIGHTS))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; one-line :class:`LvcgError` on any problem."""
    path = Path(path)
    if not path.exists():
        raise LvcgError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise LvcgError(f"{path}: is a folder, not a checkpoint file (e.g. {path / 'final.pt'})")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, unreadable file ...
        raise LvcgError(f"{path}: not a readable checkpoint ({_load_failure(exc)})") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise LvcgError(f"{path}: not an lvcg checkpoint (no 'format' entry)")
    if ckpt["format"] == "lvcg-checkpoint/1":
        raise LvcgError(
            f"{path}: a checkpoint of lvcg 0.1, whose model computes differently; retrain it with this "
            "version (lvcg pretrain), or read it with lvcg 0.1"
        )
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise LvcgError(
            f"{path}: unsupported checkpoint format {ckpt['format']!r} (expected {CHECKPOINT_FORMAT})"
        )
    for key in ("model_state", "settings", "arch", "step"):
        if key not in ckpt:
            raise LvcgError(f"{path}: incomplete checkpoint (no {key!r} entry)")
    if not isinstance(ckpt["model_state"], dict):
        raise LvcgError(f"{path}: not an lvcg checkpoint (model_state is not a table of tensors)")
    check_finite_state(ckpt["model_state"], path)
    return ckpt


def _first_sentence(text: str) -> str:
    """The first sentence of ``text`` (whole, never cut mid-word), without a final full stop."""
    head = first_line(text, empty="")
    return re.split(r"\.(?:\s|$)", head, maxsplit=1)[0].strip()


def _load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` failed, in a few whole words.

    torch's messages run to several sentences of advice (one of them: load with
    ``weights_only=False``, which lvcg must never do); the one-line error keeps the cause only.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = _first_sentence(text.split(marker, 1)[1])
        return (
            f"a safe weights-only load refuses it: {detail}"
            if detail
            else "a safe weights-only load refuses it"
        )
    cause = _first_sentence(text) or type(exc).__name__
    return f"truncated or corrupt: {cause}"


def check_finite_state(state: dict[str, Any], path: str | Path = "checkpoint") -> None:
    """Refuse weights holding NaN or inf: every output of such a model would be NaN, silently."""
    bad = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in state.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    }
    if bad:
        name, count = next(iter(bad.items()))
        more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
        raise LvcgError(
            f"{path}: weights are not finite ({count} NaN/inf values in {name}{more}); "
            "training diverged or the file is damaged"
        )


def _known_only(tree: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Drop keys the current settings do not know (a checkpoint from another lvcg version)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value = _known_only(value, annotation)
        out[key] = value
    return out


def checkpoint_settings(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> Settings:
    """The checkpoint's own settings as :class:`Settings`.

    Unknown keys outside the model section are dropped (they cannot change the architecture);
    an unknown model key is an error, because it would define a model this version cannot build.
    """
    raw = dict(ckpt["settings"])
    model_raw = raw.get("model", {})
    unknown = sorted(set(model_raw) - set(ModelSettings.model_fields))
    if unknown:
        raise LvcgError(
            f"{path}: checkpoint model settings unknown to this lvcg version: {', '.join(unknown)}"
        )
    cleaned = _known_only(raw, Settings)
    try:
        return Settings.model_validate(cleaned)
    except LvcgError as exc:  # an architecture name this installation has not registered
        raise LvcgError(f"{path}: checkpoint settings are invalid ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise LvcgError(f"{path}: checkpoint settings are invalid ({where}: {err['msg']})") from None


def architecture_view(settings: Settings | dict[str, Any]) -> dict[str, Any]:
    """The settings that define the architecture and the preprocessing, as flat dotted keys."""
    tree = settings.model_dump(mode="json") if isinstance(settings, BaseModel) else settings
    model = ModelSettings.model_validate(tree.get("model", {})).model_dump(mode="json")
    data = DataSettings.model_validate(tree.get("data", {})).model_dump(mode="json")
    view = {f"model.{k}": v for k, v in model.items()}
    view.update({f"data.{k}": data[k] for k in PREPROCESSING_KEYS if k in data})
    return view


def check_compatible(ckpt: dict[str, Any], settings: Settings, path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint whose architecture or preprocessing differs from this run's settings."""
    have = architecture_view(checkpoint_settings(ckpt, path))
    want = architecture_view(settings)
    differing = [k for k in want if have.get(k) != want[k]]
    if not differing:
        return
    shown = ", ".join(f"{k}={have.get(k)!r} (run: {want[k]!r})" for k in differing[:3])
    more = f" and {len(differing) - 3} more" if len(differing) > 3 else ""
    raise LvcgError(
        f"{path}: checkpoint of {have.get('model.name')} does not match this run's "
        f"{want['model.name']}: {shown}{more}"
    )


def check_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    """Strict comparison of a state dict with a model: same keys, same shapes, else one line."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} shape mismatch(es) (e.g. {k}: {tuple(state[k].shape)} vs {expected[k]})"
        )
    if problems:
        raise LvcgError(f"{path}: weights do not match the architecture: {'; '.join(problems)}")


def load_model(path: str | Path | None, device: str | torch.device = "cpu") -> tuple[nn.Module, Settings]:
    """Rebuild a model from a checkpoint (``None``: the bundled lvcg-tiny weights), in eval mode.

    The architecture comes from the checkpoint's own settings, and the weights are loaded
    strictly, so a checkpoint can only ever produce the model it was trained as.
    """
    from lvcg_cli.engine.device import gru_device
    from lvcg_cli.model.registry import build_model

    if path is None:
        path = bundled_weights_path()
        if not path.is_file():
            raise LvcgError(
                f"{path}: no bundled weights in this installation; pass --checkpoint runs/<id>/final.pt"
            )
    ckpt = load_checkpoint(path, map_location="cpu")
    settings = checkpoint_settings(ckpt, path)
    model = build_model(settings.model, settings.data, gru_device=gru_device)
    check_state(model, ckpt["model_state"], path)
    model.load_state_dict(ckpt["model_state"], strict=True)
    model.to(torch.device(device) if isinstance(device, str) else device)
    model.eval()
    return model, settings
