"""The torch side of the data: prepared records -> masked training samples -> batches.

Records are streamed from the memory-mapped packed caches (or, for an original-LVCG manifest,
read and preprocessed on the fly). Each sample gets its own visible-lead subset, drawn from a
generator seeded by ``(seed, epoch, index)``: no global random state is touched, so a run gives
the same batches with any number of DataLoader workers, and a resumed run continues exactly
where it stopped.

Workers are persistent (started once per run, not once per epoch), so they never see the main
process's ``set_epoch``: :class:`EpochIndices` sends the epoch along with every index instead,
and :func:`build_loader` is the one place loaders are made (workers, prefetch, pinned memory).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, default_collate

from lvcg_cli.console import warn
from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.engine.device import available_cpus
from lvcg_cli.errors import LvcgError, RecordError, first_line
from lvcg_cli.settings import DataSettings, ModelSettings, Settings

TRAIN_STREAM, VAL_STREAM = 0, 1
MAX_SUBSTITUTES = 16
"""How many following records are tried in place of one that cannot be read."""
MAX_AUTO_WORKERS = 8
"""Most workers ``data.num_workers auto`` starts: at ~2,000 samples per CPU-second each (packed cache,
docs/BENCHMARKS.md), 8 deliver several times what one GPU trains on; more only cost memory."""
PREFETCH_BATCHES = 4
"""Batches each worker keeps ready, so one slow sample (a long record, a page fault) never stalls a step."""


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------
class CacheSource:
    """A :class:`~lvcg_cli.datasets.cache.PackedCache` that pickles as its path.

    DataLoader workers started with ``spawn`` would otherwise receive a full copy of the memmap;
    they reopen the cache instead.
    """

    def __init__(self, cache: Any):
        self.path = Path(cache.path)
        self._cache = cache

    @property
    def cache(self) -> Any:
        if self._cache is None:
            from lvcg_cli.datasets.cache import PackedCache

            self._cache = PackedCache.open(self.path)
        return self._cache

    def __len__(self) -> int:
        return len(self.cache)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.cache.get(int(i))

    def splits(self) -> np.ndarray:
        """The split column of the manifest ('train', 'val', 'test' or '')."""
        manifest = self.cache.manifest
        if "split" not in manifest:
            return np.full(len(self), "", dtype=object)
        return manifest["split"].fillna("").astype(str).to_numpy()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_cache": None}


class ManifestSource:
    """An original-LVCG manifest: JSONL lines ``{"id": ..., "ecg_path": <WFDB record, no extension>}``.

    Records are read through the signals layer when asked for; relative paths are taken from the
    manifest's folder. A record that cannot be read raises :class:`RecordError` (the dataset
    skips it with a warning).
    """

    def __init__(self, manifest: str | Path, data: DataSettings):
        self.path = Path(manifest)
        self.data = data
        if not self.path.is_file():
            raise LvcgError(f"{self.path}: manifest not found (--data.meta_root)")
        self.ids: list[str] = []
        self.paths: list[Path] = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                record = Path(entry["ecg_path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise LvcgError(
                    f"{self.path}: line {number} is not a JSON object with 'ecg_path' (original LVCG manifest)"
                ) from None
            if not record.is_absolute():
                record = self.path.parent / record
            if record.suffix.lower() not in {".hea", ".mat"}:
                record = record.with_name(record.name + ".hea")
            self.ids.append(str(entry.get("id", record.stem)))
            self.paths.append(record)
        if not self.paths:
            raise LvcgError(f"{self.path}: manifest lists no records")

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        from lvcg_cli.signals.io import read_record
        from lvcg_cli.signals.preprocess import preprocess

        record = read_record(self.paths[int(i)], max_nan_gap_s=self.data.max_nan_gap_s)
        signal, present, _flags = preprocess(record, self.data)
        return np.asarray(signal, dtype=np.float32), np.asarray(present, dtype=bool)

    def splits(self) -> np.ndarray:
        return np.full(len(self), "", dtype=object)


def open_sources(settings: Settings) -> list[CacheSource | ManifestSource]:
    """The record sources a pretraining run reads, with one-line errors for missing/corrupt data."""
    if settings.data.meta_root is not None:
        return [ManifestSource(settings.data.meta_root, settings.data)]
    from lvcg_cli.datasets.prepared import open_datasets

    try:
        caches = open_datasets(list(settings.data.datasets), settings)
    except LvcgError:
        raise
    except (OSError, ValueError) as exc:  # e.g. a memmap larger than its (truncated) file
        names = ", ".join(settings.data.datasets)
        raise LvcgError(f"{names}: cannot open prepared data ({first_line(exc)})") from None
    if not caches:
        raise LvcgError("--data: no data sets given")
    return [CacheSource(cache) for cache in caches]


# --------------------------------------------------------------------------------------------
# train / validation items
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Rows ``(source, index)`` of the training and validation items."""

    train: np.ndarray  # (N, 2) int64
    val: np.ndarray  # (M, 2) int64


