"""Stage 5: decode beat tokens into beat VCGs, and the optional residual refinement of the leads.

:class:`BeatDecoder` mirrors the encoder: a linear map from the tokens to the whole beat, plus a
conv path that starts with a linear map from the flattened tokens to a short
feature map (the encoder's last width, ``L / 2**(stages + 1)`` long), then one residual stage per
encoder stage in reverse, each doubling the length (nearest upsampling + conv, which avoids the
checkerboard artefacts of transposed convs), a last linear upsampling to ``L`` (the mirror of the
encoder's stride-2 stem) and a conv to the 3 field channels. Stitching the
decoded beats back onto time is :func:`lvcg_cli.model.beats.stitch_beats`; projecting the field
to 12 leads is the fixed :class:`~lvcg_cli.model.geometry.LeadField`.

By default the decoder reads the tokens only (``model.decoder_state`` False): the token is then
the whole description of a beat's morphology, and the GRU state is free to describe dynamics.
With ``decoder_state`` True it also reads the causal state of the beat (beats ``0..k``).

:class:`ResidualRefine` (``model.residual_refine``, off by default) adds a small learned
correction to the projected leads that reads *only* the projection of the decoded field and the
visibility flags (two convs of width 5, zero-initialised so it starts as the identity). It may
correct what the decoded field produced (non-dipolar content the rank-3 projection cannot hold),
but it cannot bypass the token bottleneck: v0.1 fed it the visible leads too, and it learned to
do the reconstruction around the tokens (hidden-lead r of the decoded field alone equalled the
plain physics lift), so the hidden-lead loss barely shaped the embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lvcg_cli.model.encoder import ResBlock1d, _norm

__all__ = ["BeatDecoder", "ResidualRefine"]


class BeatDecoder(nn.Module):
    """(N, D_in) flattened tokens (+ state) -> (N, 3, L) beat VCGs: a linear map plus a conv net.

    The mirror of :class:`~lvcg_cli.model.encoder.BeatEncoder`: the linear path can hold the
    principal components of the beats, the conv path (zero-initialised output) what they miss.
    """

    def __init__(self, d_in: int, channels: list[int], beat_len: int, dropout: float = 0.0):
        super().__init__()
        self.beat_len = beat_len
        self.linear = nn.Linear(d_in, 3 * beat_len)
        self.base_len = max(beat_len // 2 ** (len(channels) + 1), 1)  # the encoder's last length
        rev = list(reversed(channels))
        self.c0 = rev[0]
        self.inp = nn.Linear(d_in, rev[0] * self.base_len)
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(rev, rev[1:] + [channels[0]], strict=True):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), ResBlock1d(c_in, c_out, dropout=dropout)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(_norm(channels[0]), nn.GELU())
        self.proj = nn.Conv1d(channels[0], 3, 7, padding=3)
        assert self.proj.bias is not None
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z: Tensor) -> Tensor:
        h = self.out(self.blocks(self.inp(z).view(-1, self.c0, self.base_len)))
        # Mirror of the encoder's stride-2 stem: the last doubling (to exactly beat_len) is a linear
        # upsampling followed by the output conv, the cheapest place to spend the full resolution.
        h = nn.functional.interpolate(h, size=self.beat_len, mode="linear", align_corners=False)
        return self.linear(z).view(-1, 3, self.beat_len) + self.proj(h)


class ResidualRefine(nn.Module):
    """(B, 12, T) projected decoded field, (B, 12) visible -> refined leads.

    Reads nothing but the projection and the flags; zero-initialised output, so at init it is
    the identity.
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        first, last = nn.Conv1d(24, channels, 5, padding=2), nn.Conv1d(channels, 12, 5, padding=2)
        self.net = nn.Sequential(first, nn.GELU(), last)
        assert last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, projected: Tensor, visible: Tensor) -> Tensor:
        flags = visible.to(projected.dtype).unsqueeze(-1).expand(-1, -1, projected.shape[-1])
        return projected + self.net(torch.cat([projected, flags], dim=1))
