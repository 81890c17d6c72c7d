"""The built-in data sets that need no download: ``default`` (pretraining) and ``sim`` (probing).

``default`` = ``data.sim_records`` simulated records (split train/val by ``data.val_fraction``,
labels as task ``sim``) + the bundled open records (``assets/records/open_train.npz``: the
training part of a patient-disjoint split of open PTB-XL and LUDB records, split ``train``).
``sim`` = a few hundred simulated records with train/val/test splits and their labels, so that
``lvcg probe`` works on a fresh machine.

Both are built once into the cache folder (``<cache>/prepared/<name>/``) and reused; they are
rebuilt when the settings they depend on change (preprocessing, ``sim_records``,
``val_fraction``, the bundled file). A file lock keeps concurrent processes (several ranks of a
distributed run) from building at the same time, and the build lands by an atomic rename, so a
reader sees the old cache, the new one, or none (and then waits for the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lvcg_cli import paths
from lvcg_cli.atomic import write_text_atomic
from lvcg_cli.console import info
from lvcg_cli.datasets import cache as cache_mod
from lvcg_cli.errors import LvcgError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

    from lvcg_cli.settings import DataSettings, Settings

BUILTIN_NAMES = ("default", "sim")
VERSION = 1
SIM_SEED = {"default": 20240601, "sim": 7}
SIM_PROBE_SPLITS = {"train": 480, "val": 120, "test": 240}
"""Records per split of the ``sim`` probing set (840 in all)."""
BLOCK = 256
"""Simulated records per block (bounds memory at high sampling rates)."""


def open_records_path() -> Path:
    return Path(str(resources.files("lvcg_cli") / "assets" / "records" / "open_train.npz"))


def _file_digest(path: Path) -> str:
    if not path.is_file():
        return "absent"
    return hashlib.sha1(path.read_bytes()).hexdigest()


def build_key(name: str, data: DataSettings) -> dict:
    """What a built-in cache depends on; a different key means rebuild."""
    key = {"name": name, "version": VERSION, "preprocessing": cache_mod.preprocessing_of(data)}
    if name == "default":
        key.update(
            sim_records=data.sim_records,
            val_fraction=data.val_fraction,
            open_records=_file_digest(open_records_path()),
        )
    return key


def _filter_block(signals: np.ndarray, data: DataSettings) -> np.ndarray:
    """Band-pass a (B, 12, T) block exactly as the signals layer does, window to n_samples."""
    from lvcg_cli.signals.preprocess import bandpass, fix_window

    out = bandpass(signals.astype(np.float32), data.fs, tuple(data.bandpass), data.filter_order)
    return fix_window(out, data.n_samples, "start", "zero")


def simulated(n: int, seed: int, data: DataSettings) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``n`` simulated records preprocessed like the cache: (n, 12, n_samples) float16 mV, labels, names."""
    from lvcg_cli.datasets.simulator import simulate

    signals = np.zeros((n, 12, data.n_samples), dtype=np.float16)
    labels, names = [], ()
    for block, start in enumerate(range(0, n, BLOCK)):
        size = min(BLOCK, n - start)
        sim = simulate(size, seed=seed + block, fs=data.fs, duration_s=data.window_s)
        signals[start : start + size] = _filter_block(sim.signals, data).astype(np.float16)
        labels.append(np.asarray(sim.labels, dtype=np.int8))
        names = tuple(sim.label_names)
    return signals, np.concatenate(labels) if labels else np.zeros((0, 0), np.int8), names


