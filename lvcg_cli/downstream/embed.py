"""Frozen embeddings of records: one (D,) vector per record, read and computed in a pipeline.

Reading dominates: a PTB-XL record takes a few ms in ``wfdb.rdrecord``, the tiny model a
fraction of that per record in a batch. So reading and preprocessing run in a thread pool
(``wfdb``, ``scipy.signal`` and numpy release the GIL for most of their work) a bounded number of
records ahead of the model, which is called on batches of windows under
``torch.inference_mode``. Results come back in input order whatever the pool does, and the same
input and weights give bit-identical output on the same machine (fixed batches, fp32).

Windows: a record is read (NaN gaps repaired up to ``data.max_nan_gap_s``), resampled to
``data.fs`` and band-passed as a whole (:func:`lvcg_cli.signals.preprocess.model_signal`, as in
training), then cut into consecutive full model windows (``data.n_samples``); the embedding is the mean of the
windows' embeddings. The tail that does not fill a window is dropped (a 15-s record at a 10-s
window gives one window, a 25-s record two). A record shorter than one window is padded by
``data.pad_policy``, as in training.

Visible leads: by default every lead the record has; ``visible`` restricts them (reduced-lead
and wearable set-ups). A requested lead the record lacks is skipped with a warning and the
record is embedded from the rest; a record with none of them is skipped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lvcg_cli.errors import LvcgError, RecordError
from lvcg_cli.signals.leads import N_LEADS, lead_names
from lvcg_cli.signals.preprocess import fix_window, split_windows

if TYPE_CHECKING:
    from lvcg_cli.datasets.prepared import PreparedData
    from lvcg_cli.settings import DataSettings, ModelSettings, Settings
    from lvcg_cli.signals.io import Record

EMBED_FORMATS = (".npy", ".npz", ".parquet")
NONFINITE_EMBEDDING = "the model's embedding of this record is not finite (NaN or inf)"


# --------------------------------------------------------------------------------------------
# records -> model windows
# --------------------------------------------------------------------------------------------
def embedding_windows(signal: np.ndarray, data: DataSettings) -> np.ndarray:
    """(12, T') at data.fs -> (W, 12, n): consecutive full windows, or one padded window if short."""
    n = data.n_samples
    if signal.shape[-1] < n:
        return fix_window(signal, n, pad=data.pad_policy)[None]
    return split_windows(signal, n)


def choose_visible(
    present: np.ndarray, requested: np.ndarray | None, path: str | Path
) -> tuple[np.ndarray, str | None]:
    """The leads the model may see for one record, and a warning when it is fewer than wanted.

    Raises :class:`RecordError` when none of the requested (or present) leads is there.
    """
    present = np.asarray(present, dtype=bool)
    if requested is None:
        if not present.any():
            raise RecordError(path, "no usable lead")
        if present.all():
            return present.copy(), None
        return present.copy(), f"{path}: only {', '.join(lead_names(present))} present; using those"
    seen = present & requested
    if not seen.any():
        raise RecordError(
            path,
            f"none of the requested leads {', '.join(lead_names(requested))} is in the record "
            f"(it has {', '.join(lead_names(present)) or 'none'})",
        )
    if (seen == requested).all():
        return seen, None
    missing = lead_names(requested & ~present)
    return seen, f"{path}: has no {', '.join(missing)}; using {', '.join(lead_names(seen))}"


@dataclass
class Prepared:
    """One record ready for the model: its windows as sample dicts, or why it was skipped."""

    index: int
    id: str
    path: str
    samples: list[dict[str, torch.Tensor]] = field(default_factory=list)
    warning: str | None = None
    error: RecordError | None = None


def prepare_loaded(
    index: int, record: Record, data: DataSettings, model: ModelSettings, requested: np.ndarray | None
) -> Prepared:
    """Preprocess and window a record already read (never raises RecordError)."""
    from lvcg_cli.signals.model_input import make_sample
    from lvcg_cli.signals.preprocess import model_signal

    try:
        signal, present, _ = model_signal(record, data)
        seen, warning = choose_visible(present, requested, record.path)
        notes = [f"{record.path}: {message}" for message in record.meta.get("warnings", [])]
        warning = "\n".join([*notes, warning] if warning else notes) or None
        samples = [make_sample(w, present, seen, data, model) for w in embedding_windows(signal, data)]
        return Prepared(index, record.id, str(record.path), samples, warning)
    except RecordError as exc:
        return Prepared(index, record.id, str(record.path), error=exc)


def prepare_record(
    index: int,
    path: Path,
    data: DataSettings,
    model: ModelSettings,
    requested: np.ndarray | None,
    lead_map: dict[str, str] | None = None,
) -> Prepared:
    """Read (NaN gaps repaired up to ``data.max_nan_gap_s``), preprocess and window one record.

    Runs in a worker thread; never raises RecordError.
    """
    from lvcg_cli.signals.io import read_record

    try:
        record = read_record(path, max_nan_gap_s=data.max_nan_gap_s, lead_map=lead_map)
    except RecordError as exc:
        return Prepared(index, Path(path).stem, str(path), error=exc)
    return prepare_loaded(index, record, data, model, requested)


# --------------------------------------------------------------------------------------------
# the embedder
# --------------------------------------------------------------------------------------------
@dataclass
class EmbedResult:
    """Embeddings of the records that could be read, in input order, and the ones skipped."""

    ids: list[str]
    paths: list[str]
    embeddings: np.ndarray  # (N, D) float32
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, problem)
    warnings: list[str] = field(default_factory=list)


