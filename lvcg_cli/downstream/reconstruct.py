"""All 12 leads from a few: the model, and the physics and population-regression baselines.

What a reconstruction is
------------------------
The output has the record's own sampling rate and length, the 12 leads in canonical order
(I, II, III, aVR, aVL, aVF, V1-V6), in mV:

* **visible leads** are the input samples, passed through unchanged;
* **hidden leads** are the method's estimate. The model works on ``data.fs`` windows of the
  band-passed record (``data.bandpass``): the record is tiled with consecutive windows (the last
  one aligned to the record's end, so a long record is covered without padding), each window is
  reconstructed, the windows are stitched back, and the result is resampled to the record's rate
  with ``resample_poly``. A record shorter than one window is padded, and the padding cut off
  again. The model cannot know baseline wander or content above the band, so its hidden leads
  are band-limited. The linear baselines (``physics``, ``linear``) are instantaneous maps and are
  applied to the raw visible leads at the record's own rate;
* **derived limb leads**: when two or more of I, II, III, aVR, aVL, aVF are visible, the other
  limb leads are computed exactly from them (Einthoven, Goldberger) for every method, so the
  output always satisfies III = II - I and the augmented-lead relations.

How it is scored
----------------
Against the record's own hidden leads, when it has them. Both the reference and the
reconstruction are band-passed with the model's filter (zero-phase Butterworth ``data.bandpass``
of order ``data.filter_order``, at the scored signal's own rate) before Pearson r, RMSE (mV) and
the peak-to-peak ratio (reconstruction over reference) are computed per lead over the whole
record. So no method is rewarded or punished for baseline wander and high-frequency noise that
no method can infer from other leads. r alone is blind to gain: a chest lead reconstructed at
half its amplitude still correlates well, which the RMSE and the peak-to-peak ratio show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch

from lvcg_cli.downstream.baselines import LeadMap, complete_limb_leads, linear_map, physics_map
from lvcg_cli.downstream.embed import choose_visible
from lvcg_cli.downstream.metrics import pearson_r, ptp_ratio, rmse
from lvcg_cli.errors import LvcgError, RecordError
from lvcg_cli.signals.leads import CANONICAL_LEADS, N_LEADS
from lvcg_cli.signals.preprocess import bandpass, fix_window, resample

if TYPE_CHECKING:
    from lvcg_cli.settings import DataSettings, ModelSettings, Settings
    from lvcg_cli.signals.io import Record

METHODS: tuple[str, ...] = ("lvcg", "physics", "linear")


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
class LeadScore(NamedTuple):
    """One reconstructed lead against the record's own: shape (r) and amplitude (RMSE, peak-to-peak ratio)."""

    r: float
    rmse: float  # mV
    ptp_ratio: float  # peak-to-peak of the reconstruction / of the original (1 = right size)


def score_leads(
    output: np.ndarray, original: np.ndarray, fs: float, data: DataSettings, leads: np.ndarray
) -> dict[str, LeadScore]:
    """Per-lead ``{name: LeadScore(r, rmse_mV, ptp_ratio)}`` for the leads in the (12,) mask ``leads``.

    Both signals are band-passed with the model's filter first (see the module docs).
    """
    rows = np.flatnonzero(np.asarray(leads, dtype=bool))
    if rows.size == 0:
        return {}
    band, order = tuple(data.bandpass), data.filter_order
    pred = bandpass(np.asarray(output[rows], np.float64), fs, band, order)
    ref = bandpass(np.asarray(original[rows], np.float64), fs, band, order)
    r, e, a = pearson_r(pred, ref), rmse(pred, ref), ptp_ratio(pred, ref)
    return {CANONICAL_LEADS[j]: LeadScore(float(r[k]), float(e[k]), float(a[k])) for k, j in enumerate(rows)}


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------
def covering_starts(n_time: int, n: int) -> list[int]:
    """Window starts that cover ``[0, n_time)`` with full windows: 0, n, 2n, ..., and n_time - n last."""
    if n_time <= n:
        return [0]
    starts = list(range(0, n_time - n + 1, n))
    if starts[-1] + n < n_time:
        starts.append(n_time - n)
    return starts


