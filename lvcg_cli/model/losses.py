"""Stage 6: the self-supervised objective. Every term is a *mean* over its valid elements.

The data pipeline hides a subset of each record's leads; the model sees only the rest.
Terms (all squared errors in the record's z-score units, weighted by
:class:`~lvcg_cli.model.config.LossWeights`):

``hidden``
    ``recon`` vs ``target`` on leads that are present but hidden: the task itself. ``recon`` is
    the projection of the *decoded* field, so this term trains the beat tokens.
``visible``
    the same on the visible leads (keeps the decoded field consistent with what it was given).
``lift``
    ``project(lifted)`` vs ``target`` on the hidden present leads: deep supervision of the lifter
    through the short, un-bottlenecked path, so the lifter learns fast. It trains the lifter
    only; the reconstruction that is scored still goes through the tokens.
``beat``
    decoded beats ``beats_out`` vs the *reference field* cut into the same beats. The reference is
    the ridge lift of all present leads of ``target`` through the same fixed geometry: the field
    whose projection best fits every lead in least squares, i.e. the optimum of the lead terms. A
    target built from ``lifted`` (the model's own output) would instead pull the decoder towards
    the lifter's errors and, without a stop-gradient, let the two collapse onto each other.
``temporal``
    ``next_pred`` at beat ``k`` vs the tokens of beat ``k + 1`` (stop-gradient), over the pairs
    where both beats are valid.
``invariance``
    the beat tokens of the view vs the tokens the same encoder gives the reference field
    (stop-gradient target), over the valid beats: the tokens of three visible leads should be
    those of all twelve (the GRU, which reads the tokens, follows). Costs one extra encoder pass
    without gradient; skipped (0) when its weight is 0. Not on the GRU states: nothing else needs
    them to be large, and a relative error between two states lets the GRU switch itself off (its
    update gate stuck open: every state 0, the error 0/0), which a first version of this term did
    to the whole dynamics block.

The two token terms are *relative* squared errors, ``sum |a - b|^2 / sum |b|^2`` over the valid
beats of the batch: tokens are not normalised (their size carries the beat's size to the decoder),
and with a plain squared error the model could shrink every token to make these terms vanish.

A term with no valid element in a batch (no hidden lead, no pair of consecutive beats) is exactly
0, never NaN. Why means: with a sum, a term's size grows with the number of its elements (leads x
samples vs beats), and one term silently dominates the others whatever the weights say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

from lvcg_cli.model.beats import cut_beats
from lvcg_cli.model.geometry import LeadField

if TYPE_CHECKING:
    from lvcg_cli.model.lvcg import LVCG

__all__ = ["LOSS_TERMS", "lvcg_losses", "masked_mean", "reference_field", "relative_error"]

LOSS_TERMS = ("hidden", "visible", "lift", "beat", "temporal", "invariance")


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` (broadcastable) is True; 0 when nothing is selected."""
    mask = mask.expand_as(values)
    picked = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    return picked.sum() / mask.sum().clamp(min=1).to(values.dtype)


def relative_error(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """``sum |pred - target|^2 / sum |target|^2`` over the vectors where (B, K) ``mask`` is True.

    The denominator is pooled over the batch, not taken per vector: a single near-zero target
    vector (a flat beat) would otherwise blow its ratio, and the loss, up by orders of magnitude.
    """
    mask = mask.unsqueeze(-1).expand_as(pred)
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    err = torch.where(mask, (pred - target).pow(2), zero).sum()
    energy = torch.where(mask, target.pow(2), zero).sum()
    return err / (energy + eps)


def reference_field(lead_field: LeadField, target: Tensor, present: Tensor) -> Tensor:
    """The least-squares field of all present leads: (B, 12, T), (B, 12) -> (B, 3, T), no gradient."""
    with torch.no_grad():
        return lead_field.lift(target, present)


def lvcg_losses(
    batch: dict[str, Tensor], out: dict[str, Tensor], weights, *, model: LVCG
) -> dict[str, Tensor]:
    """Every loss term and their weighted ``total`` (see the module doc)."""
    lead_field = model.lead_field
    target = batch["target"].to(out["recon"].dtype)
    present, visible = batch["present"].bool(), batch["visible"].bool()
    hidden_leads = (present & ~visible).unsqueeze(-1)  # (B, 12, 1)
    shown_leads = (present & visible).unsqueeze(-1)

    sq = (out["recon"] - target).pow(2)
    terms = {
        "hidden": masked_mean(sq, hidden_leads),
        "visible": masked_mean(sq, shown_leads),
        "lift": masked_mean((lead_field.project(out["lifted"]) - target).pow(2), hidden_leads),
    }

    beat_mask = batch["beat_mask"].bool()
    reference = reference_field(lead_field, target, present)
    ref_beats = cut_beats(reference, batch["bounds"], model.beat_len, beat_mask)
    terms["beat"] = masked_mean(
        (out["beats_out"] - ref_beats.to(out["beats_out"].dtype)).pow(2), beat_mask[:, :, None, None]
    )

    tokens = out["tokens"].flatten(2)  # (B, K, D)
    pairs = beat_mask[:, :-1] & beat_mask[:, 1:]  # (B, K-1)
    terms["temporal"] = relative_error(out["next_pred"][:, :-1], tokens[:, 1:].detach(), pairs)

    if float(getattr(weights, "invariance", 0.0)) > 0:
        with torch.no_grad():
            _, ref_tokens = model.field_tokens(reference.to(out["lifted"].dtype), batch["bounds"], beat_mask)
        terms["invariance"] = relative_error(tokens, ref_tokens.flatten(2), beat_mask)
    else:
        terms["invariance"] = tokens.new_zeros(())

    total = cast(Tensor, sum(float(getattr(weights, name)) * value for name, value in terms.items()))
    return {"total": total, **terms}
