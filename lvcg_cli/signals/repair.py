"""NaN repair: bridge short gaps, drop leads that cannot be repaired, once, as a record is read.

:func:`lvcg_cli.signals.io.read_record` (and ``record_from_array``) call it with the data settings'
``max_nan_gap_s``, so every record that reaches preprocessing is finite and every path (training,
prepare-data, embed, reconstruct, the Python API) repaired it the same way.
"""

from __future__ import annotations

import numpy as np

from lvcg_cli.signals.leads import CANONICAL_LEADS

MAX_NAN_GAP_S = 0.5
"""Default longest run of NaN/inf (seconds) that is bridged by linear interpolation."""

FLAT_PTP_MV = 1e-4
"""A lead whose peak-to-peak range is below this (mV) carries no signal (a disconnected electrode)."""


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along the last axis of a (L, T) mask: (lead, start, length) arrays."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    lead_s, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)  # same row-major order as the starts
    return lead_s, start, stop - start


def repair_nonfinite(
    x: np.ndarray,
    fs: float,
    max_gap_s: float = MAX_NAN_GAP_S,
    present: np.ndarray | None = None,
    names: tuple[str, ...] | list[str] = CANONICAL_LEADS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Bridge short NaN/inf gaps by linear interpolation; drop leads that cannot be repaired.

    Returns ``(x, present, flags)``. A lead is made absent (zeros, ``present`` False) when it is
    entirely non-finite (flag ``nan_lead:<name>``), when one of its gaps is longer than
    ``max_gap_s`` (interpolating across it would invent signal; same flag), or when it is flat
    (peak-to-peak below :data:`FLAT_PTP_MV`; flag ``flat_lead:<name>``). When any gap was bridged
    the flag ``nan_repaired`` is added. Gaps at either end are filled with the nearest finite value.
    ``x`` is not modified; a finite input is returned as is (no copy) apart from the flat check.
    """
    x = np.asarray(x)
    n_leads, n_time = x.shape
    present = np.ones(n_leads, dtype=bool) if present is None else np.asarray(present, dtype=bool).copy()
    flags: list[str] = []
    bad = ~np.isfinite(x)
    bad[~present] = False
    if bad.any():
        x = x.copy()
        lead, _, length = _runs(bad)
        max_gap = max(int(round(max_gap_s * fs)), 0)
        too_long = np.zeros(n_leads, dtype=bool)
        np.logical_or.at(too_long, lead, length > max_gap)
        all_bad = bad.all(axis=1)
        drop = present & (too_long | all_bad)
        for i in np.flatnonzero(drop):
            flags.append(f"nan_lead:{names[i]}")
        present &= ~drop
        t = np.arange(n_time)
        repaired = False
        for i in np.flatnonzero(present & bad.any(axis=1)):  # a few leads at most: per lead, not per sample
            good = ~bad[i]
            x[i, bad[i]] = np.interp(t[bad[i]], t[good], x[i, good])
            repaired = True
        if repaired:
            flags.append("nan_repaired")
        x[~present] = 0.0
    if n_time:
        flat = present & (np.ptp(x, axis=1) < FLAT_PTP_MV)
        if flat.any():
            x = x.copy()
            for i in np.flatnonzero(flat):
                flags.append(f"flat_lead:{names[i]}")
            present &= ~flat
            x[flat] = 0.0
    absent = ~present
    if absent.any() and np.any(x[absent] != 0):  # also catches NaN left in absent rows
        x = x.copy()
        x[absent] = 0.0
    return x, present, flags
