"""The learning-rate schedule: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.

It is a small callable object (not a closure) so that ``LambdaLR.state_dict()`` stores its
plain-number attributes and a checkpoint can be loaded with ``weights_only=True``. The published
LVCG configuration named a warm-up that its loop never applied; here the warm-up is part of the
schedule itself and is tested.
"""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """Multiplier of the peak learning rate at a given optimiser step.

    ``step`` counts completed optimiser steps: step 0 is the first update, which uses
    ``1 / (warmup_steps + 1)`` of the peak so that no update runs at learning rate zero.
    After ``warmup_steps`` the multiplier follows half a cosine from 1 down to ``min_ratio``,
    reached at ``total_steps`` and held afterwards.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float):
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / decay_steps, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` driven by :class:`WarmupCosine` (call ``.step()`` after each optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, min_ratio))