def split_items(sources: Sequence[Any], val_fraction: float, seed: int) -> Split:
    """Training rows are a source's 'train' and unsplit ('') records; 'test' is never trained on.

    Validation uses the source's own 'val' records; a source without any gets a fixed random
    ``val_fraction`` of its training rows held out instead (the same for a given seed).
    """
    train_parts, val_parts = [], []
    for s, source in enumerate(sources):
        splits = np.asarray(source.splits(), dtype=object)
        train_idx = np.flatnonzero((splits == "train") | (splits == ""))
        val_idx = np.flatnonzero(splits == "val")
        if val_idx.size == 0 and train_idx.size > 1:
            rng = np.random.default_rng([seed, s, 7919])
            n_val = max(1, int(round(val_fraction * train_idx.size)))
            chosen = np.zeros(train_idx.size, dtype=bool)
            chosen[rng.permutation(train_idx.size)[:n_val]] = True
            val_idx, train_idx = train_idx[chosen], train_idx[~chosen]
        train_parts.append(np.stack([np.full(train_idx.size, s), train_idx], axis=1))
        val_parts.append(np.stack([np.full(val_idx.size, s), val_idx], axis=1))
    return Split(np.concatenate(train_parts).astype(np.int64), np.concatenate(val_parts).astype(np.int64))


# --------------------------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------------------------
def sample_rng(seed: int, epoch: int, index: int, stream: int = TRAIN_STREAM) -> np.random.Generator:
    """The generator of one sample: a pure function of (seed, epoch, index, stream)."""
    return np.random.default_rng([int(seed), int(stream), int(epoch), int(index)])


