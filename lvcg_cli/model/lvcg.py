"""LVCG: the latent vectorcardiogram model, assembled from its stages.

A 12-lead ECG is twelve linear views of one cardiac electrical field. The model::

    signal (B,12,T), visible (B,12)
      1. lift       physics ridge lift (geometry.py) + learned correction (lifter.py) -> lifted (B,3,T)
      2. cut        beats from `bounds`, each resampled to L (beats.py), divided by the
                    lifted field's RMS (one number per record)                       -> beats_in (B,K,3,L)
      3. encode     ResNet-style beat encoder + token bottleneck (encoder.py)        -> tokens (B,K,n,d)
      4. dynamics   causal GRU over tokens + RR (dynamics.py)                        -> states (B,K,S), next_pred
      5. decode     tokens -> beat VCGs (decoder.py), times the RMS again            -> beats_out (B,K,3,L)
                    stitch onto time (beats.py); samples outside every beat keep `lifted` -> field (B,3,T)
                    fixed projection (geometry.py, a buffer, never trained)          -> recon (B,12,T)
      6. loss       hidden / visible / lift / beat / temporal / invariance (losses.py)
      7. embed      [beat tokens | GRU state | RR statistics | VCG measures in mV]   -> (B, D)

The reconstruction goes through the tokens: ``recon`` is the fixed projection of the decoded
field (plus, only if ``residual_refine`` is on, a correction that reads nothing but that
projection), so the hidden-lead loss shapes the very vectors the embedding is made of.

Why divide by the field's RMS before encoding: the input scale comes from the visible leads
(``signals/model_input.py``), so the same heart seen through I, II, V2 and through all twelve
leads arrives at different amplitudes. Dividing the lifted field by its own RMS makes the beat
tokens depend on the *shape* of the field only, which is what should not change with the view;
absolute amplitude is kept, in mV, in the VCG-measures block of the embedding.

Only the visible leads enter (hidden ones are zeroed before anything reads them), so the outputs
do not change when a hidden lead does, and the same model serves any subset of visible leads.
Padded beats (``beat_mask`` False) are never encoded or decoded, so they cannot change anything.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from lvcg_cli.model.beats import cut_beats, stitch_beats
from lvcg_cli.model.config import DEFAULT_FS, InputSpec, LossWeights, ModelSettings
from lvcg_cli.model.decoder import BeatDecoder, ResidualRefine
from lvcg_cli.model.dynamics import BeatDynamics
from lvcg_cli.model.encoder import BeatEncoder
from lvcg_cli.model.geometry import LeadField
from lvcg_cli.model.lifter import LearnedLifter
from lvcg_cli.model.losses import lvcg_losses
from lvcg_cli.model.vcg_measures import VCG_MEASURES, vcg_measures

__all__ = ["LVCG", "RHYTHM_FEATURES", "VCG_MEASURES", "complete_beats", "field_rms", "rhythm_features"]

RHYTHM_FEATURES = ("rr_mean", "rr_std", "rmssd", "pnn50", "rr_min", "rr_max", "rr_cv", "beat_fraction")
"""The rhythm block of the embedding, in order (RR values in seconds; see :func:`rhythm_features`)."""

FIELD_RMS_FLOOR = 1e-3
"""Smallest field RMS divided by (a flat record must not blow up to huge beats)."""


def field_rms(field: Tensor) -> Tensor:
    """(B, 3, T) -> (B, 1, 1): RMS of the field over time and axes, detached, floored."""
    rms = field.detach().float().pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    return rms.clamp(min=FIELD_RMS_FLOOR).to(field.dtype)


def complete_beats(bounds: Tensor, beat_mask: Tensor, n_samples: int) -> Tensor:
    """(B, K) True for valid beats that the window edges did not cut; all valid beats if none is.

    A beat whose segment starts at sample 0 or ends at the last sample was clipped by the window
    (``signals/beats.py`` clips segments to it), so its token describes part of a beat. The
    morphology mean and the dynamics read-out use the complete beats only.
    """
    whole = beat_mask & (bounds[..., 0] > 0) & (bounds[..., 1] < n_samples)
    return torch.where(whole.any(dim=1, keepdim=True), whole, beat_mask)


def rhythm_features(rr: Tensor, beat_mask: Tensor) -> Tensor:
    """(B, K) RR seconds, (B, K) mask -> (B, 8) statistics named by :data:`RHYTHM_FEATURES`.

    ``rr[k]`` is the interval before beat ``k``; the first beat repeats the next interval, so
    successive differences (RMSSD, pNN50: share of |dRR| > 50 ms) start at beat 1.
    ``beat_fraction`` is the share of the ``K`` beat slots used (a rate for a fixed window).
    Records with no (or one) beat get zeros where a statistic is undefined.
    """
    m = beat_mask.to(rr.dtype)
    n = m.sum(dim=1)
    mean = (rr * m).sum(1) / n.clamp(min=1)
    std = (((rr - mean[:, None]) ** 2 * m).sum(1) / n.clamp(min=1)).sqrt()
    pair = beat_mask[:, 1:] & beat_mask[:, :-1]
    pair[:, 0] = False  # rr[0] is a copy of rr[1]
    pm = pair.to(rr.dtype)
    d = (rr[:, 1:] - rr[:, :-1]).abs()
    n_pair = pm.sum(1).clamp(min=1)
    rmssd = ((d**2 * pm).sum(1) / n_pair).sqrt()
    pnn50 = ((d > 0.05).to(rr.dtype) * pm).sum(1) / n_pair
    big = torch.finfo(rr.dtype).max
    rr_min = torch.where(beat_mask, rr, big).amin(1).where(n > 0, 0.0)
    rr_max = torch.where(beat_mask, rr, -big).amax(1).where(n > 0, 0.0)
    cv = std / mean.clamp(min=1e-3)
    return torch.stack([mean, std, rmssd, pnn50, rr_min, rr_max, cv, n / beat_mask.shape[1]], dim=1)


class LVCG(nn.Module):
    """The latent-VCG model; build it with :func:`lvcg_cli.model.registry.build_model`."""

    def __init__(
        self,
        model: ModelSettings,
        data: InputSpec | None = None,
        *,
        gru_device: Callable[[torch.device], torch.device] | None = None,
    ):
        super().__init__()
        self.settings = model
        self.fs = float(data.fs) if data is not None else DEFAULT_FS
        data_config = data.model_dump(mode="json") if isinstance(data, BaseModel) else {"fs": self.fs}
        self.config = {"model": model.model_dump(mode="json"), "data": data_config}
        self.beat_len, self.n_tokens, self.d_token = model.beat_len, model.n_tokens, model.d_token
        d_flat = model.n_tokens * model.d_token

        self.lead_field = LeadField(model.geometry, model.lift, model.lift_eps)  # fixed buffer
        self.lifter = LearnedLifter(model.lifter_channels, model.lifter_layers)
        self.encoder = BeatEncoder(
            model.encoder_channels, model.n_tokens, model.d_token, model.beat_len, model.dropout
        )
        self.dynamics = BeatDynamics(d_flat, model.state_dim, model.gru_layers, gru_device=gru_device)
        d_dec = d_flat + (model.state_dim if model.decoder_state else 0)
        self.decoder = BeatDecoder(d_dec, model.encoder_channels, model.beat_len, model.dropout)
        self.refine = ResidualRefine() if model.residual_refine else None

    # ---- the stages, in order -------------------------------------------------------------
    def lift(self, signal: Tensor, visible: Tensor) -> Tensor:
        """(B, 12, T) inputs, (B, 12) visible -> (B, 3, T) latent field (physics + learned)."""
        shown = signal.masked_fill(~visible.unsqueeze(-1), 0.0)
        return self.lifter(shown, visible, self.lead_field.lift(shown, visible))

    def encode_beats(self, beats: Tensor, beat_mask: Tensor) -> Tensor:
        """(B, K, 3, L) beats -> (B, K, n_tokens, d_token); padded beats give zero tokens.

        See :meth:`_per_valid_beat` for how padded beats are skipped without a device sync.
        """
        tokens = self._per_valid_beat(self.encoder, beats, beat_mask)
        return tokens.view(*beat_mask.shape, self.n_tokens, self.d_token)

    def decode_beats(self, tokens: Tensor, states: Tensor, beat_mask: Tensor) -> Tensor:
        """(B, K, n, d) tokens (+ (B, K, S) states) -> (B, K, 3, L); padded beats stay 0."""
        z = tokens.flatten(2)
        if self.settings.decoder_state:
            z = torch.cat([z, states.to(z.dtype)], dim=-1)
        return self._per_valid_beat(self.decoder, z, beat_mask)

    dense_beats: bool | None = None
    """None: compute only the valid beats on the CPU, every beat slot elsewhere (see below)."""

    def _per_valid_beat(self, net: nn.Module, x: Tensor, beat_mask: Tensor) -> Tensor:
        """Apply ``net`` to the valid beats of (B, K, ...) ``x``; padded beats come out as zeros.

        On the CPU only the valid beats are computed (picking them costs nothing there). On an
        accelerator every beat slot is computed and the padded ones zeroed: picking them would need
        ``nonzero``, a host-device synchronisation that stalls the GPU every step, and the padded
        slots are cheap in a batched kernel. Both give the same values (GroupNorm, no batch
        statistics: a beat's output never depends on another beat).
        """
        b, k = beat_mask.shape
        dense = self.dense_beats if self.dense_beats is not None else x.device.type != "cpu"
        if not dense:
            idx = beat_mask.nonzero(as_tuple=True)
            if idx[0].numel() == 0:
                shape = net(x.new_zeros(1, *x.shape[2:])).shape[1:]
                return x.new_zeros(b, k, *shape)
            valid = net(x[idx])
            return valid.new_zeros(b, k, *valid.shape[1:]).index_put(idx, valid)
        out = net(x.flatten(0, 1))
        out = out.view(b, k, *out.shape[1:])
        keep = beat_mask.view(b, k, *([1] * (out.dim() - 2)))
        return torch.where(keep, out, torch.zeros((), dtype=out.dtype, device=out.device))

    def field_tokens(self, field: Tensor, bounds: Tensor, beat_mask: Tensor) -> tuple[Tensor, Tensor]:
        """A (B, 3, T) field -> (its beats divided by its RMS (B, K, 3, L), their tokens (B, K, n, d)).

        The one way any field becomes tokens: the model's own lifted field, and (in the
        invariance loss) the reference field of all twelve leads.
        """
        beats = cut_beats(field / field_rms(field), bounds, self.beat_len, beat_mask)
        return beats, self.encode_beats(beats, beat_mask)

    def _encode(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Stages 1-4 (everything :meth:`embed` needs)."""
        visible, beat_mask = batch["visible"].bool(), batch["beat_mask"].bool()
        lifted = self.lift(batch["signal"], visible)
        beats_in, tokens = self.field_tokens(lifted, batch["bounds"], beat_mask)
        states, next_pred, _ = self.dynamics(tokens.flatten(2), batch["rr"], beat_mask)
        complete = complete_beats(batch["bounds"], beat_mask, lifted.shape[-1])
        # The state after the last complete beat: a state that has just read a beat cut by the
        # window edge describes the dynamics less well (and differs with where the window ends).
        last = torch.where(complete, torch.arange(complete.shape[1], device=complete.device), -1).amax(1)
        final = states[torch.arange(states.shape[0], device=states.device), last.clamp(min=0)]
        return {
            "lifted": lifted,
            "beats_in": beats_in,
            "tokens": tokens,
            "states": states,
            "next_pred": next_pred,
            "final_state": final * (last >= 0).to(final.dtype).unsqueeze(-1),
            "complete": complete,
        }

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The sample batch (signals/model_input.py) -> every intermediate (docs/ARCHITECTURE.md)."""
        out = self._encode(batch)
        visible, beat_mask = batch["visible"].bool(), batch["beat_mask"].bool()
        lifted = out["lifted"]
        rms = field_rms(lifted).unsqueeze(1)  # (B, 1, 1, 1): back to the lifted field's units
        beats_out = self.decode_beats(out["tokens"], out["states"], beat_mask) * rms
        stitched, coverage = stitch_beats(beats_out, batch["bounds"], beat_mask, lifted.shape[-1])
        field = torch.where(coverage.unsqueeze(1), stitched, lifted)  # uncovered: un-bottlenecked lift
        decoded = self.lead_field.project(field)
        recon = decoded if self.refine is None else self.refine(decoded, visible)
        out.update(beats_out=beats_out, field=field, coverage=coverage, decoded=decoded, recon=recon)
        return out

    def loss(
        self, batch: dict[str, Tensor], out: dict[str, Tensor], weights: LossWeights
    ) -> dict[str, Tensor]:
        """``total`` and every term (losses.py); each term is a mean over its valid elements."""
        return lvcg_losses(batch, out, weights, model=self)

    # ---- the embedding ----------------------------------------------------------------------
    def embedding_layout(self) -> dict[str, slice]:
        """Where each block sits in :meth:`embed`'s vector."""
        sizes = {
            "morphology": self.n_tokens * self.d_token,
            "dynamics": self.settings.state_dim,
            "rhythm": len(RHYTHM_FEATURES),
            "vcg": len(VCG_MEASURES),
        }
        layout, start = {}, 0
        for name, size in sizes.items():
            layout[name] = slice(start, start + size)
            start += size
        return layout

    @property
    def embedding_dim(self) -> int:
        return self.embedding_layout()["vcg"].stop

    @property
    def embedding_names(self) -> list[str]:
        """One name per embedding dimension: ``morph_<i>``, ``dyn_<i>``, the rhythm and VCG names."""
        layout = self.embedding_layout()
        return (
            [f"morph_{i}" for i in range(layout["morphology"].stop - layout["morphology"].start)]
            + [f"dyn_{i}" for i in range(layout["dynamics"].stop - layout["dynamics"].start)]
            + list(RHYTHM_FEATURES)
            + list(VCG_MEASURES)
        )

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """One vector per record: [mean token | GRU state | RR stats (s) | VCG measures (mV)].

        ``morphology`` (n_tokens * d_token): the mean of the tokens of the complete beats (see
        :func:`complete_beats`); ``dynamics`` (state_dim): the last GRU layer's state after the
        last complete beat; ``rhythm`` (8): :data:`RHYTHM_FEATURES` over all valid beats;
        ``vcg`` (20): :data:`VCG_MEASURES` of the lifted field in mV (times the record's
        ``scale``). Deterministic in eval mode (no dropout, no sampling).
        """
        out = self._encode(batch)
        beat_mask, complete = batch["beat_mask"].bool(), out["complete"]
        m = complete.to(out["tokens"].dtype).unsqueeze(-1)
        morph = (out["tokens"].flatten(2) * m).sum(1) / m.sum(1).clamp(min=1)
        rhythm = rhythm_features(batch["rr"].to(morph.dtype), beat_mask)
        scale = batch["scale"].float()
        scale = scale.mean(dim=1) if scale.dim() == 2 else scale  # per-lead scales: their mean
        field_mv = out["lifted"].float() * scale.view(-1, 1, 1)
        vcg = vcg_measures(field_mv, batch["rpeaks"], batch["bounds"], complete, self.fs)
        return torch.cat([morph, out["final_state"].to(morph.dtype), rhythm, vcg.to(morph.dtype)], dim=1)
