"""The packed cache: a prepared data set as one float16 memmap plus a manifest table.

A prepared data set is a folder (``paths.prepared_dir(name)`` or ``--out``)::

    meta.json      format "lvcg-cache/1", dataset, fs, n_samples, n, tasks, preprocessing, complete
    signals.npy    (N, 12, n_samples) float16, mV, canonical lead order (np.load(mmap_mode="r"))
    manifest.csv   one row per written record: id, source, split, flags, present, "<task>:<class>" int8
    manifest.jsonl id + ecg_path per record (the original LVCG manifest form)
    skipped.tsv    every record that could not be used, with the reason

or a parent folder of shards ``shard-<i>-of-<n>/`` with that layout each, used together
(:mod:`lvcg_cli.datasets.prepared` opens data sets by name, shards and all).
``meta.json`` is written last (atomically) and only then says ``complete: true``, so a reader
never mistakes a half-written cache for a finished one. Nothing here loads all signals into
memory: training and probing index the memmap.

Beyond the contract, a manifest may hold ``split:<task>`` columns: the partition of one task
(PTB-XL's MELP splits differ per task because records without a label of that task are left
out); :meth:`PackedCache.split_indices` uses them when given ``task``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lvcg_cli.errors import LvcgError, first_line
from lvcg_cli.settings import CACHE_KEYS

FORMAT = "lvcg-cache/1"
META_FILE = "meta.json"
SIGNALS_FILE = "signals.npy"
MANIFEST_FILE = "manifest.csv"
JSONL_FILE = "manifest.jsonl"
SKIPPED_FILE = "skipped.tsv"
SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)$")

PREPROCESSING_KEYS = CACHE_KEYS
"""The DataSettings fields that change what the cache holds."""


def preprocessing_of(data: Any) -> dict[str, Any]:
    """The preprocessing settings that define a cache's content, as JSON-able values."""
    out = {}
    for key in PREPROCESSING_KEYS:
        value = getattr(data, key)
        out[key] = [float(v) for v in value] if isinstance(value, tuple | list) else value
    return out


