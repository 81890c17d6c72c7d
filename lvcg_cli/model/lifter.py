"""Stage 1: lift the visible leads into the latent 3-D field (physics lift + a learned correction).

The physics lift (:meth:`LeadField.lift`, a ridge pseudo-inverse of the visible rows) is exact
for a noiseless dipole seen through the model's own geometry, but real leads are not: electrode
positions, torso shape and non-dipolar content differ per person, and with three visible leads
the pseudo-inverse simply cannot see what the hidden leads would add. A small dilated temporal
conv net looks at a neighbourhood of ~0.5 s of the visible leads and learns the correction.

Its input is, per time step: the 12 masked leads (hidden ones are zero), the 12 visibility flags
(so it knows which zeros are "hidden" rather than "flat"), and the 3 physics-lift channels. Its
last layer is zero-initialised, so an untrained model *is* the physics model, and training can
only start from there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LearnedLifter"]


class _DilatedBlock(nn.Module):
    """Residual block: GELU(conv_dilated(GroupNorm(x))) with a 1x1 mixing conv."""

    def __init__(self, channels: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(self.act(self.conv(self.norm(x))))


class LearnedLifter(nn.Module):
    """(B, 12, T) masked leads, (B, 12) visible, (B, 3, T) physics lift -> (B, 3, T) latent field.

    ``layers`` dilated blocks (dilations 1, 2, 4, ... capped at 16) of width ``channels``;
    ``layers == 0`` disables the learned part (the field is the physics lift).
    """

    def __init__(self, channels: int = 32, layers: int = 4):
        super().__init__()
        self.layers = layers
        if layers == 0:
            return
        self.inp = nn.Conv1d(12 + 12 + 3, channels, 1)
        self.blocks = nn.Sequential(*[_DilatedBlock(channels, 2 ** min(i, 4)) for i in range(layers)])
        self.out = nn.Conv1d(channels, 3, 1)
        assert self.out.bias is not None
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, leads: Tensor, visible: Tensor, physics: Tensor) -> Tensor:
        if self.layers == 0:
            return physics
        shown = leads.masked_fill(~visible.unsqueeze(-1), 0.0)  # hidden leads never enter
        flags = visible.to(leads.dtype).unsqueeze(-1).expand(-1, -1, leads.shape[-1])
        h = self.inp(torch.cat([shown, flags, physics], dim=1))
        return physics + self.out(self.blocks(h))