class Embedder:
    """Batched, frozen embeddings from one model.

    >>> model, settings = load_model(None)                     # doctest: +SKIP
    >>> emb = Embedder(model, settings.data, settings.model)   # doctest: +SKIP
    >>> emb.embed_paths(find_records(["records/"])).embeddings.shape  # doctest: +SKIP
    (N, 64)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: DataSettings,
        model_settings: ModelSettings,
        *,
        device: torch.device | str = "cpu",
        visible: np.ndarray | None = None,
        batch_size: int = 64,
        workers: int | None = None,
        lead_map: dict[str, str] | None = None,
    ):
        if batch_size < 1:
            raise LvcgError(f"--batch-size must be >= 1 (got {batch_size})")
        self.model = model
        self.data = data
        self.model_settings = model_settings
        self.device = torch.device(device)
        self.visible = None if visible is None else np.asarray(visible, dtype=bool)
        self.batch_size = int(batch_size)
        self.workers = workers if workers is not None else min(4, max(1, (os.cpu_count() or 2)))
        self.lead_map = lead_map
        self.model.eval()

    @property
    def dim(self) -> int:
        return int(self.model.embedding_dim)

    def embed_batch(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """One collated batch -> (B, D) float32 numpy."""
        with torch.inference_mode():
            moved = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            out = self.model.embed(moved)
        return out.float().cpu().numpy()

    def embed_samples(self, samples: Sequence[dict[str, torch.Tensor]]) -> np.ndarray:
        """Sample dicts -> (len, D), in batches of ``batch_size``."""
        from lvcg_cli.signals.model_input import collate_samples

        parts = [
            self.embed_batch(collate_samples(list(samples[i : i + self.batch_size])))
            for i in range(0, len(samples), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def embed_windows(
        self, signals: np.ndarray, present: np.ndarray, visible: np.ndarray | None = None
    ) -> np.ndarray:
        """Preprocessed (B, 12, n) mV windows (e.g. a packed cache) -> (B, D).

        ``visible`` (B, 12) or (12,) defaults to this embedder's lead choice, else every present lead.
        """
        from lvcg_cli.signals.model_input import make_sample

        signals = np.asarray(signals)
        present = np.broadcast_to(np.asarray(present, dtype=bool), (signals.shape[0], N_LEADS))
        if visible is None:
            visible = present if self.visible is None else present & self.visible[None]
        visible = np.broadcast_to(np.asarray(visible, dtype=bool), present.shape)
        out = np.zeros((signals.shape[0], self.dim), np.float32)
        for lo in range(0, signals.shape[0], self.batch_size):
            hi = min(lo + self.batch_size, signals.shape[0])
            samples = [
                make_sample(
                    np.asarray(signals[i], np.float32), present[i], visible[i], self.data, self.model_settings
                )
                for i in range(lo, hi)
            ]
            out[lo:hi] = self.embed_samples(samples)
        return out

    def _prepared(self, paths: Sequence[Path]) -> Iterator[Prepared]:
        """Prepared records in input order, read ``workers`` threads wide and a few batches ahead."""
        ahead = max(2 * self.batch_size, 4 * self.workers)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lvcg-read") as pool:
            futures: list = []
            submitted = 0
            for i in range(len(paths)):
                while submitted < len(paths) and submitted < i + ahead:
                    futures.append(
                        pool.submit(
                            prepare_record,
                            submitted,
                            paths[submitted],
                            self.data,
                            self.model_settings,
                            self.visible,
                            self.lead_map,
                        )
                    )
                    submitted += 1
                yield futures[i].result()
                futures[i] = None  # let the finished record's arrays go

    def embed_paths(
        self,
        paths: Sequence[Path],
        on_record: Callable[[Prepared], None] | None = None,
    ) -> EmbedResult:
        """Embed record files; unreadable ones are collected in ``skipped`` (never raised).

        ``on_record`` is called for every record as it is prepared (progress, warnings).
        """
        return self.embed_items(self._prepared(list(paths)), on_record)

    def embed_records(
        self, records: Iterable[Record], on_record: Callable[[Prepared], None] | None = None
    ) -> EmbedResult:
        """Embed records already read or made from arrays (the Python API), exactly as files are."""
        items = (
            prepare_loaded(i, record, self.data, self.model_settings, self.visible)
            for i, record in enumerate(records)
        )
        return self.embed_items(items, on_record)

    def embed_items(
        self, items: Iterable[Prepared], on_record: Callable[[Prepared], None] | None = None
    ) -> EmbedResult:
        """Prepared records -> one vector each: the mean of its windows' embeddings (in float64).

        Windows of several records share model calls of ``batch_size``; records that could not
        be prepared, or whose embedding is not finite, are collected in ``skipped``.
        """
        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        kept: list[Prepared] = []
        skipped: list[tuple[str, str]] = []
        warnings: list[str] = []
        pending: list[tuple[int, dict[str, torch.Tensor]]] = []

        def flush() -> None:
            vectors = self.embed_samples([s for _, s in pending])
            owners = np.asarray([o for o, _ in pending])
            for owner in np.unique(owners):
                rows = vectors[owners == owner]
                sums[owner] = sums.get(owner, 0.0) + rows.astype(np.float64).sum(axis=0)
                counts[owner] = counts.get(owner, 0) + rows.shape[0]
            pending.clear()

        for item in items:
            if on_record is not None:
                on_record(item)
            if item.error is not None:
                skipped.append((item.error.path, item.error.problem))
                continue
            if item.warning:
                warnings.append(item.warning)
            kept.append(item)
            pending.extend((item.index, s) for s in item.samples)
            if len(pending) >= self.batch_size:
                flush()
        if pending:
            flush()
        finite = [p for p in kept if np.isfinite(sums[p.index]).all()]
        skipped.extend((p.path, NONFINITE_EMBEDDING) for p in kept if not np.isfinite(sums[p.index]).all())
        kept = finite
        if kept:
            embeddings = np.stack([(sums[p.index] / counts[p.index]).astype(np.float32) for p in kept])
        else:
            embeddings = np.zeros((0, self.dim), np.float32)
        return EmbedResult([p.id for p in kept], [p.path for p in kept], embeddings, skipped, warnings)


def open_embedder(
    settings: Settings,
    checkpoint: str | Path | None,
    *,
    visible: np.ndarray | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    lead_map: dict[str, str] | None = None,
) -> tuple[Embedder, Settings]:
    """Load a checkpoint on ``settings.engine.device`` and the settings it runs with.

    The checkpoint fixes the model and its input; the user's ``settings`` give the rest
    (:func:`lvcg_cli.settings.with_checkpoint`, which refuses an override of what is fixed).
    """
    from lvcg_cli.engine.checkpoint import load_model
    from lvcg_cli.engine.device import select_device
    from lvcg_cli.settings import with_checkpoint

    device = select_device(settings.engine.device)
    model, ckpt_settings = load_model(checkpoint, device)
    merged = with_checkpoint(settings, ckpt_settings)
    embedder = Embedder(
        model,
        merged.data,
        merged.model,
        device=device,
        visible=visible,
        batch_size=batch_size,
        workers=workers,
        lead_map=lead_map,
    )
    return embedder, merged


def embed_prepared(
    embedder: Embedder,
    data: PreparedData,
    split: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 512,
) -> EmbedResult:
    """Every record (or one split) of a prepared data set: one window each, already preprocessed.

    Records whose embedding is not finite are skipped (``skipped`` names them by id).
    """
    rows = np.arange(len(data)) if split is None else data.split(split)
    if rows.size == 0:
        raise LvcgError(f"{data.name}: no records in split {split!r}")
    ids = data.ids()
    present = data.present()
    out = np.zeros((rows.size, embedder.dim), np.float32)
    for lo in range(0, rows.size, chunk):
        part = rows[lo : lo + chunk]
        out[lo : lo + part.size] = embedder.embed_windows(data.rows(part), present[part])
        if progress is not None:
            progress(part.size)
    finite = np.isfinite(out).all(axis=1)
    skipped = [(f"{data.name} record {ids[rows[i]]}", NONFINITE_EMBEDDING) for i in np.flatnonzero(~finite)]
    kept = ids[rows][finite].tolist()
    return EmbedResult(kept, [f"{data.name}:{i}" for i in kept], out[finite], skipped)


# --------------------------------------------------------------------------------------------
# inputs and outputs
# --------------------------------------------------------------------------------------------
def expand_inputs(
    inputs: Iterable[str], warn: Callable[[str], None] | None = None
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders and globs -> record paths; inputs that match nothing are reported, not raised.

    A record reached twice (the same file given twice, or a file inside a folder also given) is
    kept once, at its first place, and reported through ``warn``.
    """
    from lvcg_cli.signals.io import find_records

    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for item in inputs:
        try:
            paths = find_records([item], warn=warn)
        except RecordError as exc:
            missing.append((exc.path, exc.problem))
            continue
        for path in paths:
            key = os.path.abspath(path)
            if key not in seen:
                seen[key] = item
                found.append(path)
            elif warn is not None:
                first = seen[key]
                how = "given more than once" if first == item else f"given again as {item}"
                warn(f"{path}: {how} (first as {first}); read once")
    return found, missing


