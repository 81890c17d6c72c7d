"""Which leads a training sample shows the model: a named, configurable distribution.

Why not "always three random leads" (v0.1): training should look like use. Users ask for a few
lead sets far more often than for arbitrary ones (one lead of a patch or watch, limb leads of a
monitor, I/II/V2 of a wearable, the full 12-lead embedding), and v0.1 never showed the model all
twelve leads, the view every embedding of a full ECG is taken from. Many random triples are also
limb-only (rank 2: no depth information), which teaches little.

``mixed`` (the default): a share ``visible_fraction`` of the samples shows one of
``visible_sets`` (default: I; I,II; I,II,V2; II,V2,V5; I,II,V1,V4; all twelve), chosen uniformly;
the rest show a random subset of the present leads whose size is uniform in
``[visible_min, visible_max]`` (default 1-12), with at least one present lead kept hidden so every
such sample has something to reconstruct. ``random`` draws only random subsets (``--train.visible
random --train.visible_min 3 --train.visible_max 3`` is v0.1's training).

A lead set is restricted to the leads a record has; when none of its leads is present, the sample
falls back to a random subset. Every draw comes from the sample's own generator
(:func:`lvcg_cli.datasets.torch_data.sample_rng`), so it is a pure function of (seed, epoch, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvcg_cli.signals.leads import N_LEADS, parse_leads, visible_mask

__all__ = ["VisibleLeads"]


@dataclass(frozen=True)
class VisibleLeads:
    """A visible-lead distribution; :meth:`draw` gives one sample's (12,) bool mask."""

    sets: tuple[tuple[int, ...], ...] = ()
    set_fraction: float = 0.0
    k_min: int = 1
    k_max: int = 12

    @classmethod
    def from_settings(cls, train) -> VisibleLeads:
        """From :class:`~lvcg_cli.settings.TrainSettings` (``visible``, ``visible_sets`` ...)."""
        sets = tuple(tuple(parse_leads(spec)) for spec in train.visible_sets)
        fraction = float(train.visible_fraction) if train.visible == "mixed" and sets else 0.0
        return cls(sets, fraction, int(train.visible_min), int(train.visible_max))

    def draw(self, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A (12,) mask of visible leads for a record with ``present`` leads."""
        present = np.asarray(present, dtype=bool)
        if self.sets and rng.random() < self.set_fraction:
            chosen = visible_mask(self.sets[int(rng.integers(len(self.sets)))]) & present
            if chosen.any():
                return chosen
        return self.random_subset(present, rng)

    def random_subset(self, present: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Random present leads, ``k`` uniform in ``[k_min, k_max]``, one present lead kept hidden."""
        candidates = np.flatnonzero(present)
        visible = np.zeros(N_LEADS, dtype=bool)
        if candidates.size == 0:
            return visible
        upper = min(self.k_max, max(candidates.size - 1, 1))
        lower = min(self.k_min, upper)
        k = int(rng.integers(lower, upper + 1))
        visible[rng.choice(candidates, size=k, replace=False)] = True
        return visible
