"""Frozen features of a prepared data set, computed once per (model, data set, leads) and cached.

The probe's features come from one of three embedding models (:data:`MODELS`): the checkpoint
(``lvcg``), the same architecture freshly initialised with a seed (``random-init``: a linear
probe on random convolutional features is known to be strong on PTB-XL), or the handcrafted
features of :mod:`lvcg_cli.downstream.features` (``features``). A model that runs a checkpoint
takes its architecture and input from it (:func:`lvcg_cli.settings.with_checkpoint`). Features
are stored under ``<cache>/embeddings/<data set>/`` (written atomically), keyed by the model's
identity, the prepared content and the visible leads, so a probe table embeds each data set once
per model however many tasks, seeds and ratios it scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import with_checkpoint

if TYPE_CHECKING:
    from lvcg_cli.datasets.prepared import PreparedData
    from lvcg_cli.settings import Settings

MODELS: tuple[str, ...] = ("lvcg", "random-init", "features")
"""The embedding models a probe can score."""
EMBED_CACHE_VERSION = "1"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (the identity of a checkpoint in caches and results)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class EmbeddingModel:
    """What turns windows into features: a (possibly random-init) LVCG, or the handcrafted features."""

    kind: str
    key: str  # identity for the embedding cache
    checkpoint: str  # what the results CSV says
    checkpoint_sha256: str
    settings: Settings
    model: Any = None  # LVCG for lvcg / random-init

    def embed(
        self,
        data: PreparedData,
        device: str = "cpu",
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
        visible: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, D) features of every record of ``data``, in chunks.

        ``visible`` (12,) restricts the leads the model sees (every present lead when None); the
        handcrafted features ignore it only when None (they are computed from the visible leads).
        """
        from lvcg_cli.downstream.embed import Embedder
        from lvcg_cli.downstream.features import handcrafted_features

        present = data.present()
        if visible is not None:
            present = present & np.asarray(visible, dtype=bool)[None]
        chunk = 512
        parts = []
        embedder = None
        if self.kind != "features":
            embedder = Embedder(
                self.model, self.settings.data, self.settings.model, device=device, batch_size=batch_size
            )
        for lo in range(0, len(data), chunk):
            hi = min(lo + chunk, len(data))
            windows = data.windows(lo, hi)
            if embedder is None:
                parts.append(handcrafted_features(windows, present[lo:hi], data.fs))
            else:
                parts.append(embedder.embed_windows(windows, present[lo:hi]))
            if progress is not None:
                progress(hi - lo)
        return np.concatenate(parts).astype(np.float32)


def embedding_model(
    kind: str, checkpoint: str | Path | None, settings: Settings, seed: int, device: str = "cpu"
) -> EmbeddingModel:
    """Build the embedding model of a probe row.

    ``random-init`` takes the architecture and preprocessing of the checkpoint (default: the
    bundled weights; the resolved settings when there are none) and seeds the fresh weights with
    ``seed``. ``features`` uses the resolved ``data`` settings' preprocessing.
    """
    import torch

    from lvcg_cli.engine.checkpoint import (
        bundled_weights_path,
        checkpoint_settings,
        load_checkpoint,
        load_model,
    )

    if kind not in MODELS:
        raise LvcgError(f"--model: must be one of {', '.join(MODELS)} (got {kind!r})")
    ckpt_path = Path(checkpoint) if checkpoint is not None else bundled_weights_path()
    shown = str(checkpoint) if checkpoint is not None else f"bundled:{ckpt_path.name}"
    if kind == "features":
        from lvcg_cli.downstream.features import FEATURES_VERSION

        key = f"features-v{FEATURES_VERSION}"
        return EmbeddingModel(kind, key, "features", "", settings)
    if kind == "lvcg":
        model, ckpt_settings = load_model(checkpoint, device)
        sha = file_sha256(ckpt_path)
        merged = with_checkpoint(settings, ckpt_settings)
        return EmbeddingModel(kind, f"lvcg-{sha[:16]}", shown, sha, merged, model)
    # random-init: same architecture, fresh weights from the seed
    from lvcg_cli.engine.device import gru_device
    from lvcg_cli.model.registry import build_model

    merged, sha = settings, ""
    if ckpt_path.is_file():
        merged = with_checkpoint(settings, checkpoint_settings(load_checkpoint(ckpt_path), ckpt_path))
        sha = file_sha256(ckpt_path)
    torch.manual_seed(int(seed))
    model = build_model(merged.model, merged.data, gru_device=gru_device).to(device).eval()
    spec = json.dumps(
        {"model": merged.model.model_dump(mode="json"), "data": merged.data.model_dump(mode="json")},
        sort_keys=True,
    )
    key = f"random-init-s{seed}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    return EmbeddingModel(kind, key, shown if ckpt_path.is_file() else "random-init", sha, merged, model)


def cached_embeddings(
    emb: EmbeddingModel,
    data: PreparedData,
    cache_root: Path,
    device: str = "cpu",
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    visible: np.ndarray | None = None,
) -> tuple[np.ndarray, bool]:
    """``(features (N, D), from_cache)``; computed once per (model, data set, leads), stored atomically."""
    from lvcg_cli.atomic import atomic_path

    leads = (
        "" if visible is None else "-leads" + "".join("1" if v else "0" for v in np.asarray(visible, bool))
    )
    target = (
        cache_root
        / "embeddings"
        / data.name.replace("/", "_")
        / f"{emb.key}-{data.key()}{leads}-v{EMBED_CACHE_VERSION}.npy"
    )
    if target.is_file():
        try:
            features = np.load(target, allow_pickle=False)
            if features.ndim == 2 and features.shape[0] == len(data):
                return features, True
        except (OSError, ValueError):
            pass  # damaged entry: recompute
    features = emb.embed(data, device, batch_size, progress, visible)
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        ids = np.concatenate([cache.manifest["id"].to_numpy(dtype=str) for cache in data.caches])
        first = ids[int(bad[0])] if int(bad[0]) < ids.size else f"row {int(bad[0])}"
        raise LvcgError(
            f"{data.name}: the {emb.kind} features of {bad.size} record(s) are not finite (NaN or inf), "
            f"e.g. {first}; nothing was cached or probed"
        )
    with atomic_path(target) as tmp:
        np.save(tmp, features, allow_pickle=False)
    return features, False
