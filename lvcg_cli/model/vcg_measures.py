"""Classical vectorcardiographic quantities, in mV, read off the model's latent field.

Why the embedding carries them: the model works on amplitude-normalised signals (one scale per
record), so its learned blocks are blind to absolute voltage by construction, and voltage is
what hypertrophy criteria (Sokolow-Lyon, Cornell) measure. The latent field is a VCG, so the
quantities cardiologists read off a VCG can be computed from it directly, in mV, by multiplying
back the record's scale. Because the field is the same whichever leads were visible (that is
what the model is trained for), these numbers are too.

Per beat, relative to its R peak (seconds)::

    QRS   [-0.05, +0.06]   mean vector (the QRS "area" vector, whose frontal angle is the
                           electrical axis) and the spatial peak vector (largest |v|)
    ST    [+0.08, +0.12]   mean vector (J point + ~40-60 ms)
    T     [+0.16, +0.40]   mean vector and peak magnitude, cut at the beat's end

Every window is clipped to its own beat (a fast beat's T window stops at the next beat) and to
the record. Vectors are averaged over the *complete* beats (not cut by the window edges; all
valid beats when none is complete). From the averaged vectors: the cosine of the QRS-T angle and
the frontal-plane directions (cos, sin of ``atan2(y, x)``; y points inferior, so left-axis
deviation, an axis beyond -30 degrees, is ``qrs_axis_sin < -0.5``). Angles are given as
cosine/sine, never in degrees, so every number is O(1) and no block dominates a distance.
``log_rms_mv`` is the log of the field's RMS magnitude over the window: the record's amplitude.

Axes are the geometry's (x right -> left, y superior -> inferior, z anterior -> posterior for
``dower``); see :mod:`lvcg_cli.model.geometry`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["VCG_MEASURES", "vcg_measures"]

VCG_MEASURES: tuple[str, ...] = (
    "log_rms_mv",
    "qrs_vec_x",
    "qrs_vec_y",
    "qrs_vec_z",
    "qrs_peak_mv",
    "qrs_peak_x",
    "qrs_peak_y",
    "qrs_peak_z",
    "st_vec_x",
    "st_vec_y",
    "st_vec_z",
    "t_vec_x",
    "t_vec_y",
    "t_vec_z",
    "t_peak_mv",
    "qrs_t_cos",
    "qrs_axis_cos",
    "qrs_axis_sin",
    "t_axis_cos",
    "t_axis_sin",
)
"""Names of :func:`vcg_measures`' columns, in order (vectors and magnitudes in mV)."""

QRS_WINDOW_S = (-0.05, 0.06)
ST_WINDOW_S = (0.08, 0.12)
T_WINDOW_S = (0.16, 0.40)
_EPS = 1e-6


def _window(
    field: Tensor, rpeaks: Tensor, bounds: Tensor, window_s: tuple[float, float], fs: float
) -> tuple[Tensor, Tensor]:
    """Samples of each beat's window: values (B, 3, K, W) and a mask (B, K, W) of those inside the beat."""
    b, c, n_time = field.shape
    k = rpeaks.shape[1]
    lo, hi = round(window_s[0] * fs), round(window_s[1] * fs)
    offsets = torch.arange(lo, hi + 1, device=field.device)
    idx = rpeaks.unsqueeze(-1) + offsets  # (B, K, W)
    inside = (idx >= bounds[..., :1]) & (idx < bounds[..., 1:]) & (idx >= 0) & (idx < n_time)
    flat = idx.clamp(0, n_time - 1).reshape(b, 1, -1).expand(-1, c, -1)
    values = torch.gather(field, 2, flat).reshape(b, c, k, -1)
    return values, inside


def _masked_mean_vector(values: Tensor, inside: Tensor) -> Tensor:
    """(B, 3, K, W), (B, K, W) -> (B, K, 3) mean over the window's valid samples (0 if none)."""
    w = inside.to(values.dtype).unsqueeze(1)
    return ((values * w).sum(-1) / w.sum(-1).clamp(min=1)).transpose(1, 2)


