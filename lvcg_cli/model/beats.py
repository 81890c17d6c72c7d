"""Cut a latent field into fixed-length beats, and stitch decoded beats back onto the time axis.

Both directions are linear interpolation done with gathers over the whole batch at once (no Python
loop over records or beats), so they are differentiable and cheap.

Conventions
-----------
A beat ``k`` of record ``b`` covers the samples ``[start, end)`` of ``bounds[b, k]``. Cutting maps
its first sample to beat position 0 and its last (``end - 1``) to position ``L - 1``::

    pos(u) = start + u * (end - 1 - start),  u = 0, 1/(L-1), ..., 1

Stitching is the inverse map: sample ``t`` of the beat reads beat position
``(t - start) * (L - 1) / (end - 1 - start)``. A segment of one sample maps every position to it.

Stitching is an overlap-add: every valid beat writes its samples, and a sample covered by several
beats gets their average (the segments of :func:`lvcg_cli.signals.beats.beat_segments` share their
boundaries, so in practice each sample has one owner). Samples covered by no valid beat (before the
first beat, after the last, beyond ``max_beats``) are reported by the coverage mask; the model fills
them from its un-bottlenecked lifted field (see :mod:`lvcg_cli.model.lvcg`). Padded beats
(``beat_mask`` False) never read or write anything.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["beat_positions", "cut_beats", "stitch_beats"]


def _interp_gather(x: Tensor, pos: Tensor) -> Tensor:
    """Linearly interpolate ``x`` (B, C, N) at fractional positions ``pos`` (B, M) -> (B, C, M)."""
    n = x.shape[-1]
    pos = pos.clamp(0, n - 1)
    i0 = pos.floor().long().clamp(0, n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    w = (pos - i0.to(pos.dtype)).to(x.dtype).unsqueeze(1)  # (B, 1, M)
    c = x.shape[1]
    x0 = torch.gather(x, 2, i0.unsqueeze(1).expand(-1, c, -1))
    x1 = torch.gather(x, 2, i1.unsqueeze(1).expand(-1, c, -1))
    return x0 + w * (x1 - x0)


def beat_positions(bounds: Tensor, beat_len: int) -> Tensor:
    """Fractional sample positions (B, K, L) at which each beat is read (see the module doc)."""
    start = bounds[..., 0].to(torch.float32)
    last = (bounds[..., 1] - 1).to(torch.float32).clamp(min=start)  # empty segments read their start
    u = torch.linspace(0.0, 1.0, beat_len, device=bounds.device)
    return start.unsqueeze(-1) + u * (last - start).unsqueeze(-1)


def cut_beats(field: Tensor, bounds: Tensor, beat_len: int, beat_mask: Tensor | None = None) -> Tensor:
    """(B, C, T) field, (B, K, 2) bounds -> (B, K, C, L) beats resampled to ``beat_len``.

    Padded beats (``beat_mask`` False) come out as zeros, so nothing downstream can depend on
    whatever their bounds point at.
    """
    b, c, _ = field.shape
    k = bounds.shape[1]
    pos = beat_positions(bounds, beat_len).reshape(b, k * beat_len)
    beats = _interp_gather(field, pos).reshape(b, c, k, beat_len).transpose(1, 2)
    if beat_mask is not None:
        beats = torch.where(beat_mask[:, :, None, None], beats, torch.zeros((), dtype=beats.dtype))
    return beats


def stitch_beats(beats: Tensor, bounds: Tensor, beat_mask: Tensor, n_samples: int) -> tuple[Tensor, Tensor]:
    """(B, K, C, L) beats -> ((B, C, T) field, (B, T) bool coverage) by overlap-add.

    ``field`` is zero where ``coverage`` is False; a sample covered by several valid beats gets
    their mean.
    """
    b, k, c, length = beats.shape
    t = torch.arange(n_samples, device=beats.device)
    start, end = bounds[..., 0], bounds[..., 1]  # (B, K)
    inside = (t >= start.unsqueeze(-1)) & (t < end.unsqueeze(-1)) & beat_mask.unsqueeze(-1)  # (B, K, T)
    span = (end - 1 - start).clamp(min=1).to(torch.float32)
    pos = (t - start.unsqueeze(-1)).to(torch.float32) * ((length - 1) / span).unsqueeze(-1)  # (B, K, T)
    # Read beat k at pos, flattened over (K, L) so one gather serves every beat of a record.
    flat = beats.permute(0, 2, 1, 3).reshape(b, c, k * length)
    pos = pos.clamp(0, length - 1) + (torch.arange(k, device=beats.device) * length).unsqueeze(-1)
    offset = (torch.arange(k, device=beats.device) * length).unsqueeze(-1)  # keep i1 inside beat k
    i0 = pos.floor().long()
    i1 = torch.minimum(i0 + 1, offset + length - 1)
    w = (pos - i0.to(pos.dtype)).to(beats.dtype)
    i0, i1 = i0.reshape(b, 1, k * n_samples), i1.reshape(b, 1, k * n_samples)
    x0 = torch.gather(flat, 2, i0.expand(-1, c, -1)).reshape(b, c, k, n_samples)
    x1 = torch.gather(flat, 2, i1.expand(-1, c, -1)).reshape(b, c, k, n_samples)
    per_beat = x0 + w.unsqueeze(1) * (x1 - x0)  # (B, C, K, T)
    # where(), not a multiply: a padded beat holding NaN/inf must still contribute exactly nothing.
    summed = torch.where(inside.unsqueeze(1), per_beat, torch.zeros((), dtype=beats.dtype)).sum(dim=2)
    count = inside.sum(dim=1)  # (B, T)
    field = summed / count.clamp(min=1).to(beats.dtype).unsqueeze(1)
    return field, count > 0