class PretrainDataset(Dataset):
    """Masked training samples: item ``i`` is record ``items[i]`` with its own visible leads
    (drawn from ``visible``, :mod:`lvcg_cli.datasets.visible_leads`).

    ``stream`` separates training from validation draws; validation keeps ``epoch`` at 0, so
    its masks are the same at every evaluation.
    """

    def __init__(
        self,
        sources: Sequence[Any],
        items: np.ndarray,
        data: DataSettings,
        model: ModelSettings,
        *,
        visible: VisibleLeads,
        seed: int,
        stream: int = TRAIN_STREAM,
    ):
        self.sources = list(sources)
        self.items = np.asarray(items, dtype=np.int64).reshape(-1, 2)
        self.data, self.model = data, model
        self.visible = visible
        self.seed, self.stream = seed, stream
        self.epoch = 0
        self._warned: set[int] = set()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _record(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Record ``i``, or the next readable one (warning once per unreadable record)."""
        for offset in range(MAX_SUBSTITUTES):
            j = (i + offset) % len(self.items)
            source, local = self.items[j]
            try:
                return self.sources[source].get(int(local))
            except RecordError as exc:
                if j not in self._warned:
                    self._warned.add(j)
                    warn(f"skipping record {exc.path}: {exc.problem}")
        raise LvcgError(
            f"{MAX_SUBSTITUTES} consecutive records could not be read (around item {i}); check the data"
        )

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``, or ``(epoch, index)`` as :class:`EpochIndices` sends it to persistent workers
        (whose copy of the dataset never sees :meth:`set_epoch`)."""
        from lvcg_cli.signals.model_input import make_sample

        if isinstance(key, tuple):
            epoch, i = int(key[0]), int(key[1])
        else:
            epoch, i = self.epoch, int(key)
        signal, present = self._record(i)
        epoch = epoch if self.stream == TRAIN_STREAM else 0
        rng = sample_rng(self.seed, epoch, i, self.stream)
        visible = self.visible.draw(present, rng)
        return make_sample(signal, present, visible, self.data, self.model)


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack sample dicts into a batch dict."""
    return default_collate(samples)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled, drop_last) that can start part-way into an epoch.

    ``start`` skips that many of this rank's indices, so a run resumed mid-epoch sees exactly the
    batches the uninterrupted run would have (the trainer sets it back to 0 for the next epoch).
    """

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int):
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class EpochIndices(Sampler):
    """``(epoch, index)`` for every index of ``sampler``, the epoch read when iteration starts.

    Persistent DataLoader workers hold their own copy of the dataset, made when they started, so
    ``dataset.set_epoch`` in the main process never reaches them; the epoch travels with each index
    instead (the sampler itself runs in the main process, where ``set_epoch`` does arrive).
    """

    def __init__(self, sampler: ResumableSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = int(self.sampler.epoch)
        return ((epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------
def resolve_num_workers(
    setting: int | str, device_type: str, *, local_world_size: int | None = None, cpus: int | None = None
) -> int:
    """``data.num_workers`` as a number: an integer as given; ``auto`` from the machine.

    ``auto`` shares this machine's CPUs among the local training processes (``LOCAL_WORLD_SIZE``
    from torchrun / the elastic launcher), keeps one per process for the training loop itself, and
    starts at most :data:`MAX_AUTO_WORKERS` on a GPU. On the CPU one worker (when a core is spare):
    it prepares samples >10x faster than a CPU training step consumes them, and every further
    worker would take a core from the model's own threads. Results never depend on the number
    (samples are seeded per item; ``tests/test_torch_data.py``).
    """
    if setting != "auto":
        return int(setting)
    if local_world_size is None:
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    cpus = available_cpus() if cpus is None else int(cpus)
    spare = cpus // max(int(local_world_size), 1) - 1
    if spare <= 0:
        return 0
    return 1 if device_type == "cpu" else min(MAX_AUTO_WORKERS, spare)


def _ignore_sigint_in_worker(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which stops at a step boundary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    seed: int,
    sampler: ResumableSampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """The DataLoader of a training or validation set, set up for throughput.

    With workers: persistent (started once, not at every epoch or validation pass), each keeping
    :data:`PREFETCH_BATCHES` batches ready, Ctrl-C left to the main process. A ``sampler`` (training)
    is wrapped in :class:`EpochIndices` so persistent workers draw each epoch's visible leads. On
    CUDA batches come in pinned memory, so ``tensor.to(device, non_blocking=True)`` overlaps the
    copy with the step. ``seed`` feeds the loader's own generator (worker seeds), never the global
    random state.
    """
    workers = max(int(num_workers), 0)
    args: dict[str, Any] = {
        "batch_size": batch_size,
        "num_workers": workers,
        "collate_fn": collate,
        "pin_memory": device.type == "cuda",
        "drop_last": drop_last,
        "generator": torch.Generator().manual_seed(seed),
    }
    if sampler is not None:
        args["sampler"] = EpochIndices(sampler)
    if workers:
        args.update(
            persistent_workers=True, prefetch_factor=PREFETCH_BATCHES, worker_init_fn=_ignore_sigint_in_worker
        )
    return DataLoader(dataset, **args)
