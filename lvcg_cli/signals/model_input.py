"""One preprocessed record -> the sample dict every model call takes (training and inference alike).

Everything that depends on *which leads are visible* happens here, and only visible leads feed it:
the amplitude scale is computed from the visible leads, hidden leads are zeroed in ``signal``, and
R peaks are detected on the visible leads. So changing a hidden lead can change ``target`` and
nothing else, and the model cannot learn a shortcut through the inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from lvcg_cli.signals.beats import beat_segments, detect_r_peaks
from lvcg_cli.signals.leads import N_LEADS
from lvcg_cli.signals.preprocess import normalize

if TYPE_CHECKING:
    from lvcg_cli.settings import DataSettings, ModelSettings

SAMPLE_KEYS = ("signal", "target", "visible", "present", "scale", "bounds", "beat_mask", "rr", "rpeaks")


def make_sample(
    signal_mv: np.ndarray,
    present: np.ndarray,
    visible: np.ndarray,
    data: DataSettings,
    model: ModelSettings,
) -> dict[str, torch.Tensor]:
    """Build the model input of one record.

    ``signal_mv`` is (12, T) mV at ``data.fs`` (as :func:`preprocess` or the packed cache gives it),
    ``present`` (12,) which leads the record has, ``visible`` (12,) which ones the model may see
    (a visible lead that is not present is treated as hidden). Returns tensors:

    * ``signal`` (12, T) float32: each lead minus its mean, divided by one scale (the standard
      deviation pooled over the visible leads); hidden and absent leads are zero;
    * ``target`` (12, T) float32: every present lead, same centring and scale (absent leads zero);
    * ``visible``, ``present`` (12,) bool;
    * ``scale`` () float32 in mV per unit (``target * scale + lead mean`` gives back mV).
      With ``data.normalize_scope == "lead"`` it is (12,) instead (one per lead, for comparison only);
    * ``bounds`` (K, 2) int64, ``beat_mask`` (K,) bool, ``rr`` (K,) float32 seconds, ``rpeaks``
      (K,) int64 sample of each beat's R peak, K = ``model.max_beats``, from R peaks detected on
      the visible leads of the mV signal.
    """
    x = np.asarray(signal_mv, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != N_LEADS:
        raise ValueError(f"signal_mv must be (12, T), got {x.shape}")
    present = np.asarray(present, dtype=bool).reshape(N_LEADS)
    seen = np.asarray(visible, dtype=bool).reshape(N_LEADS) & present

    target, scale = normalize(x, seen, data.normalize, data.normalize_scope)
    target = np.where(present[:, None], target, np.float32(0.0)).astype(np.float32, copy=False)
    signal = np.where(seen[:, None], target, np.float32(0.0)).astype(np.float32, copy=False)

    rpeaks = detect_r_peaks(x[seen], data.fs) if seen.any() else np.zeros(0, dtype=np.int64)
    segments = beat_segments(rpeaks, x.shape[-1], data.fs, model.max_beats)
    return {
        "signal": torch.from_numpy(np.ascontiguousarray(signal)),
        "target": torch.from_numpy(np.ascontiguousarray(target)),
        "visible": torch.from_numpy(seen.copy()),
        "present": torch.from_numpy(present.copy()),
        "scale": torch.as_tensor(np.asarray(scale, dtype=np.float32)),
        "bounds": torch.from_numpy(segments.bounds.astype(np.int64)),
        "beat_mask": torch.from_numpy(segments.mask.copy()),
        "rr": torch.from_numpy(segments.rr.astype(np.float32)),
        "rpeaks": torch.from_numpy(segments.rpeaks.astype(np.int64)),
    }


def make_batch(
    signals_mv: np.ndarray,
    present: np.ndarray,
    visible: np.ndarray,
    data: DataSettings,
    model: ModelSettings,
) -> dict[str, torch.Tensor]:
    """:func:`make_sample` over a (B, 12, T) array, stacked into (B, ...) tensors.

    ``present`` and ``visible`` are (B, 12) or a single (12,) mask shared by every record.
    """
    signals_mv = np.asarray(signals_mv)
    n = signals_mv.shape[0]
    present = np.broadcast_to(np.asarray(present, dtype=bool), (n, N_LEADS))
    visible = np.broadcast_to(np.asarray(visible, dtype=bool), (n, N_LEADS))
    samples = [make_sample(signals_mv[i], present[i], visible[i], data, model) for i in range(n)]
    return collate_samples(samples)


def collate_samples(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack sample dicts key by key (what ``DataLoader``'s default collate does, without its overhead)."""
    if not samples:
        raise ValueError("no samples to collate")
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
