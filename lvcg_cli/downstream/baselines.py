"""Reconstruction baselines that the model has to beat: physics, population regression, copy.

All three are *linear, instantaneous* maps from the visible leads to the 12 leads, so each is one
(12, 12) matrix ``W`` (zero columns for hidden leads) applied to a band-passed signal at any
sampling rate: ``out = W @ x``. Because they are linear they commute with the band-pass, which
makes them exact on signals they can represent (a pure dipole through the same lead field, a
known linear map) and comparable to the model on the same reference.

``physics``
    Lift the visible leads into a 3-D dipole with the ridge pseudo-inverse of the visible rows
    of a fixed lead field (``ideal`` or ``dower``; :class:`~lvcg_cli.model.geometry.LeadField`),
    then project through the full lead field. No training data.
``linear``
    A population least-squares regression from the visible leads to each of the 12 leads,
    fitted on training records (:func:`fit_linear`); what a "learned" method must beat first.
``copy``
    Each hidden lead is a scaled copy of the single visible lead that predicts it best on the
    training records (sign and gain fitted by least squares): the trivial baseline.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from lvcg_cli.errors import LvcgError, first_line
from lvcg_cli.signals.leads import CANONICAL_LEADS, N_LEADS, lead_names

LINEAR_CACHE_VERSION = "1"
OPEN_TRAIN_ASSET = "open_train.npz"

# Rows of the six limb leads as combinations of (I, II): Einthoven and Goldberger.
_LIMB_FROM_I_II = np.array(
    [[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0], [-0.5, -0.5], [1.0, -0.5], [-0.5, 1.0]], dtype=np.float64
)


@dataclass(frozen=True)
class LeadMap:
    """A linear map from visible leads to all 12: ``out = weights @ x`` on (12, T) signals.

    ``weights`` is (12, 12) with zero columns for the hidden leads, so whatever a hidden row of
    ``x`` holds never leaks into the output. ``name`` says how it was made.
    """

    weights: np.ndarray
    visible: np.ndarray
    name: str

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(12, T) or (B, 12, T) band-passed mV -> the same shape, all 12 leads."""
        x = np.asarray(x)
        shown = (
            np.where(self.visible[:, None], x, 0.0)
            if x.ndim == 2
            else np.where(self.visible[None, :, None], x, 0.0)
        )
        out = np.einsum("lk,...kt->...lt", self.weights, shown.astype(np.float64, copy=False))
        return out.astype(np.float32)


def _as_mask(visible: np.ndarray | list[int]) -> np.ndarray:
    mask = np.asarray(visible)
    if mask.dtype != bool:
        full = np.zeros(N_LEADS, dtype=bool)
        full[np.asarray(mask, dtype=np.int64)] = True
        mask = full
    if mask.shape != (N_LEADS,):
        raise LvcgError(f"visible must be a (12,) mask or lead indices (got shape {mask.shape})")
    if not mask.any():
        raise LvcgError("no visible leads to reconstruct from")
    return mask


# --------------------------------------------------------------------------------------------
# physics
# --------------------------------------------------------------------------------------------
def physics_map(visible: np.ndarray | list[int], geometry: str = "dower", eps: float = 1e-3) -> LeadMap:
    """Lift through the visible rows of a fixed lead field, project through all 12 rows.

    ``eps`` is the ridge term of the lift (the model's ``lift_eps``); 0 gives the Moore-Penrose
    pseudo-inverse, which is exact for a pure dipole whenever the visible rows have rank 3.
    """
    import torch

    from lvcg_cli.model.geometry import LeadField

    mask = _as_mask(visible)
    field = LeadField(geometry=geometry, lift="pinv", eps=eps).double()
    with torch.no_grad():
        lift = field.lift_matrix(torch.as_tensor(mask)[None])[0]  # (3, 12)
        weights = (field.matrix @ lift).numpy()
    weights[:, ~mask] = 0.0
    return LeadMap(weights, mask, f"physics-{geometry}")


