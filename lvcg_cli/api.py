"""The Python API: a pretrained model on ECGs held in memory, as ``lvcg embed`` and ``lvcg reconstruct``.

    >>> import lvcg_cli
    >>> model = lvcg_cli.load_model()                      # the bundled weights, best device here
    >>> record = lvcg_cli.read_record("00001_hr.hea")       # or any (leads, T) array in mV
    >>> vector = model.embed(record.signal, fs=record.fs)   # (D,), what `lvcg embed` writes
    >>> names = model.embedding_names                      # one name per dimension
    >>> full = model.reconstruct(record.signal[[0, 1, 7]], fs=record.fs, leads=["I", "II", "V2"])
    >>> physics = model.reconstruct(record.signal, fs=record.fs, visible="I,II,V2", method="physics")
    >>> scores = model.score(full, record.signal, fs=record.fs)  # {lead: LeadScore(r, rmse, ptp_ratio)}

An array goes through the same steps as a file (:func:`lvcg_cli.signals.io.record_from_array`:
lead matching by name, NaN repair, derived limb leads; then
:func:`lvcg_cli.signals.preprocess.model_signal`, the same windows and the same averaging), so
``model.embed`` of a record's samples equals what ``lvcg embed`` writes for its file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.errors import LvcgError, RecordError

if TYPE_CHECKING:
    import torch

    from lvcg_cli.downstream.reconstruct import LeadScore
    from lvcg_cli.settings import Settings
    from lvcg_cli.signals.io import Record

__all__ = ["Model", "load_model"]

Leads = Sequence[str] | None
"""Lead names, e.g. ``["I", "II", "V2"]`` (``visible`` also takes ``"I,II,V2"``)."""

METHODS = ("lvcg", "physics", "linear")
"""What :meth:`Model.reconstruct` can use, as ``lvcg reconstruct --method``."""
GEOMETRIES = ("dower", "ideal")


class Model:
    """A loaded checkpoint with the settings it runs with; made by :func:`load_model`."""

    def __init__(
        self, model: torch.nn.Module, settings: Settings, device: torch.device, batch_size: int = 64
    ):
        self.model = model.eval()
        self.settings = settings
        self.device = device
        self.batch_size = int(batch_size)
        self.run_options: dict[str, Any] = {"device": device, "batch_size": self.batch_size}

    def __repr__(self) -> str:
        return (
            f"Model({self.settings.model.name!r}, {self.embedding_dim}-d, {self.settings.data.fs:g} Hz, "
            f"device={str(self.device)!r})"
        )

    @property
    def embedding_dim(self) -> int:
        return int(self.model.embedding_dim)

    @property
    def embedding_names(self) -> list[str]:
        """One name per embedding dimension (``morph_<i>``, ``dyn_<i>``, rhythm and VCG measures)."""
        return list(self.model.embedding_names)

    def records(
        self, signal: Any, fs: float, leads: Sequence[str] | None = None
    ) -> tuple[list[Record], bool]:
        """``(records, single)``: a (n_leads, T) array is one record, (N, n_leads, T) N of them."""
        from lvcg_cli.signals.io import record_from_array

        x = np.asarray(signal)
        gap = self.settings.data.max_nan_gap_s
        if x.ndim == 2:
            return [record_from_array(x, fs, leads, max_nan_gap_s=gap, name="signal")], True
        if x.ndim == 3:
            return [
                record_from_array(x[i], fs, leads, max_nan_gap_s=gap, name=f"signal[{i}]")
                for i in range(len(x))
            ], False
        raise LvcgError(
            f"signal: expected (leads, samples) or (records, leads, samples), got shape {x.shape}"
        )

    def embed(self, signal: Any, fs: float, leads: Leads = None, visible: Leads | str = None) -> np.ndarray:
        """Embeddings of ECGs in mV: ``(D,)`` for a (n_leads, T) array, ``(N, D)`` for (N, n_leads, T).

        ``leads`` names the rows, in any order and any subset (default: the 12 standard leads in
        canonical order); ``visible`` restricts the leads the model sees (default: every lead
        given). Records longer than the model window are embedded window by window and averaged,
        as ``lvcg embed`` does. Raises :class:`~lvcg_cli.errors.RecordError` for an unusable record.
        """
        from lvcg_cli.downstream.embed import Embedder

        records, single = self.records(signal, fs, leads)
        data, config = self.settings.data, self.settings.model
        embedder = Embedder(self.model, data, config, visible=_mask(visible), workers=1, **self.run_options)
        result = embedder.embed_records(records)
        if result.skipped:
            raise RecordError(*result.skipped[0])
        return result.embeddings[0] if single else result.embeddings

    def reconstruct(
        self,
        signal: Any,
        fs: float,
        leads: Leads = None,
        visible: Leads | str = None,
        *,
        method: str = "lvcg",
        geometry: str = "dower",
    ) -> np.ndarray:
        """All 12 leads (canonical order, mV) at the input's rate and length, as ``lvcg reconstruct``.

        ``(12, T)`` for a (n_leads, T) array, ``(N, 12, T)`` for (N, n_leads, T). The method sees
        the ``visible`` leads (default: every lead given); they are passed through unchanged, and
        limb leads determined by them are derived exactly.

        ``method`` is ``lvcg`` (the model), or one of the baselines it has to beat, as
        ``lvcg reconstruct --method``: ``physics`` (lift through the ``geometry`` lead field,
        ``dower`` or ``ideal``, and project back) or ``linear`` (population least squares fitted on
        the bundled open training records). So a comparison needs no second code path.
        """
        from lvcg_cli.downstream.reconstruct import Reconstructor

        if method not in METHODS:
            raise LvcgError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
        if geometry not in GEOMETRIES:
            raise LvcgError(f"geometry: must be one of {', '.join(GEOMETRIES)} (got {geometry!r})")
        records, single = self.records(signal, fs, leads)
        data, config = self.settings.data, self.settings.model
        if method == "lvcg":
            engine = Reconstructor("lvcg", data, model=self.model, model_settings=config, **self.run_options)
        else:
            engine = Reconstructor(
                method, data, geometry=geometry, eps=config.lift_eps, batch_size=self.batch_size
            )
        mask = _mask(visible)
        out = np.stack([engine.reconstruct(record, mask).signal for record in records])
        return out[0] if single else out

    def score(
        self, reconstruction: Any, reference: Any, fs: float, leads: Leads = None
    ) -> dict[str, LeadScore]:
        """Per-lead Pearson r, RMSE (mV) and peak-to-peak ratio of a reconstruction, as ``lvcg reconstruct`` prints them.

        ``reconstruction`` is (12, T) mV in canonical order (what :meth:`reconstruct` returns);
        ``reference`` the record's own leads at the same rate and length, rows named by ``leads``
        (default: the 12 standard leads in canonical order, like ``Record.signal``). Every lead
        the reference holds is scored (an all-zero row is an absent lead and is left out); both
        sides are band-passed with the model's filter first, so baseline wander and noise that no
        method can infer from other leads count for none. Returns ``{lead: LeadScore(r, rmse,
        ptp_ratio)}`` in canonical order; pick the hidden leads from it.
        """
        from lvcg_cli.downstream.reconstruct import score_leads
        from lvcg_cli.signals.leads import CANONICAL_LEADS, N_LEADS, parse_leads

        recon = np.asarray(reconstruction, dtype=np.float64)
        ref = np.asarray(reference, dtype=np.float64)
        if recon.ndim != 2 or recon.shape[0] != N_LEADS:
            raise LvcgError(f"reconstruction: expected (12, samples), got shape {recon.shape}")
        names = list(leads) if leads is not None else list(CANONICAL_LEADS)
        if ref.ndim != 2 or ref.shape[0] != len(names):
            raise LvcgError(
                f"reference: expected ({len(names)}, samples) for {len(names)} leads, got {ref.shape}"
            )
        if ref.shape[1] != recon.shape[1]:
            raise LvcgError(
                f"reference has {ref.shape[1]} samples, the reconstruction {recon.shape[1]}: "
                "score a reconstruction against the record it was made from"
            )
        rows = parse_leads(names) if leads is not None else list(range(N_LEADS))
        if len(rows) != len(names):
            raise LvcgError(f"leads: a lead is named twice in {names}")
        full = np.zeros_like(recon)
        full[rows] = ref
        present = np.zeros(N_LEADS, dtype=bool)
        present[rows] = np.any(ref != 0.0, axis=1) & np.all(np.isfinite(ref), axis=1)
        return score_leads(recon, full, float(fs), self.settings.data, present)


def _mask(visible: Sequence[str] | str | None) -> np.ndarray | None:
    if visible is None:
        return None
    from lvcg_cli.signals.leads import parse_leads, visible_mask

    return visible_mask(parse_leads(visible if isinstance(visible, str) else ",".join(visible)))


def load_model(
    checkpoint: str | Path | None = None,
    device: str = "auto",
    *,
    batch_size: int = 64,
    settings: Mapping[str, Any] | None = None,
) -> Model:
    """Load a checkpoint (``None``: the bundled weights) on ``device`` (``auto``: CUDA, MPS, CPU).

    ``settings`` are dotted overrides as on the command line, e.g. ``{"data.max_nan_gap_s": 1.0}``;
    what the checkpoint fixes (its rate, band, window and sizes) cannot be overridden
    (:func:`lvcg_cli.settings.with_checkpoint`).
    """
    from lvcg_cli.engine.checkpoint import load_model as load_checkpoint_model
    from lvcg_cli.engine.device import select_device
    from lvcg_cli.settings import resolve_settings, with_checkpoint

    if batch_size < 1:
        raise LvcgError(f"batch_size must be >= 1 (got {batch_size})")
    user = resolve_settings(overrides=dict(settings or {}), environ={})
    torch_device = select_device(device)
    model, ckpt_settings = load_checkpoint_model(checkpoint, torch_device)
    return Model(model, with_checkpoint(user, ckpt_settings), torch_device, batch_size)