def _peak_vector(values: Tensor, inside: Tensor) -> Tensor:
    """(B, 3, K, W) -> (B, K, 3): the vector of largest magnitude within the window (0 if none)."""
    mag = values.norm(dim=1).masked_fill(~inside, -1.0)  # (B, K, W)
    at = mag.argmax(dim=-1, keepdim=True)  # (B, K, 1)
    peak = torch.gather(values, 3, at.unsqueeze(1).expand(-1, values.shape[1], -1, -1)).squeeze(-1)
    return peak.transpose(1, 2) * inside.any(-1, keepdim=True).to(values.dtype)


def _beat_average(per_beat: Tensor, weights: Tensor) -> Tensor:
    """(B, K, C), (B, K) 0/1 weights -> (B, C) weighted mean over beats (0 when no beat counts)."""
    w = weights.to(per_beat.dtype).unsqueeze(-1)
    return (per_beat * w).sum(1) / w.sum(1).clamp(min=1)


def _unit_2d(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """cos and sin of atan2(y, x); (0, 0) where the vector has no length."""
    norm = torch.sqrt(x * x + y * y)
    ok = norm > _EPS
    safe = norm.clamp(min=_EPS)
    return torch.where(ok, x / safe, 0.0), torch.where(ok, y / safe, 0.0)


def vcg_measures(field_mv: Tensor, rpeaks: Tensor, bounds: Tensor, beat_weights: Tensor, fs: float) -> Tensor:
    """(B, 3, T) field in mV, (B, K) R peaks, (B, K, 2) bounds, (B, K) beat weights -> (B, 20).

    Columns are named by :data:`VCG_MEASURES`; ``beat_weights`` says which beats to average
    (the complete ones). Computed in float32 whatever the input dtype.
    """
    field = field_mv.float()
    rpeaks, bounds = rpeaks.long(), bounds.long()
    qrs_v, qrs_in = _window(field, rpeaks, bounds, QRS_WINDOW_S, fs)
    st_v, st_in = _window(field, rpeaks, bounds, ST_WINDOW_S, fs)
    t_v, t_in = _window(field, rpeaks, bounds, T_WINDOW_S, fs)

    qrs_mean = _beat_average(_masked_mean_vector(qrs_v, qrs_in), beat_weights)
    qrs_peak_beats = _peak_vector(qrs_v, qrs_in)
    qrs_peak = _beat_average(qrs_peak_beats, beat_weights)
    qrs_peak_mag = _beat_average(qrs_peak_beats.norm(dim=-1, keepdim=True), beat_weights)
    st_mean = _beat_average(_masked_mean_vector(st_v, st_in), beat_weights)
    t_mean = _beat_average(_masked_mean_vector(t_v, t_in), beat_weights)
    t_peak_mag = _beat_average(_peak_vector(t_v, t_in).norm(dim=-1, keepdim=True), beat_weights)

    rms = field.pow(2).sum(1).mean(-1).sqrt()
    log_rms = torch.log(rms + 1e-3).unsqueeze(-1)
    denom = (qrs_mean.norm(dim=-1) * t_mean.norm(dim=-1)).clamp(min=_EPS)
    qrs_t_cos = torch.where(
        denom > _EPS, (qrs_mean * t_mean).sum(-1) / denom, torch.zeros_like(denom)
    ).unsqueeze(-1)
    qrs_axis = torch.stack(_unit_2d(qrs_mean[:, 0], qrs_mean[:, 1]), dim=-1)
    t_axis = torch.stack(_unit_2d(t_mean[:, 0], t_mean[:, 1]), dim=-1)
    return torch.cat(
        [log_rms, qrs_mean, qrs_peak_mag, qrs_peak, st_mean, t_mean, t_peak_mag, qrs_t_cos, qrs_axis, t_axis],
        dim=-1,
    )