# --------------------------------------------------------------------------------------------
# population regression and copy
# --------------------------------------------------------------------------------------------
def _gram_terms(signals: np.ndarray, present: np.ndarray | None, mask: np.ndarray):
    """Per-target Gram and cross terms pooled over the records that have what each target needs."""
    signals = np.asarray(signals)
    if signals.ndim != 3 or signals.shape[1] != N_LEADS:
        raise LvcgError(f"training signals must be (N, 12, T) (got shape {signals.shape})")
    present = np.ones(signals.shape[:2], dtype=bool) if present is None else np.asarray(present, dtype=bool)
    vis = np.flatnonzero(mask)
    usable = present[:, vis].all(axis=1)  # a record lacking a visible lead cannot teach the map
    x = signals[usable][:, vis].astype(np.float64)
    y = signals[usable].astype(np.float64)
    weight = present[usable].astype(np.float64)  # (N, 12): target j only from records that have it
    gram_n = np.einsum("nvt,nwt->nvw", x, x)
    cross_n = np.einsum("nlt,nvt->nlv", y, x)
    gram = np.einsum("nl,nvw->lvw", weight, gram_n)  # (12, V, V)
    cross = np.einsum("nl,nlv->lv", weight, cross_n)  # (12, V)
    counts = weight.sum(axis=0)
    return vis, gram, cross, counts, y, weight


def fit_linear(
    train_signals: np.ndarray,
    visible: np.ndarray | list[int],
    present: np.ndarray | None = None,
    ridge: float = 1e-6,
) -> LeadMap:
    """Population least squares from the visible leads to every lead (no intercept).

    ``train_signals`` (N, 12, T) are band-passed training records in mV (zero-mean, so no
    intercept is needed); ``present`` (N, 12) marks the leads each record really has. The fit
    pools all samples of all records: ``W_j = argmin sum_n sum_t (y_nj(t) - w . x_n(t))^2`` with
    a tiny ridge (relative to the Gram's trace) for rank-deficient subsets. Visible leads map to
    themselves. Raises :class:`LvcgError` if no record has every visible lead.
    """
    mask = _as_mask(visible)
    vis, gram, cross, counts, _, _ = _gram_terms(train_signals, present, mask)
    if not counts.any():
        raise LvcgError(f"no training record has all of {', '.join(lead_names(mask))}")
    n_vis = vis.size
    scale = np.trace(gram, axis1=1, axis2=2)[:, None, None] / max(n_vis, 1)
    regular = gram + ridge * np.maximum(scale, 1e-12) * np.eye(n_vis)[None]
    solved = np.linalg.solve(regular, cross[:, :, None])[:, :, 0]  # (12, V)
    solved[counts == 0] = 0.0
    weights = np.zeros((N_LEADS, N_LEADS))
    weights[:, vis] = solved
    weights[vis] = 0.0
    weights[vis, vis] = 1.0
    return LeadMap(weights, mask, "linear")


def fit_copy_best(
    train_signals: np.ndarray, visible: np.ndarray | list[int], present: np.ndarray | None = None
) -> LeadMap:
    """Each lead copies the one visible lead with the least pooled squared error (after a gain).

    For a single predictor the least-squares gain is ``<x, y> / <x, x>`` and the residual is
    ``<y, y> - <x, y>^2 / <x, x>``, so the best lead is the one with the largest
    ``<x, y>^2 / <x, x>`` (pooled over all training samples).
    """
    mask = _as_mask(visible)
    vis, gram, cross, counts, y, weight = _gram_terms(train_signals, present, mask)
    power = np.einsum("lvv->lv", gram)  # (12, V): <x_v, x_v> pooled per target
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(power > 0, cross**2 / power, -np.inf)
        gains = np.where(power > 0, cross / power, 0.0)
    best = np.argmax(explained, axis=1)
    weights = np.zeros((N_LEADS, N_LEADS))
    rows = np.arange(N_LEADS)
    weights[rows, vis[best]] = gains[rows, best]
    weights[counts == 0] = 0.0
    weights[vis] = 0.0
    weights[vis, vis] = 1.0
    return LeadMap(weights, mask, "copy")


# --------------------------------------------------------------------------------------------
# the bundled training records and the cached fits
# --------------------------------------------------------------------------------------------
def open_train_path() -> Path:
    """The bundled training part of the open records (never the held-out part)."""
    return Path(str(resources.files("lvcg_cli") / "assets" / "records" / OPEN_TRAIN_ASSET))