def stitch(windows: np.ndarray, starts: Sequence[int], n_time: int) -> np.ndarray:
    """(W, C, n) windows at ``starts`` -> (C, n_time); each sample comes from the first window holding it."""
    n_windows, channels, n = windows.shape
    out = np.zeros((channels, max(n_time, n)), dtype=np.float32)
    filled = 0
    for w, start in enumerate(starts):  # a handful of windows per record
        lo = max(filled, start)
        out[:, lo : start + n] = windows[w][:, lo - start :]
        filled = start + n
    return out[:, :n_time]


@dataclass
class Reconstruction:
    """One record's reconstruction and what is needed to score and plot it."""

    id: str
    path: str
    fs: float
    method: str
    signal: np.ndarray  # (12, T) mV at fs: the output
    original: np.ndarray  # (12, T) mV at fs: the record as read
    present: np.ndarray  # (12,) leads the record has
    visible: np.ndarray  # (12,) leads the method saw
    derived: np.ndarray  # (12,) limb leads computed exactly from visible ones
    vcg: np.ndarray | None = None  # (3, n) latent (lvcg) or lifted (physics) field at vcg_fs, mV-scaled
    vcg_fs: float | None = None
    warnings: list[str] = field(default_factory=list)
    scores: dict[str, LeadScore] = field(default_factory=dict)

    @property
    def hidden(self) -> np.ndarray:
        return ~self.visible

    @property
    def scored(self) -> np.ndarray:
        """Leads with a reference to score against: hidden but present in the record."""
        return self.hidden & self.present


