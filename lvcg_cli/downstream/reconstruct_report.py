"""``lvcg reconstruct --data NAME``: every method scored on the same prepared split.

The model and the baselines see the same preprocessed windows (the checkpoint's rate and band,
so the physics and linear maps are scored at the model's input too), the leads scored are the
hidden independent leads each record has, and both sides are band-passed with the model's filter
(:func:`lvcg_cli.downstream.reconstruct.evaluate_windows`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.downstream.reconstruct import Reconstructor, SplitScores, evaluate_windows, open_reconstructor
from lvcg_cli.errors import LvcgError
from lvcg_cli.signals.leads import lead_names

if TYPE_CHECKING:
    from pathlib import Path

    from lvcg_cli.settings import Settings

REPORT_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
"""The independent leads; the others follow from I and II whenever those are known."""


@dataclass
class SplitReport:
    """The scores of each method on one prepared split, and what they were computed on."""

    dataset: str
    split: str
    n_records: int
    visible: np.ndarray  # (12,) the leads every method saw
    scores: dict[str, SplitScores]

    @property
    def scored_leads(self) -> list[str]:
        """The hidden independent leads (the figures are averaged over these)."""
        return [name for name in REPORT_LEADS if name not in lead_names(self.visible)]

    def payload(self) -> dict[str, Any]:
        """What ``--json`` prints."""
        leads = self.scored_leads
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_records": self.n_records,
            "visible": lead_names(self.visible),
            "scored_leads": leads,
            "reference": "hidden leads of the prepared windows, both sides band-passed with the model filter",
            "methods": {
                key: {"overall": s.overall(leads), "per_lead": s.per_lead()} for key, s in self.scores.items()
            },
        }


def report_engines(
    settings: Settings,
    *,
    method: str,
    everything: bool,
    geometry: str,
    checkpoint: str | Path | None,
    batch_size: int,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[dict[str, Reconstructor], Settings]:
    """The methods to score (``everything``: the model and every baseline), and the settings of
    their common input: the checkpoint's when the model is among them.

    Without a usable model, ``everything`` goes on with the baselines (and says why).
    """
    engines: dict[str, Reconstructor] = {}
    used = settings
    if everything or method == "lvcg":
        try:
            engines["lvcg"], used = open_reconstructor(
                settings, "lvcg", geometry=geometry, checkpoint=checkpoint, batch_size=batch_size
            )
        except LvcgError as exc:
            if not everything:
                raise
            warn(f"model skipped: {exc}")
    if everything or method == "physics":
        for geo in ("ideal", "dower") if everything else (geometry,):
            engines[f"physics-{geo}"] = Reconstructor(
                "physics", used.data, geometry=geo, eps=settings.model.lift_eps
            )
    if everything or method == "linear":
        engines["linear"] = Reconstructor("linear", used.data)
    return engines, used


def score_split(
    name: str,
    settings: Settings,
    split: str,
    visible: np.ndarray,
    engines: dict[str, Reconstructor],
    progress: Callable[[int], None] | None = None,
) -> SplitReport:
    """Score every engine on ``split`` of the prepared data set ``name`` (at ``settings.data``)."""
    from lvcg_cli.datasets.prepared import open_prepared_data

    prepared = open_prepared_data(name, settings)
    rows = prepared.split(split)
    if rows.size == 0:
        raise LvcgError(f"{name}: no records in split {split!r}")
    signals = prepared.rows(rows)
    present = prepared.present()[rows]
    scores = evaluate_windows(signals, present, visible, engines, settings.data, progress=progress)
    return SplitReport(name, split, int(rows.size), np.asarray(visible, bool), scores)