def shard_dir_name(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest CSV with text columns kept as text and label columns as int8."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in frame.columns:
        if ":" in column and not column.startswith("split:"):
            frame[column] = pd.to_numeric(frame[column]).astype(np.int8)
    return frame


class PackedCache:
    """One prepared data set (or one shard of it), opened read-only.

    ``signals`` is a read-only memmap; :meth:`get` copies one record out as float32.
    """

    def __init__(self, path: Path, meta: dict, manifest: pd.DataFrame, signals: np.ndarray):
        self.path = path
        self.meta = meta
        self.manifest = manifest
        self.signals = signals

    # ---------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> PackedCache:
        """Open a complete cache folder; a one-line :class:`LvcgError` if missing, incomplete or corrupt."""
        path = Path(path).expanduser()
        meta_path = path / META_FILE
        if not meta_path.is_file():
            if path.is_dir() and shard_dirs(path):
                raise LvcgError(f"{path}: holds shards; open it with open_datasets (it uses every shard)")
            if path.is_dir() and (path / ".partial").is_dir():
                from lvcg_cli.locks import describe_holder, holder_of

                holder = holder_of(path)
                if holder is not None:
                    raise LvcgError(f"{path}: being prepared right now ({describe_holder(holder)})")
                raise LvcgError(
                    f"{path}: preparation has not finished (run the same `lvcg prepare-data` command to continue)"
                )
            raise LvcgError(f"{path}: not a prepared data set (no {META_FILE}; run `lvcg prepare-data`)")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise LvcgError(
                f"{meta_path}: unreadable or corrupt (prepare the data set again with --force)"
            ) from None
        if meta.get("format") != FORMAT:
            raise LvcgError(f"{meta_path}: unknown cache format {meta.get('format')!r} (expected {FORMAT})")
        if not meta.get("complete"):
            raise LvcgError(
                f"{path}: preparation has not finished (run the same `lvcg prepare-data` command)"
            )
        n, n_samples = int(meta["n"]), int(meta["n_samples"])
        try:
            signals = np.load(path / SIGNALS_FILE, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise LvcgError(
                f"{path / SIGNALS_FILE}: unreadable or corrupt ({first_line(exc)}); prepare again with --force"
            ) from None
        if signals.shape != (n, 12, n_samples) or signals.dtype != np.float16:
            raise LvcgError(
                f"{path / SIGNALS_FILE}: holds {signals.dtype} {signals.shape}, meta.json says float16 "
                f"({n}, 12, {n_samples}); prepare again with --force"
            )
        try:
            manifest = read_manifest(path / MANIFEST_FILE)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise LvcgError(
                f"{path / MANIFEST_FILE}: unreadable ({first_line(exc)}); prepare again with --force"
            ) from None
        if len(manifest) != n:
            raise LvcgError(
                f"{path / MANIFEST_FILE}: {len(manifest)} rows for {n} records; prepare again with --force"
            )
        return cls(path, meta, manifest, signals)

    # ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.signals.shape[0])

    def __repr__(self) -> str:
        return f"PackedCache({self.meta.get('dataset')!r}, n={len(self)}, path={str(self.path)!r})"

    @property
    def tasks(self) -> dict[str, list[str]]:
        return dict(self.meta.get("tasks", {}))

    @property
    def fs(self) -> float:
        return float(self.meta["fs"])

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Record ``i``: ``(signal (12, n) float32 mV, present (12,) bool)``."""
        signal = np.asarray(self.signals[int(i)], dtype=np.float32)
        present = np.frombuffer(self.manifest["present"].iat[int(i)].encode("ascii"), dtype=np.uint8) == ord(
            "1"
        )
        return signal, present

    def present(self) -> np.ndarray:
        """(N, 12) bool lead masks of every record."""
        text = self.manifest["present"].to_numpy(dtype=str)
        if not len(text):
            return np.zeros((0, 12), dtype=bool)
        return np.frombuffer("".join(text).encode("ascii"), dtype=np.uint8).reshape(-1, 12) == ord("1")

    def resolve_task(self, task: str) -> str:
        """``default`` -> the data set's default task; an unknown task is a one-line error."""
        tasks = self.tasks
        if task == "default":
            task = self.meta.get("default_task") or (next(iter(tasks)) if tasks else "")
        if task not in tasks:
            known = ", ".join(tasks) or "none (unlabelled data)"
            raise LvcgError(f"{self.meta.get('dataset', self.path)}: no task {task!r}; tasks: {known}")
        return task

    def labels(self, task: str) -> tuple[list[str], np.ndarray]:
        """Class names and the (N, C) int8 label matrix of one task (``default`` allowed)."""
        task = self.resolve_task(task)
        classes = list(self.tasks[task])
        columns = [f"{task}:{name}" for name in classes]
        if not columns:
            return classes, np.zeros((len(self), 0), dtype=np.int8)
        return classes, self.manifest[columns].to_numpy(dtype=np.int8)

    def split_indices(self, split: str, task: str | None = None) -> np.ndarray:
        """Row indices of a split (``train``/``val``/``test``/``''``), of ``task``'s own partition if it has one."""
        column = "split"
        if task is not None:
            task = self.resolve_task(task)
            if f"split:{task}" in self.manifest:
                column = f"split:{task}"
        values = (
            self.manifest[column].to_numpy(dtype=str) if column in self.manifest else np.full(len(self), "")
        )
        return np.flatnonzero(values == split)


# ------------------------------------------------------------------------------------------
# shards (opened together by lvcg_cli/datasets/prepared.py)
# ------------------------------------------------------------------------------------------
def shard_dirs(path: Path) -> list[tuple[int, int, Path]]:
    """``(index, count, folder)`` of every ``shard-<i>-of-<n>`` folder in ``path``, sorted by name."""
    found = []
    for child in sorted(path.iterdir()) if path.is_dir() else []:
        match = SHARD_RE.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), int(match.group(2)), child))
    return found