# --------------------------------------------------------------------------------------------
# the reconstructor
# --------------------------------------------------------------------------------------------
class Reconstructor:
    """Reconstruct records (or preprocessed windows) with one method; one model load for all.

    ``method="lvcg"`` needs ``model`` (an :class:`~lvcg_cli.model.lvcg.LVCG` in eval mode) and
    its ``model_settings``; ``data`` is the preprocessing (the checkpoint's, for the model).
    ``physics`` uses ``geometry`` and the ridge ``eps``; ``linear`` fits (once, cached) on
    ``train_path`` (default: the bundled open training records). ``readout`` picks the model's
    output: ``recon`` (the full model) or ``decoded`` (the projection of the decoded field alone,
    before the optional refinement; the two are the same when ``residual_refine`` is off).
    """

    def __init__(
        self,
        method: str,
        data: DataSettings,
        *,
        model: torch.nn.Module | None = None,
        model_settings: ModelSettings | None = None,
        device: torch.device | str = "cpu",
        geometry: str = "dower",
        eps: float = 1e-3,
        train_path: str | Path | None = None,
        batch_size: int = 32,
        readout: Literal["recon", "decoded"] = "recon",
    ):
        if method not in METHODS:
            raise LvcgError(f"--method: must be one of {', '.join(METHODS)} (got {method!r})")
        if method == "lvcg" and (model is None or model_settings is None):
            raise LvcgError("method 'lvcg' needs a model (pass --checkpoint or install the bundled weights)")
        self.method = method
        self.data = data
        self.model = model
        self.model_settings = model_settings
        self.device = torch.device(device)
        self.geometry = geometry
        self.eps = float(eps)
        self.train_path = train_path
        self.batch_size = int(batch_size)
        self.readout = readout
        self._maps: dict[bytes, LeadMap] = {}
        if model is not None:
            model.eval()

    # ---- linear maps ---------------------------------------------------------------------
    def lead_map(self, visible: np.ndarray) -> LeadMap:
        """The physics or linear map for one visible subset (made once per subset)."""
        key = np.asarray(visible, dtype=bool).tobytes()
        if key not in self._maps:
            if self.method == "physics":
                self._maps[key] = physics_map(visible, self.geometry, self.eps)
            elif self.method == "linear":
                self._maps[key] = linear_map(visible, self.train_path)
            else:
                raise LvcgError("lead_map is only defined for the physics and linear methods")
        return self._maps[key]

    # ---- windows at data.fs ----------------------------------------------------------------
    def reconstruct_windows(
        self, signals: np.ndarray, present: np.ndarray, visible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Preprocessed (B, 12, n) mV windows at ``data.fs`` -> ``(recon (B, 12, n) mV, field (B, 3, n) or None)``.

        ``present`` and ``visible`` are (B, 12) or (12,). Only the method's estimate: visible
        rows are not replaced here (see :meth:`finish`).
        """
        signals = np.asarray(signals, dtype=np.float32)
        b = signals.shape[0]
        present = np.broadcast_to(np.asarray(present, dtype=bool), (b, N_LEADS))
        visible = np.broadcast_to(np.asarray(visible, dtype=bool), (b, N_LEADS)) & present
        if self.method != "lvcg":
            recon = np.empty_like(signals)
            for key in np.unique(visible, axis=0):  # one matrix per distinct subset
                rows = (visible == key).all(axis=1)
                recon[rows] = self.lead_map(key).apply(signals[rows])
            return recon, None
        return self._model_windows(signals, present, visible)

    def _model_windows(self, signals, present, visible) -> tuple[np.ndarray, np.ndarray]:
        from lvcg_cli.signals.model_input import collate_samples, make_sample

        b, _, n = signals.shape
        recon = np.empty((b, N_LEADS, n), np.float32)
        fields = np.empty((b, 3, n), np.float32)
        for lo in range(0, b, self.batch_size):
            hi = min(lo + self.batch_size, b)
            samples = [
                make_sample(signals[i], present[i], visible[i], self.data, self.model_settings)
                for i in range(lo, hi)
            ]
            batch = collate_samples(samples)
            with torch.inference_mode():
                out = self.model({k: v.to(self.device) for k, v in batch.items()})
                scale = batch["scale"].to(self.device).float()
                lead_scale = scale[:, :, None] if scale.dim() == 2 else scale[:, None, None]
                field_scale = scale.mean(dim=1)[:, None, None] if scale.dim() == 2 else scale[:, None, None]
                recon[lo:hi] = (out[self.readout].float() * lead_scale).cpu().numpy()
                fields[lo:hi] = (out["field"].float() * field_scale).cpu().numpy()
        return recon, fields

    # ---- whole records ---------------------------------------------------------------------
    def reconstruct(self, record: Record, visible: np.ndarray | None = None) -> Reconstruction:
        """One record at its own rate and length (see the module docs). ``visible`` None: its present leads.

        Raises :class:`~lvcg_cli.errors.RecordError` when none of the requested leads is in it.
        """
        present = np.asarray(record.present, dtype=bool)
        seen, warning = choose_visible(present, visible, record.path)
        warnings = [warning] if warning else []
        n_time = record.n_samples
        field_out = field_fs = None
        if self.method == "lvcg":
            from lvcg_cli.signals.preprocess import model_signal

            filtered, present_f, _ = model_signal(record, self.data)
            n = self.data.n_samples
            n_model = filtered.shape[-1]
            starts = covering_starts(n_model, n)
            windows = np.stack(
                [fix_window(filtered[:, s : s + n], n, pad=self.data.pad_policy) for s in starts]
            )
            recon_w, field_w = self.reconstruct_windows(windows, present_f, seen)
            recon = stitch(recon_w, starts, n_model)
            field_out, field_fs = stitch(field_w, starts, n_model), float(self.data.fs)
            estimate = resample(recon, self.data.fs, record.fs)
            estimate = fix_window(estimate, n_time, pad="edge") if estimate.shape[-1] != n_time else estimate
        else:
            estimate = self.lead_map(seen).apply(record.signal)
            if self.method == "physics":
                field_out, field_fs = self._physics_field(record.signal, record.fs, seen), float(record.fs)
        return self.finish(record, estimate, seen, warnings, field_out, field_fs)

    def _physics_field(self, signal: np.ndarray, fs: float, seen: np.ndarray) -> np.ndarray:
        """The lifted 3-D field of the band-passed visible leads (for the VCG plot)."""
        from lvcg_cli.model.geometry import LeadField

        lead_field = LeadField(self.geometry, "pinv", self.eps).double()
        with torch.no_grad():
            lift = lead_field.lift_matrix(torch.as_tensor(seen)[None])[0].numpy()
        shown = np.where(seen[:, None], signal, 0.0)
        filtered = bandpass(shown, fs, tuple(self.data.bandpass), self.data.filter_order)
        return (lift @ np.asarray(filtered, np.float64)).astype(np.float32)

    def finish(
        self,
        record: Record,
        estimate: np.ndarray,
        seen: np.ndarray,
        warnings: list[str],
        field_out: np.ndarray | None = None,
        field_fs: float | None = None,
    ) -> Reconstruction:
        """Visible leads passed through, limb leads derived, absent scores skipped, scores computed."""
        out = np.asarray(estimate, np.float32).copy()
        out[seen] = record.signal[seen]
        out, derived = complete_limb_leads(out, seen)
        if not np.isfinite(out).all():
            raise RecordError(record.path, f"the {self.method} reconstruction is not finite (NaN or inf)")
        result = Reconstruction(
            id=record.id,
            path=str(record.path),
            fs=float(record.fs),
            method=self.method,
            signal=out,
            original=record.signal,
            present=np.asarray(record.present, bool),
            visible=seen,
            derived=derived,
            vcg=field_out,
            vcg_fs=field_fs,
            warnings=warnings,
        )
        result.scores = score_leads(out, record.signal, record.fs, self.data, result.scored)
        return result


# --------------------------------------------------------------------------------------------
# many windows at once: a prepared split or a benchmark
# --------------------------------------------------------------------------------------------
def score_windows(
    pred: np.ndarray, ref: np.ndarray, scored: np.ndarray, fs: float, data: DataSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, 12, n) estimate and reference, (B, 12) leads to score -> ``(r, rmse, ptp_ratio)`` (B, 12), NaN elsewhere.

    Both sides band-passed with the model's filter, as :func:`score_leads`.
    """
    band, order = tuple(data.bandpass), data.filter_order
    p = bandpass(np.asarray(pred, np.float64), fs, band, order)
    q = bandpass(np.asarray(ref, np.float64), fs, band, order)
    r = np.where(scored, pearson_r(p, q), np.nan)
    e = np.where(scored, rmse(p, q), np.nan)
    a = np.where(scored, ptp_ratio(p, q), np.nan)
    return r, e, a


@dataclass
class SplitScores:
    """Per-lead scores of one method over many records: (N, 12) arrays, NaN where not scored."""

    method: str
    r: np.ndarray
    rmse: np.ndarray
    ptp_ratio: np.ndarray | None = None

    def per_lead(self) -> dict[str, dict[str, float]]:
        """Mean and median r, mean RMSE and median peak-to-peak ratio per lead (over the records scored)."""
        out = {}
        for j, name in enumerate(CANONICAL_LEADS):
            col = self.r[:, j]
            ok = np.isfinite(col)
            if ok.any():
                out[name] = {
                    "r_mean": float(col[ok].mean()),
                    "r_median": float(np.median(col[ok])),
                    "rmse_mean": float(np.nanmean(self.rmse[ok, j])),
                    "n": int(ok.sum()),
                }
                if self.ptp_ratio is not None:
                    ratios = self.ptp_ratio[ok, j]
                    ratios = ratios[np.isfinite(ratios)]
                    out[name]["ptp_ratio_median"] = float(np.median(ratios)) if ratios.size else float("nan")
        return out

    def overall(self, leads: Sequence[str] | None = None) -> dict[str, float]:
        """Mean over leads of the per-lead figures (each lead counts once), optionally for some leads."""
        table = self.per_lead()
        names = [n for n in (leads or table) if n in table]
        if not names:
            empty = {"r_mean": float("nan"), "rmse_mean": float("nan"), "n_leads": 0}
            return {**empty, "ptp_ratio_median": float("nan")} if self.ptp_ratio is not None else empty
        out = {
            "r_mean": float(np.mean([table[n]["r_mean"] for n in names])),
            "rmse_mean": float(np.mean([table[n]["rmse_mean"] for n in names])),
            "n_leads": len(names),
        }
        if self.ptp_ratio is not None:
            out["ptp_ratio_median"] = float(np.nanmean([table[n]["ptp_ratio_median"] for n in names]))
        return out


def evaluate_windows(
    signals: np.ndarray,
    present: np.ndarray,
    visible: np.ndarray,
    reconstructors: dict[str, Reconstructor],
    data: DataSettings,
    chunk: int = 256,
    progress=None,
) -> dict[str, SplitScores]:
    """Score several methods on the same preprocessed (N, 12, n) windows at ``data.fs``.

    The leads scored are the hidden leads each record has (visible leads are inputs). Limb leads
    that the visible ones determine exactly (two or more limb leads visible) are derived, as in
    :meth:`Reconstructor.finish`, for every method alike.
    """
    n = signals.shape[0]
    present = np.broadcast_to(np.asarray(present, bool), (n, N_LEADS))
    seen = np.broadcast_to(np.asarray(visible, bool), (n, N_LEADS)) & present
    scored = present & ~seen
    r = {name: np.full((n, N_LEADS), np.nan) for name in reconstructors}
    e = {name: np.full((n, N_LEADS), np.nan) for name in reconstructors}
    a = {name: np.full((n, N_LEADS), np.nan) for name in reconstructors}
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        x = np.asarray(signals[lo:hi], np.float32)
        for name, method in reconstructors.items():
            recon, _ = method.reconstruct_windows(x, present[lo:hi], seen[lo:hi])
            recon = np.where(seen[lo:hi, :, None], x, recon)
            for b in range(hi - lo):  # derivation depends on each record's visible set
                recon[b], _ = complete_limb_leads(recon[b], seen[lo + b])
            r[name][lo:hi], e[name][lo:hi], a[name][lo:hi] = score_windows(
                recon, x, scored[lo:hi], data.fs, data
            )
        if progress is not None:
            progress(hi - lo)
    return {name: SplitScores(name, r[name], e[name], a[name]) for name in reconstructors}


# --------------------------------------------------------------------------------------------
# the jobs of `lvcg reconstruct`: files, or a prepared split scored by several methods
# --------------------------------------------------------------------------------------------
def open_reconstructor(
    settings: Settings,
    method: str,
    *,
    geometry: str = "dower",
    checkpoint: str | Path | None = None,
    batch_size: int = 32,
) -> tuple[Reconstructor, Settings]:
    """The Reconstructor of a method and the settings it runs with.

    For ``lvcg``: the checkpoint on ``settings.engine.device``, with its preprocessing
    (:func:`lvcg_cli.settings.with_checkpoint`, which refuses an override of what it fixes); the
    baselines use ``settings`` as they are.
    """
    from lvcg_cli.engine.device import select_device

    if method not in METHODS:
        raise LvcgError(f"--method: must be one of {', '.join(METHODS)} (got {method!r})")
    device = select_device(settings.engine.device)
    if method != "lvcg":
        engine = Reconstructor(
            method, settings.data, geometry=geometry, eps=settings.model.lift_eps, batch_size=batch_size
        )
        return engine, settings
    from lvcg_cli.engine.checkpoint import load_model
    from lvcg_cli.settings import with_checkpoint

    model, ckpt = load_model(checkpoint, device)
    used = with_checkpoint(settings, ckpt)
    engine = Reconstructor(
        "lvcg", used.data, model=model, model_settings=used.model, device=device, batch_size=batch_size
    )
    return engine, used


def reconstruct_files(
    engine: Reconstructor,
    paths: Sequence[Path],
    visible: np.ndarray | None,
    *,
    lead_map: dict[str, str] | None = None,
    skip_bad: bool = True,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[list[Reconstruction], list[tuple[str, str]]]:
    """Read (NaN gaps repaired up to the engine's ``data.max_nan_gap_s``) and reconstruct records.

    Returns ``(reconstructions, skipped (path, problem))``; with ``skip_bad`` False the first
    unusable record raises its :class:`RecordError` instead (one record given: its error is the error).
    """
    from lvcg_cli.signals.io import read_record

    results: list[Reconstruction] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        try:
            record = read_record(path, max_nan_gap_s=engine.data.max_nan_gap_s, lead_map=lead_map)
            for message in record.meta.get("warnings", []):
                warn(f"{path}: {message}")
            result = engine.reconstruct(record, visible)
        except RecordError as exc:
            if not skip_bad:
                raise
            warn(f"skipping {exc.path}: {exc.problem}")
            skipped.append((exc.path, exc.problem))
            continue
        for message in result.warnings:
            warn(message)
        results.append(result)
    return results, skipped


# --------------------------------------------------------------------------------------------
# writing reconstructions
# --------------------------------------------------------------------------------------------
RECON_FORMATS = (".npy", ".npz", ".csv", ".hea")


def save_reconstructions(path: str | Path, results: Sequence[Reconstruction]) -> list[Path]:
    """Write reconstructions atomically; the suffix picks the format. Returns the files written.

    ``.npy``: the (12, T) float32 mV array of one record. ``.npz``: one (12, T) array per record,
    keyed by record id, plus ``<id>.fs``, ``leads`` and ``<id>.visible``. ``.csv``: one record,
    columns ``time_s`` and the 12 leads in mV. ``.hea``: one record as WFDB (format 16, 1 uV
    resolution, lead names I ... V6, unit mV), header and ``.dat`` beside it.
    """
    from lvcg_cli.atomic import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RECON_FORMATS:
        raise LvcgError(
            f"{path}: unknown output format {suffix or '(none)'!r}; use {', '.join(RECON_FORMATS)}"
        )
    if suffix != ".npz" and len(results) != 1:
        raise LvcgError(f"{path}: {len(results)} records need one .npz output (-o out.npz), not {suffix}")
    for rec in results:
        if not np.isfinite(rec.signal).all():
            raise LvcgError(f"{path}: not written: the reconstruction of {rec.id} is not finite (NaN or inf)")
    if suffix == ".npz":
        arrays: dict[str, np.ndarray] = {"leads": np.asarray(CANONICAL_LEADS)}
        for rec in results:
            if rec.id in arrays:
                raise LvcgError(f"{path}: two records are both named {rec.id!r}; write them separately")
            arrays[rec.id] = rec.signal.astype(np.float32)
            arrays[f"{rec.id}.fs"] = np.asarray(rec.fs)
            arrays[f"{rec.id}.visible"] = rec.visible
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
        return [path]
    rec = results[0]
    if suffix == ".npy":
        with atomic_path(path) as tmp:
            np.save(tmp, rec.signal.astype(np.float32), allow_pickle=False)
        return [path]
    if suffix == ".csv":
        import pandas as pd

        frame = pd.DataFrame(rec.signal.T.astype(np.float64), columns=list(CANONICAL_LEADS))
        frame.insert(0, "time_s", np.arange(rec.signal.shape[1]) / rec.fs)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.7g")
        return [path]
    return _write_wfdb(path, rec)


def _write_wfdb(path: Path, rec: Reconstruction) -> list[Path]:
    """WFDB header + format-16 .dat; each file replaced atomically (signal first, header last)."""
    import os
    import re
    import tempfile

    import wfdb

    name = path.stem
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise LvcgError(f"{path}: WFDB record names may hold only letters, digits, '_' and '-'")
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = 32.767
    if np.abs(rec.signal).max() > limit:
        raise LvcgError(f"{path}: amplitudes beyond +-{limit} mV do not fit WFDB format 16 at 1 uV; use .npy")
    seen = ", ".join(n for n, v in zip(CANONICAL_LEADS, rec.visible, strict=True) if v)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".lvcg-wfdb-") as tmp:
        wfdb.wrsamp(
            name,
            fs=float(rec.fs),
            units=["mV"] * N_LEADS,
            sig_name=list(CANONICAL_LEADS),
            p_signal=rec.signal.T.astype(np.float64),
            fmt=["16"] * N_LEADS,
            adc_gain=[1000.0] * N_LEADS,
            baseline=[0] * N_LEADS,
            comments=[f"lvcg reconstruct --method {rec.method} from {seen} (source {rec.id})"],
            write_dir=tmp,
        )
        dat, hea = path.with_suffix(".dat"), path.with_suffix(".hea")
        os.replace(Path(tmp) / f"{name}.dat", dat)
        os.replace(Path(tmp) / f"{name}.hea", hea)
    return [hea, dat]
