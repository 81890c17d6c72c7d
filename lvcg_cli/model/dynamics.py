"""Stage 4: inter-beat dynamics, a causal GRU over the beat tokens and RR intervals.

Beat ``k``'s input is its flattened tokens plus two rhythm numbers: its RR interval (s) and the
change from the previous one (s). The GRU runs forward in time only, so the state at beat ``k``
depends on beats ``0..k`` and never on later beats; a linear head reads the state at ``k`` and
predicts beat ``k + 1``'s tokens (``next_pred``).

Padding: padded beats are a suffix of each record (that is how
:func:`lvcg_cli.signals.beats.beat_segments` lays them out), so causality alone keeps them from
touching any valid state; their states are then zeroed, and the per-record summary is the state
at the last *valid* beat (zeros for a record without any valid beat). No packing is needed.

Where the GRU runs is the engine's choice, injected as ``gru_device`` (a function from the
input's device to the GRU's): on Apple's MPS the GRU has been reported to return NaNs, so the
engine's :func:`lvcg_cli.engine.device.gru_device` runs it on the CPU, through a functional call
whose weights are copied there differentiably; gradients still reach the parameters where they
live. Without a choice the GRU runs where its input is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["BeatDynamics"]


class BeatDynamics(nn.Module):
    """(B, K, D) tokens, (B, K) rr seconds, (B, K) mask -> (states (B, K, S), next_pred (B, K, D), final (B, S))."""

    def __init__(
        self,
        d_in: int,
        state_dim: int,
        layers: int = 1,
        *,
        gru_device: Callable[[torch.device], torch.device] | None = None,
    ):
        super().__init__()
        self.gru_device = gru_device
        self.inp = nn.Linear(d_in + 2, state_dim)
        self.gru = nn.GRU(state_dim, state_dim, num_layers=layers, batch_first=True)
        self.predict = nn.Linear(state_dim, d_in)

    def _run_gru(self, x: Tensor) -> Tensor:
        where = x.device if self.gru_device is None else self.gru_device(x.device)
        if where == x.device:
            return self.gru(x)[0]
        params = {name: p.to(where) for name, p in self.gru.named_parameters()}
        return functional_call(self.gru, params, (x.to(where),))[0].to(x.device)

    def forward(self, tokens: Tensor, rr: Tensor, beat_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        valid = beat_mask.to(tokens.dtype).unsqueeze(-1)
        rr = rr.to(tokens.dtype) * beat_mask.to(tokens.dtype)
        d_rr = rr - torch.cat([rr[:, :1], rr[:, :-1]], dim=1)
        x = self.inp(torch.cat([tokens, rr.unsqueeze(-1), d_rr.unsqueeze(-1)], dim=-1))
        states = self._run_gru(x) * valid
        n_valid = beat_mask.sum(dim=1)
        last = (n_valid - 1).clamp(min=0)
        final = states[torch.arange(states.shape[0], device=states.device), last]  # zeros if no beat
        return states, self.predict(states), final
