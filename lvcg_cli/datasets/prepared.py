"""Prepared data sets by name: every shard of a packed cache, seen as one table.

``lvcg pretrain`` reads caches (:func:`open_datasets`); ``lvcg probe``, ``lvcg embed --data`` and
``lvcg reconstruct --data`` read one data set as a :class:`PreparedData`: windows, lead masks,
labels and splits over all of its shards. A data set that is not there raises
:class:`NotPreparedError`, which callers may treat as "skip" (``lvcg probe --all``) without
reading messages; a task a data set lacks raises :class:`NoSuchTaskError`.

Names resolve under the cache folder (``paths.prepared_dir``); ``default`` and ``sim`` are the
built-in data (:mod:`lvcg_cli.datasets.default`), built once on first use; anything with a
``/`` (or an existing folder that is not a plain name) is a path. Every cache must have been
prepared at the current ``data.fs`` and ``data.window_s``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.datasets.cache import META_FILE, PackedCache, preprocessing_of, shard_dir_name, shard_dirs
from lvcg_cli.errors import LvcgError

if TYPE_CHECKING:
    from lvcg_cli.settings import Settings

SPLITS = ("train", "val", "test")
TASK_ALIASES: dict[str, tuple[str, ...]] = {
    "super": ("super", "super_class", "superdiagnostic"),
    "sub": ("sub", "sub_class", "subdiagnostic"),
    "form": ("form",),
    "rhythm": ("rhythm",),
}
"""Names a task may be stored under (PTB-XL's ``super`` is ``super_class`` in the MELP splits)."""


class NotPreparedError(LvcgError):
    """A data set that has not been prepared here (no folder, or no finished cache in it)."""


class NoSuchTaskError(LvcgError):
    """A prepared data set without the task asked for."""


# --------------------------------------------------------------------------------------------
# opening caches
# --------------------------------------------------------------------------------------------
def open_prepared(path: Path, label: str) -> list[PackedCache]:
    """A prepared folder as caches: itself, or all of its shards (every shard must be complete)."""
    if (path / META_FILE).is_file():
        return [PackedCache.open(path)]
    shards = shard_dirs(path)
    if not shards:
        if path.is_dir() and (path / ".partial").is_dir():
            raise LvcgError(
                f"{label}: preparation of {path} has not finished (rerun `lvcg prepare-data` to continue)"
            )
        name = label if re.fullmatch(r"[\w-]+", label) else "NAME"
        raise NotPreparedError(
            f"{label}: not prepared yet at {path} (run `lvcg prepare-data {name} --root PATH`)"
        )
    counts = {count for _, count, _ in shards}
    if len(counts) != 1:
        raise LvcgError(f"{path}: shards of different splittings ({sorted(counts)}); remove the stale ones")
    count = counts.pop()
    done = {index for index, _, _ in shards if (path / shard_dir_name(index, count) / META_FILE).is_file()}
    missing = [str(i) for i in range(count) if i not in done]
    if missing:
        raise LvcgError(
            f"{label}: shards {', '.join(missing)} of {count} are not finished in {path} "
            f"(run `lvcg prepare-data ... --shard i/{count}` for each)"
        )
    return [PackedCache.open(path / shard_dir_name(i, count)) for i in range(count)]


def check_preprocessing(cache: PackedCache, data: Any) -> None:
    """A cache prepared with other preprocessing would silently feed the model the wrong rate."""
    want = preprocessing_of(data)
    have = cache.meta.get("preprocessing", {})
    diff = [k for k in ("fs", "window_s") if k in have and float(have[k]) != float(want[k])]
    if diff:
        parts = ", ".join(f"--data.{k} {have[k]:g} (now {want[k]:g})" for k in diff)
        raise LvcgError(
            f"{cache.path}: prepared with {parts}; prepare it again with the same --data settings (add --force)"
        )


def check_dataset_name(name: str, prepared_root: Path | None = None) -> None:
    """A bare ``--data`` name must be one ``lvcg prepare-data`` makes, a built-in one, or one prepared here.

    Otherwise the error would send the user to ``lvcg prepare-data <that name>``, which does not
    exist either; this one names the closest valid name instead.
    """
    from lvcg_cli.datasets import default as builtin
    from lvcg_cli.datasets.registry import DATASETS

    known = [*builtin.BUILTIN_NAMES, *DATASETS]
    if name in known:
        return
    prepared = (
        sorted(p.name for p in prepared_root.iterdir() if p.is_dir())
        if prepared_root and prepared_root.is_dir()
        else []
    )
    candidates = [*known, *prepared]
    close = [c for c in candidates if name.lower().startswith(c) or c.startswith(name.lower())]
    close = close or difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise LvcgError(
        f"{name}: unknown data set{hint}; give a name that `lvcg prepare-data NAME` makes ({', '.join(DATASETS)}), "
        f"{' or '.join(repr(b) for b in builtin.BUILTIN_NAMES)}, or a prepared folder's path"
    )


def open_datasets(names_or_paths: Sequence[str | Path], settings: Settings) -> list[PackedCache]:
    """Open prepared data sets by name (under the cache folder) or path; shards expand to one cache each.

    ``default`` builds once (and reuses) the built-in data: simulated records plus the bundled
    open records; ``sim`` is a small labelled simulated probing set. Every cache must match the
    current ``--data.fs`` / ``--data.window_s``.
    """
    from lvcg_cli import paths
    from lvcg_cli.datasets import default as builtin

    caches: list[PackedCache] = []
    for item in names_or_paths:
        text = str(item)
        if text in builtin.BUILTIN_NAMES:
            caches.append(builtin.open_builtin(text, settings))
            continue
        candidate = Path(text).expanduser()
        if "/" in text or text.startswith(".") or candidate.is_dir() and not re.fullmatch(r"[\w-]+", text):
            if not candidate.exists():
                raise NotPreparedError(f"{candidate}: no such prepared data set folder")
            found = open_prepared(candidate, text)
        else:
            folder = paths.prepared_dir(text, settings.paths.cache_dir)
            if not folder.exists():
                check_dataset_name(text, folder.parent)
            found = open_prepared(folder, text)
        for cache in found:
            check_preprocessing(cache, settings.data)
        caches.extend(found)
    return caches


# --------------------------------------------------------------------------------------------
# one data set as one table
# --------------------------------------------------------------------------------------------
class PreparedData:
    """A prepared data set (all its shards) as one indexable table of windows, labels and splits."""

    def __init__(self, name: str, caches: Sequence[PackedCache]):
        if not caches:
            raise NotPreparedError(f"{name}: no prepared records")
        self.name = name
        self.caches = list(caches)
        self.offsets = np.cumsum([0] + [len(c) for c in self.caches])
        self.fs = float(self.caches[0].fs)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def tasks(self) -> dict[str, list[str]]:
        return self.caches[0].tasks

    def resolve_task(self, task: str) -> str:
        """The cache's own name for ``task`` (``super`` may be stored as ``super_class``)."""
        tasks = self.tasks
        if task == "default":
            return self.caches[0].resolve_task("default") if tasks else task
        for candidate in TASK_ALIASES.get(task, (task,)):
            if candidate in tasks:
                return candidate
        known = ", ".join(tasks) or "none (unlabelled data)"
        raise NoSuchTaskError(f"{self.name}: no task {task!r}; tasks: {known}")

    def labels(self, task: str) -> tuple[list[str], np.ndarray]:
        """Class names and the (N, C) int8 labels of ``task`` over every shard."""
        parts = [cache.labels(task) for cache in self.caches]
        return parts[0][0], np.concatenate([p[1] for p in parts])

    def split(self, split: str, task: str | None = None) -> np.ndarray:
        """Rows of ``split`` (``train``, ``val`` or ``test``), of ``task``'s own partition if it has one."""
        if split not in SPLITS:
            raise LvcgError(f"--split: must be {', '.join(SPLITS[:-1])} or {SPLITS[-1]} (got {split!r})")
        return np.concatenate(
            [
                cache.split_indices(split, task) + off
                for cache, off in zip(self.caches, self.offsets, strict=False)
            ]
        )

    def ids(self) -> np.ndarray:
        """(N,) record ids, in row order."""
        return np.concatenate([cache.manifest["id"].to_numpy(dtype=str) for cache in self.caches])

    def present(self) -> np.ndarray:
        """(N, 12) bool lead masks."""
        return np.concatenate([cache.present() for cache in self.caches])

    def windows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` as float32 (B, 12, n) mV (possibly spanning shards)."""
        parts = []
        for cache, off in zip(self.caches, self.offsets, strict=False):
            a, b = max(lo, off), min(hi, off + len(cache))
            if a < b:
                parts.append(np.asarray(cache.signals[a - off : b - off], dtype=np.float32))
        return np.concatenate(parts)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Any rows (e.g. one split) as float32 (len(rows), 12, n) mV, in the order given."""
        if len(rows) == 0:
            return np.zeros((0, 12, int(self.caches[0].signals.shape[-1])), np.float32)
        return np.concatenate([self.windows(int(i), int(i) + 1) for i in rows])

    def key(self) -> str:
        """Identity of the prepared content: each shard's path and meta.json."""
        digest = hashlib.sha256()
        for cache in self.caches:
            digest.update(str(Path(cache.path).resolve()).encode())
            digest.update(json.dumps(cache.meta, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]


def open_prepared_data(name: str, settings: Settings) -> PreparedData:
    """One prepared data set by name or folder; :class:`NotPreparedError` when it is not there."""
    return PreparedData(name, open_datasets([name], settings))