def check_output_suffix(path: str | Path, allowed: Sequence[str] = EMBED_FORMATS) -> str:
    """The lower-case suffix of an output path, or a one-line error naming the allowed ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise LvcgError(f"{path}: unknown output format {suffix or '(none)'!r}; use {', '.join(allowed)}")
    return suffix


def check_finite_rows(values: np.ndarray, ids: Sequence[str] | None, where: str) -> None:
    """Refuse to write results holding NaN/inf: a one-line error naming the first bad record."""
    values = np.asarray(values)
    bad = ~np.isfinite(values.reshape(values.shape[0], -1) if values.ndim > 1 else values[None]).all(axis=-1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        name = ids[first] if ids is not None and first < len(ids) else f"row {first}"
        raise LvcgError(f"{where}: not written: the result for {name} is not finite (NaN or inf)")


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a ``.npy`` file (for stdout)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def save_embeddings(
    path: str | Path,
    ids: Sequence[str],
    embeddings: np.ndarray,
    *,
    squeeze: bool = False,
    extra: dict[str, Any] | None = None,
    names: Sequence[str] | None = None,
) -> None:
    """Write embeddings atomically; the format follows the suffix.

    ``.npy``: the bare (N, D) array ((D,) when ``squeeze`` and N == 1); ``.npz``: ``embeddings``
    (N, D), ``ids`` (N,) unicode, ``names`` (D,) unicode and any ``extra`` arrays; ``.parquet``: one
    row per record with an ``id`` column and one float32 column per dimension, named by ``names``
    (the model's ``embedding_names``: ``morph_0`` ... ``qrs_vec_x`` ...; ``emb_<i>`` without names;
    needs pyarrow: ``lvcg[parquet]``).
    """
    from lvcg_cli.atomic import atomic_path

    suffix = check_output_suffix(path)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    check_finite_rows(embeddings, ids, str(path))
    columns = list(names) if names is not None else [f"emb_{i}" for i in range(embeddings.shape[1])]
    if len(columns) != embeddings.shape[1] or len(set(columns)) != len(columns):
        raise ValueError(f"{len(columns)} names for {embeddings.shape[1]} dimensions (or names repeat)")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise LvcgError(f"{path}: writing parquet needs pyarrow (pip install 'lvcg[parquet]')") from None
        import pandas as pd

        frame = pd.DataFrame(embeddings, columns=columns)
        frame.insert(0, "id", list(ids))
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        return
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            np.save(
                tmp, embeddings[0] if squeeze and embeddings.shape[0] == 1 else embeddings, allow_pickle=False
            )
        else:
            arrays = {
                "embeddings": embeddings,
                "ids": np.asarray(list(ids), dtype=str),
                "names": np.asarray(columns, dtype=str),
            }
            arrays.update(extra or {})
            np.savez(tmp, **arrays)


def load_embeddings(path: str | Path) -> tuple[list[str] | None, np.ndarray]:
    """Read back what :func:`save_embeddings` wrote: ``(ids or None, (N, D) or (D,) array)``."""
    suffix = check_output_suffix(path)
    if suffix == ".npy":
        return None, np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return [str(i) for i in data["ids"]], np.asarray(data["embeddings"])
    import pandas as pd

    frame = pd.read_parquet(path)
    return frame["id"].astype(str).tolist(), frame.drop(columns=["id"]).to_numpy(np.float32)