def load_open_records(data: DataSettings) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The bundled open records at the current preprocessing: signals float16, present, table (id, source)."""
    from lvcg_cli.signals.preprocess import bandpass, fix_window, resample

    path = open_records_path()
    if not path.is_file():
        return np.zeros((0, 12, data.n_samples), np.float16), np.zeros((0, 12), bool), pd.DataFrame()
    with np.load(path, allow_pickle=False) as bundle:
        signals = bundle["signals"]
        present = bundle["present"].astype(bool)
        table = pd.DataFrame({"id": bundle["ids"].astype(str), "source": bundle["sources"].astype(str)})
        fs, window_s = float(bundle["fs"]), float(bundle["window_s"])
        band = tuple(float(v) for v in bundle["bandpass"])
    same = fs == data.fs and window_s == data.window_s and band == tuple(data.bandpass)
    table["flags"] = ""
    if not same:
        # Records were stored preprocessed at 100 Hz; another rate/band is derived from that copy.
        x = resample(signals.astype(np.float32), fs, data.fs)
        x = bandpass(x, data.fs, tuple(data.bandpass), data.filter_order)
        signals = fix_window(x, data.n_samples, "start", "zero").astype(np.float16)
        signals[~present] = 0
        table["flags"] = f"derived_from_{fs:g}hz"
    return signals, present, table


def _present_text(present: np.ndarray) -> list[str]:
    return ["".join("1" if p else "0" for p in row) for row in present]


def _write(target: Path, signals: np.ndarray, manifest: pd.DataFrame, meta: dict) -> None:
    """Write a complete cache into a fresh sibling folder, then swap it in by rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        np.save(tmp / cache_mod.SIGNALS_FILE, signals)
        manifest.to_csv(tmp / cache_mod.MANIFEST_FILE, index=False)
        write_text_atomic(tmp / cache_mod.META_FILE, json.dumps(meta, indent=1))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_default(target: Path, data: DataSettings) -> None:
    sim_signals, sim_labels, names = simulated(data.sim_records, SIM_SEED["default"], data)
    n_sim = len(sim_signals)
    rng = np.random.default_rng(SIM_SEED["default"])
    n_val = max(1, int(round(data.val_fraction * n_sim)))
    sim_split = np.full(n_sim, "train", dtype=object)
    sim_split[rng.permutation(n_sim)[:n_val]] = "val"
    open_signals, open_present, open_table = load_open_records(data)
    n_open = len(open_signals)

    signals = np.concatenate([sim_signals, open_signals]) if n_open else sim_signals
    present = (
        np.concatenate([np.ones((n_sim, 12), bool), open_present]) if n_open else np.ones((n_sim, 12), bool)
    )
    manifest = pd.DataFrame(
        {
            "id": [f"sim-{i:06d}" for i in range(n_sim)] + (open_table["id"].tolist() if n_open else []),
            "source": ["simulator"] * n_sim + (open_table["source"].tolist() if n_open else []),
            "split": list(sim_split) + ["train"] * n_open,
            "flags": [""] * n_sim + (open_table["flags"].tolist() if n_open else []),
            "present": _present_text(present),
        }
    )
    labels = np.concatenate([sim_labels, np.zeros((n_open, len(names)), np.int8)]) if n_open else sim_labels
    for j, name in enumerate(names):
        manifest[f"sim:{name}"] = labels[:, j]
    manifest["split:sim"] = list(sim_split) + [""] * n_open
    _write(
        target,
        signals,
        manifest,
        _meta(
            "default",
            data,
            len(manifest),
            {"sim": list(names)},
            "sim",
            {"n_simulated": n_sim, "n_open_records": n_open},
        ),
    )


def build_sim(target: Path, data: DataSettings) -> None:
    n = sum(SIM_PROBE_SPLITS.values())
    signals, labels, names = simulated(n, SIM_SEED["sim"], data)
    split = np.concatenate([np.full(k, s, dtype=object) for s, k in SIM_PROBE_SPLITS.items()])
    manifest = pd.DataFrame(
        {
            "id": [f"sim-{i:06d}" for i in range(n)],
            "source": "simulator",
            "split": split,
            "flags": "",
            "present": "1" * 12,
        }
    )
    for j, name in enumerate(names):
        manifest[f"sim:{name}"] = labels[:, j]
    _write(target, signals, manifest, _meta("sim", data, n, {"sim": list(names)}, "sim", {}))


def _meta(name: str, data: DataSettings, n: int, tasks: dict, default_task: str, extra: dict) -> dict:
    return {
        "format": cache_mod.FORMAT,
        "dataset": name,
        "fs": float(data.fs),
        "n_samples": int(data.n_samples),
        "n": int(n),
        "tasks": tasks,
        "default_task": default_task,
        "preprocessing": cache_mod.preprocessing_of(data),
        "build_key": build_key(name, data),
        "info": {
            "licence": "simulated records: MIT (lvcg); open records: see assets/records/OPEN_RECORDS.md",
            **extra,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "complete": True,
    }


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_builtin(name: str, settings: Settings) -> cache_mod.PackedCache:
    """Open ``default`` or ``sim`` from the cache folder, building it first if absent or stale."""
    if name not in BUILTIN_NAMES:
        raise LvcgError(f"unknown built-in data set {name!r}; choose from {', '.join(BUILTIN_NAMES)}")
    target = paths.prepared_dir(name, settings.paths.cache_dir)
    want = build_key(name, settings.data)
    with _locked(target.parent / f".{name}.lock"):
        with contextlib.suppress(LvcgError):
            cache = cache_mod.PackedCache.open(target)
            if cache.meta.get("build_key") == want:
                return cache
        started = time.perf_counter()
        info(f"building the built-in '{name}' data set in {target} (once; reused afterwards)")
        (build_default if name == "default" else build_sim)(target, settings.data)
        info(f"built '{name}' in {time.perf_counter() - started:.1f} s")
        return cache_mod.PackedCache.open(target)


__all__ = ["BUILTIN_NAMES", "build_key", "load_open_records", "open_builtin", "simulated"]


def open_records_batch(
    settings: Settings, rows: int | Sequence[int], seed: int = 0
) -> dict[str, torch.Tensor]:
    """Training samples from the bundled open records, visible leads drawn as in training.

    ``rows`` is a number of records (drawn with ``seed``; with replacement only when it exceeds
    the records there are) or their indices. For tests and benchmarks that need real ECGs in
    the exact form a training step sees, without preparing a data set.
    """
    from lvcg_cli.datasets.visible_leads import VisibleLeads
    from lvcg_cli.signals.model_input import collate_samples, make_sample

    signals, present, _ = load_open_records(settings.data)
    rng = np.random.default_rng(seed)
    if isinstance(rows, int):
        rows = rng.choice(len(signals), size=rows, replace=rows > len(signals))
    draw = VisibleLeads.from_settings(settings.train)
    return collate_samples(
        [
            make_sample(
                signals[i].astype(np.float32),
                present[i],
                draw.draw(present[i], rng),
                settings.data,
                settings.model,
            )
            for i in rows
        ]
    )