def load_train_signals(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(signals (N, 12, T) float32 mV, present (N, 12) bool, fs)`` of a training-records ``.npz``.

    The file holds ``signals`` (band-passed mV, canonical lead order) and optionally ``present``
    and ``fs``.
    """
    path = Path(path) if path is not None else open_train_path()
    if not path.is_file():
        raise LvcgError(
            f"{path}: training records for the linear baseline not found "
            "(reinstall lvcg, or use --method lvcg/physics)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            key = next((k for k in ("signals", "signal", "x", "X") if k in data.files), None)
            if key is None:
                raise LvcgError(f"{path}: no 'signals' array in the training records file")
            signals = np.asarray(data[key], dtype=np.float32)
            present = (
                np.asarray(data["present"], dtype=bool)
                if "present" in data.files
                else np.ones(signals.shape[:2], dtype=bool)
            )
            fs = float(np.asarray(data["fs"])) if "fs" in data.files else float("nan")
    except (OSError, ValueError) as exc:
        raise LvcgError(f"{path}: not a readable .npz file ({first_line(exc)})") from None
    if signals.ndim != 3 or signals.shape[1] != N_LEADS:
        raise LvcgError(f"{path}: signals must be (N, 12, T) (got {signals.shape})")
    return signals, present, fs


def _file_key(path: Path) -> str:
    """A cheap identity of a file's content version: size, mtime and path."""
    stat = path.stat()
    text = f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}:{LINEAR_CACHE_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def linear_map(
    visible: np.ndarray | list[int], train_path: str | Path | None = None, cache_dir: Path | None = None
) -> LeadMap:
    """The population regression for one visible subset, fitted once and cached on disk.

    Coefficients live in ``<cache>/linear/<train-file key>-<leads>.npz`` (written atomically),
    so the second call with the same subset costs a file read instead of a pass over the data.
    """
    from lvcg_cli import paths
    from lvcg_cli.atomic import atomic_path

    mask = _as_mask(visible)
    train = Path(train_path) if train_path is not None else open_train_path()
    if not train.is_file():
        load_train_signals(train)  # raises the one-line error
    leads = "-".join(lead_names(mask))
    target = paths.cache_dir(cache_dir) / "linear" / f"{_file_key(train)}-{leads}.npz"
    if target.is_file():
        try:
            with np.load(target) as saved:
                return LeadMap(np.asarray(saved["weights"]), mask, "linear")
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is refitted below
    signals, present, _ = load_train_signals(train)
    fitted = fit_linear(signals, mask, present)
    with atomic_path(target) as tmp:
        np.savez(tmp, weights=fitted.weights, visible=mask)
    return fitted


# --------------------------------------------------------------------------------------------
# exact relations between limb leads
# --------------------------------------------------------------------------------------------
def complete_limb_leads(signal: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the limb leads that are exact combinations of two known ones (Einthoven, Goldberger).

    Any two of I, II, III, aVR, aVL, aVF determine all six, so when ``known`` holds two or more
    of them the others are computed, not estimated (least squares over the known ones when more
    than two disagree slightly). Returns ``(signal, derived)``, ``derived`` the (12,) mask of the
    rows that were filled; the known rows are untouched.
    """
    known = np.asarray(known, dtype=bool)
    limb_known = np.flatnonzero(known[:6])
    derived = np.zeros(N_LEADS, dtype=bool)
    if limb_known.size < 2 or limb_known.size == 6:
        return signal, derived
    basis, *_ = np.linalg.lstsq(
        _LIMB_FROM_I_II[limb_known], signal[limb_known].astype(np.float64), rcond=None
    )
    missing = np.setdiff1d(np.arange(6), limb_known)
    out = np.array(signal, copy=True)
    out[missing] = (_LIMB_FROM_I_II[missing] @ basis).astype(out.dtype)
    derived[missing] = True
    return out, derived


__all__ = [
    "CANONICAL_LEADS",
    "LeadMap",
    "complete_limb_leads",
    "fit_copy_best",
    "fit_linear",
    "linear_map",
    "load_train_signals",
    "open_train_path",
    "physics_map",
]
