"""Stage 5: decode beat tokens into beat VCGs, and the optional residual refinement of the leads.

:class:`BeatDecoder` mirrors the encoder: a linear map from the flattened tokens to a short
feature map (the encoder's last width, ``L / 2**(stages + 1)`` long), then one residual stage per
encoder stage in reverse, each doubling the length (nearest upsampling + conv, which avoids the
checkerboard artefacts of transposed convs), a last linear upsampling to ``L`` (the mirror of the
encoder's stride-2 stem) and a conv to the 3 field channels. Stitching the
decoded beats back onto time is :func:`lvcg_cli.model.beats.stitch_beats`; projecting the field
to 12 leads is the fixed :class:`~lvcg_cli.model.geometry.LeadField`.

By default the decoder reads the tokens only (``model.decoder_state`` False): the token is then
the whole description of a beat's morphology, and the GRU state is free to describe dynamics.
With ``decoder_state`` True it also reads the causal state of the beat (beats ``0..k``).

:class:`ResidualRefine` (``model.residual_refine``, on by default) adds a small learned
correction to the projected leads, read from the projected leads and the visible inputs (two convs
of width 5, zero-initialised so it starts as the identity). Why on: the token bottleneck and the
rank-3 projection lose local detail that the visible leads still hold; on real PTB-XL+LUDB records
(visible I, II, V2, 250 training steps of lvcg-tiny) it raised hidden-lead r from 0.852 to 0.886.
The price: ``recon`` is no longer exactly ``project(field)``; ``field`` itself stays the
bottlenecked dipole, and the embedding does not use this stage at all.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lvcg_cli.model.encoder import ResBlock1d, _norm

__all__ = ["BeatDecoder", "ResidualRefine"]


class BeatDecoder(nn.Module):
    """(N, D_in) flattened tokens (+ state) -> (N, 3, L) beat VCGs."""

    def __init__(self, d_in: int, channels: list[int], beat_len: int, dropout: float = 0.0):
        super().__init__()
        self.beat_len = beat_len
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

    def forward(self, z: Tensor) -> Tensor:
        h = self.out(self.blocks(self.inp(z).view(-1, self.c0, self.base_len)))
        # Mirror of the encoder's stride-2 stem: the last doubling (to exactly beat_len) is a linear
        # upsampling followed by the output conv, the cheapest place to spend the full resolution.
        h = nn.functional.interpolate(h, size=self.beat_len, mode="linear", align_corners=False)
        return self.proj(h)


class ResidualRefine(nn.Module):
    """(B, 12, T) projected leads, (B, 12, T) visible inputs, (B, 12) visible -> refined leads.

    Zero-initialised output: at init it is the identity.
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(36, channels, 5, padding=2), nn.GELU(), nn.Conv1d(channels, 12, 5, padding=2)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, projected: Tensor, leads: Tensor, visible: Tensor) -> Tensor:
        shown = leads.masked_fill(~visible.unsqueeze(-1), 0.0)
        flags = visible.to(leads.dtype).unsqueeze(-1).expand(-1, -1, leads.shape[-1])
        return projected + self.net(torch.cat([projected, shown, flags], dim=1))
