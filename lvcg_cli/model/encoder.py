"""Stage 3: the beat encoder, a ResNet-style 1-D conv net ending in a small token bottleneck.

One beat of the latent field (3, L) becomes ``n_tokens`` tokens of width ``d_token``: a stride-2
stem conv (L -> L/2: at 100 Hz a beat of 60-100 samples is stretched to L = 128, so the first
halving loses little and halves the cost of everything after it), one residual stage per entry
of ``encoder_channels`` (each halving the length with a stride-2 conv), average pooling to
:data:`POOL_POSITIONS` positions, and a linear map to the tokens.

Why pool to a few positions instead of one: a beat is resampled so that its position axis means
"where in the cardiac cycle"; global mean pooling would throw that away and leave the decoder to
guess where the P, QRS and T waves sit. Four positions keep coarse timing at negligible cost.

Beside the conv net, a linear map of the whole beat feeds the tokens (see :class:`BeatEncoder`).
The tokens are not normalised: their size says how large the beat is next to the record's field,
which the decoder needs. The losses that compare tokens (next-beat prediction, invariance) are
relative errors instead, so shrinking the tokens cannot make them trivially small. GroupNorm (per
beat) is used instead of BatchNorm so that a beat's token depends on that beat alone, never on
the other beats or records in a batch.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["POOL_POSITIONS", "BeatEncoder", "ResBlock1d"]

POOL_POSITIONS = 4


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 8 that divides ``channels`` (any width works)."""
    groups = max(g for g in range(1, 9) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ResBlock1d(nn.Module):
    """Pre-activation residual block; ``stride=2`` halves the length (strided conv + 1x1 shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 5, dropout: float = 0.0):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            _norm(c_in),
            nn.GELU(),
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad),
            _norm(c_out),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, padding=pad),
        )
        self.skip = (
            nn.Identity() if (c_in == c_out and stride == 1) else nn.Conv1d(c_in, c_out, 1, stride=stride)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class BeatEncoder(nn.Module):
    """(N, 3, L) beats -> (N, n_tokens, d_token) tokens: a linear map of the beat plus a conv net.

    The linear path (the flattened beat times a matrix) can learn the beat's principal components,
    which already reconstruct a held-out beat of the latent field to r = 0.992 with 64 numbers
    (PCA on PTB-XL, MSE 0.015); the conv net alone reached r 0.978 with three times the error (MSE
    0.044), both paths together r 0.992 (MSE 0.016; benchmarks/beat_capacity.py). The conv
    path adds what is not linear in the samples (timing shifts, widths); its last layer is
    zero-initialised, so the encoder starts linear.
    """

    def __init__(
        self,
        channels: list[int],
        n_tokens: int,
        d_token: int,
        beat_len: int,
        dropout: float = 0.0,
        in_channels: int = 3,
    ):
        super().__init__()
        self.n_tokens, self.d_token = n_tokens, d_token
        self.linear = nn.Linear(in_channels * beat_len, n_tokens * d_token)
        self.stem = nn.Conv1d(in_channels, channels[0], 7, stride=2, padding=3)
        stages, c_prev = [], channels[0]
        for c in channels:
            stages.append(ResBlock1d(c_prev, c, stride=2, dropout=dropout))
            c_prev = c
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(POOL_POSITIONS)
        norm, last = _norm(c_prev), nn.Linear(c_prev * POOL_POSITIONS, n_tokens * d_token)
        self.head = nn.Sequential(norm, nn.GELU(), nn.Flatten(), last)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, beats: Tensor) -> Tensor:
        h = self.stages(self.stem(beats))
        tokens = self.linear(beats.flatten(1)) + self.head(self.pool(h))
        return tokens.view(-1, self.n_tokens, self.d_token)
