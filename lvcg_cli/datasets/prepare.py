"""The ``prepare-data`` job: a release -> a packed cache, in parallel, resumable, never half-trusted.

How it stays safe and restartable:

0. The output folder is locked (:mod:`lvcg_cli.locks`) for the whole run: a second
   ``prepare-data`` into the same folder refuses with one line naming the running one. Pool
   workers die with the parent (``PR_SET_PDEATHSIG``) and share its lock, so a rerun after
   ``kill -9`` never races a leftover worker. Temporary files of killed writers are removed.
1. The plan (every record, its labels and split) is built first and sliced for ``--shard i/n``.
2. Records are processed in fixed chunks of ``chunk_size`` (recorded in ``.partial/job.json``).
   A worker reads and preprocesses its chunk and writes ``.partial/chunks/<k>.npy`` then
   ``<k>.json`` (both atomically); the ``.json`` is the chunk's done-marker and holds a CRC-32 of
   every row. A killed run loses at most the chunks in flight; the next run skips every chunk
   with a marker. If the record list or preprocessing changed, the partial work is discarded
   (said in one line).
3. Finished chunks are checked against their markers and copied in order into
   ``.partial/signals.npy`` (an ``open_memmap``); the number copied is recorded after each copy,
   and each chunk file is deleted once copied, so disk use stays at about one cache.
4. ``signals.npy``, ``manifest.csv``, ``manifest.jsonl`` and ``skipped.tsv`` are moved/written into
   place, the result is verified (array shape = row count = manifest rows, no chunk left
   uncopied, the first and last row of every chunk read back against its CRC), and only then is
   ``meta.json`` (``complete: true``) written. Without it readers refuse the folder.

Bad records (``RecordError`` from the signals layer) are skipped and logged with their reason;
the rest is written. An output that cannot be written (full or read-only disk) stops the run
with one line; finished chunks are kept for the rerun.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import re
import shutil
import signal as signal_module
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lvcg_cli import locks, paths
from lvcg_cli.atomic import atomic_path, output_error, write_text_atomic
from lvcg_cli.console import info, progress
from lvcg_cli.datasets import cache as cache_mod
from lvcg_cli.datasets.registry import Plan, module_for, record_path_without_suffix, resolve_root
from lvcg_cli.errors import LvcgError, RecordError, first_line

if TYPE_CHECKING:
    from lvcg_cli.settings import DataSettings, Settings

FLOAT16_LIMIT_MV = 60000.0
"""Values are clipped to +-this before the float16 cast (flag ``clipped``): float16 overflows at 65504."""

PARTIAL = ".partial"


@dataclass
class PrepareResult:
    """What a prepare run did (for the summary table and tests)."""

    dataset: str
    path: Path
    n_planned: int = 0
    n_written: int = 0
    skipped: Counter = field(default_factory=Counter)
    reused: bool = False
    chunks_run: list[int] = field(default_factory=list)
    chunks_reused: int = 0
    seconds: float = 0.0

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"3/8"`` -> ``(3, 8)`` (0-based index); one-line error otherwise."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise LvcgError(f"--shard: expected i/n such as 0/8 (got {text!r})")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise LvcgError(
            f"--shard: index must satisfy 0 <= i < n (got {index}/{count}); shards are numbered 0..n-1"
        )
    return index, count


def shard_slice(n: int, shard: tuple[int, int] | None) -> slice:
    """The contiguous, deterministic slice of ``n`` plan rows that shard ``(i, count)`` prepares."""
    if shard is None:
        return slice(0, n)
    index, count = shard
    return slice(index * n // count, (index + 1) * n // count)


# ------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------
def _init_worker(parent_pid: int | None = None) -> None:
    # Ctrl-C goes to the whole process group: the parent decides, workers finish their chunk.
    signal_module.signal(signal_module.SIGINT, signal_module.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """Make this worker process end as soon as the job's parent process ends, even by ``kill -9``.

    Why: a pool worker whose parent was killed used to go on writing chunks for minutes,
    re-parented to PID 1, racing the rerun a user starts at once. On Linux the kernel sends
    SIGKILL when the parent dies (``PR_SET_PDEATHSIG``, via ctypes; with forkserver the parent is
    the server, which itself ends with the job); elsewhere a daemon thread polls the parent every
    ``poll_s`` seconds. Either way the parent's folder lock, inherited by forked workers, stays
    held until the last of them is gone.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal_module.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not locks.process_alive(parent_pid):  # the parent died before the signal was armed
        os._exit(1)
    if armed:
        return
    import threading

    def watch() -> None:
        while locks.process_alive(parent_pid):
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="lvcg-parent-watch", daemon=True).start()


def process_record(
    path: str, data: DataSettings, lead_map: dict[str, str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read + preprocess one record into float16 mV (the cache's storage form)."""
    from lvcg_cli.signals.io import read_record
    from lvcg_cli.signals.preprocess import preprocess

    record = read_record(path, max_nan_gap_s=data.max_nan_gap_s, lead_map=lead_map)
    signal, present, flags = preprocess(record, data)
    signal = np.asarray(signal, dtype=np.float32)
    if not np.isfinite(signal).all():
        raise RecordError(path, "preprocessing produced non-finite samples")
    if np.abs(signal).max(initial=0.0) > FLOAT16_LIMIT_MV:
        signal = np.clip(signal, -FLOAT16_LIMIT_MV, FLOAT16_LIMIT_MV)
        flags = [*flags, "clipped"]
    return signal.astype(np.float16), np.asarray(present, dtype=bool), list(flags)


def row_checksums(block: np.ndarray) -> list[int]:
    """CRC-32 of each row's little-endian float16 bytes: what the assembled cache is verified against."""
    data = np.ascontiguousarray(block, dtype="<f2")
    return [zlib.crc32(row.tobytes()) for row in data]


def run_chunk(
    index: int,
    record_paths: list[str],
    chunk_dir: str,
    data_dump: dict[str, Any],
    lead_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Process one chunk and write its files; returns the chunk's marker content."""
    from lvcg_cli.settings import DataSettings

    data = DataSettings.model_validate(data_dump)
    n = data.n_samples
    out = np.zeros((len(record_paths), 12, n), dtype=np.float16)
    written, flags, present, skipped = [], [], [], []
    for local, path in enumerate(record_paths):
        try:
            signal, mask, record_flags = process_record(path, data, lead_map)
        except RecordError as exc:
            skipped.append([local, exc.problem])
            continue
        except Exception as exc:  # a bug or an exotic file: report it, never lose the batch
            skipped.append([local, f"unexpected error ({type(exc).__name__}: {first_line(exc, empty='')})"])
            continue
        out[len(written)] = signal
        written.append(local)
        flags.append(";".join(record_flags))
        present.append("".join("1" if p else "0" for p in mask))
    folder = Path(chunk_dir)
    with atomic_path(folder / f"{index:06d}.npy") as tmp:
        np.save(tmp, out[: len(written)])
    marker = {"index": index, "n": len(record_paths), "written": written, "flags": flags, "present": present}
    marker["row_crc32"] = row_checksums(out[: len(written)])
    marker["skipped"] = skipped
    write_text_atomic(folder / f"{index:06d}.json", json.dumps(marker))
    return marker


# ------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------
def default_out(name: str, settings: Settings) -> Path:
    return paths.prepared_dir(name, settings.paths.cache_dir)


def reason_category(reason: str) -> str:
    """Group skip reasons for the summary: file names and numbers are blanked out."""
    text = re.sub(r"\S+\.(hea|dat|mat|xyz)\b", "<file>", reason)
    text = re.sub(r"\d+(\.\d+)?%?", "N", text)
    return text.split(" (")[0][:80]


def _workers(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def _clear_outputs(target: Path) -> None:
    """Remove what a previous run wrote (meta.json first, so no reader trusts what follows)."""
    for name in (cache_mod.META_FILE, cache_mod.SIGNALS_FILE, cache_mod.MANIFEST_FILE, cache_mod.JSONL_FILE):
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
    with contextlib.suppress(FileNotFoundError):
        (target / cache_mod.SKIPPED_FILE).unlink()
    shutil.rmtree(target / PARTIAL, ignore_errors=True)


def prepare_dataset(
    name: str,
    settings: Settings,
    *,
    root: str | Path | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    on_chunk: Callable[[int, dict], None] | None = None,
    lead_map: dict[str, str] | None = None,
) -> PrepareResult:
    """Prepare data set ``name`` into a packed cache; see the module doc for the guarantees.

    ``on_chunk(index, marker)`` is called in this process after each finished chunk (tests use
    it to interrupt a run). ``lead_map`` (parsed ``--lead-map``) is passed to every
    ``read_record`` and stored with the preprocessing settings, so a cache made with another map
    is not silently reused.
    """
    module = module_for(name)
    root_path = resolve_root(module.NAME, root, settings)
    module.check_layout(root_path, settings)
    base = Path(out).expanduser() if out is not None else default_out(module.NAME, settings)
    target = base / cache_mod.shard_dir_name(*shard) if shard else base
    want = cache_mod.preprocessing_of(settings.data)
    if lead_map:
        want = {**want, "lead_map": dict(lead_map)}
    source = source_of(module, root_path, settings)
    source["preprocessing"] = want  # with the lead map, which also shapes what a cache holds
    if not force:
        _check_siblings(target, base, shard, source)  # before the lock creates the shard's folder
    with locks.exclusive(target, what="prepare-data"):  # one writer per output folder
        _remove_stale_temporaries(target)
        return _prepare_locked(
            module, root_path, target, settings, workers, shard, force, on_chunk, source, lead_map
        )


def _remove_stale_temporaries(target: Path) -> None:
    """Temporary files of writers killed mid-write (safe to remove: we hold the folder's lock)."""
    for folder in (target, target / PARTIAL, target / PARTIAL / "chunks"):
        for tmp in folder.glob(".*.tmp*") if folder.is_dir() else ():
            with contextlib.suppress(OSError):
                tmp.unlink()


def _prepare_locked(
    module, root_path, target, settings, workers, shard, force, on_chunk, source, lead_map
) -> PrepareResult:
    """The body of :func:`prepare_dataset`, run while this process holds ``target``'s lock."""
    want = source["preprocessing"]
    result = PrepareResult(dataset=module.NAME, path=target)
    if force:
        _clear_outputs(target)
    if not force and (target / cache_mod.META_FILE).is_file():
        existing = cache_mod.PackedCache.open(target)
        differences = source_differences(existing.meta, source)
        if differences:
            raise LvcgError(
                f"{target}: already holds {module.NAME} prepared {'; '.join(differences)}; prepare into "
                "its own folder with --out DIR, or replace it with --force"
            )
        result.reused, result.n_written, result.n_planned = (
            True,
            len(existing),
            int(existing.meta.get("n_planned", 0)),
        )
        return result

    start = time.perf_counter()
    plan = module.build_plan(root_path, settings)
    records = plan.records.iloc[shard_slice(len(plan.records), shard)].reset_index(drop=True)
    if records.empty:
        if plan.records.empty:
            raise LvcgError(f"{module.NAME}: found no records under {root_path} (expected {module.EXPECTED})")
        info(f"{module.NAME}: shard {shard[0]}/{shard[1]} holds no records (only {len(plan.records)} in all)")
    result.n_planned = len(records)

    partial = target / PARTIAL
    chunk_dir = partial / "chunks"
    job = {
        "dataset": module.NAME,
        "root": source["root"],
        "shard": list(shard) if shard else None,
        "preprocessing": want,
        "n_records": len(records),
        "fingerprint": _slice_fingerprint(records),
    }
    job_path = partial / "job.json"
    chunk_size = settings.prepare.chunk_size
    if job_path.is_file():
        try:
            old = json.loads(job_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if {k: old.get(k) for k in job} == job:
            chunk_size = int(old["chunk_size"])
        else:
            info(f"{module.NAME}: the records or settings changed since the interrupted run; starting over")
            _clear_outputs(target)
    if not job_path.is_file():
        # A finished cache may still sit here (e.g. after --force was interrupted): it is about
        # to be replaced, so stop readers from trusting it first.
        _clear_outputs(target)
        chunk_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(job_path, json.dumps({**job, "chunk_size": chunk_size}, indent=1))
    chunk_dir.mkdir(parents=True, exist_ok=True)

    n_chunks = math.ceil(len(records) / chunk_size)
    done = {k for k in range(n_chunks) if (chunk_dir / f"{k:06d}.json").is_file()}
    result.chunks_reused = len(done)
    if done:
        info(f"{module.NAME}: continuing an interrupted run ({len(done)} of {n_chunks} chunks already done)")
    pending = [k for k in range(n_chunks) if k not in done]
    record_paths = records["path"].astype(str).tolist()
    n_workers = min(
        _workers(workers if workers is not None else settings.prepare.workers), max(len(pending), 1)
    )
    data_dump = settings.data.model_dump(mode="json")

    def chunk_paths(k: int) -> list[str]:
        return record_paths[k * chunk_size : (k + 1) * chunk_size]

    # The pool starts before the progress bar: rich refreshes from a thread, and forking a
    # single-threaded parent is both the fastest start and the safe one.
    executor = _start_pool(n_workers) if n_workers > 1 and pending else None
    try:
        with progress(unit="records") as bar:
            label = f"{module.NAME}" + (f" shard {shard[0]}/{shard[1]}" if shard else "")
            task = bar.add_task(f"preparing {label}", total=len(records))
            bar.update(task, completed=sum(len(chunk_paths(k)) for k in done))

            def finished(k: int, marker: dict) -> None:
                result.chunks_run.append(k)
                bar.advance(task, marker["n"])
                if on_chunk is not None:
                    on_chunk(k, marker)

            if executor is None:
                for k in pending:
                    finished(k, run_chunk(k, chunk_paths(k), str(chunk_dir), data_dump, lead_map))
            else:
                _run_pool(
                    executor, pending, chunk_paths, str(chunk_dir), data_dump, n_workers, finished, lead_map
                )
    except KeyboardInterrupt:
        n_done = len(done) + len(result.chunks_run)
        info(
            f"{module.NAME}: interrupted; {n_done} of {n_chunks} chunks are saved in {partial} "
            "(run the same command again to continue)"
        )
        raise
    finally:
        if executor is not None:
            # Finish what is running (those chunks are then saved), drop what has not started.
            executor.shutdown(wait=True, cancel_futures=True)

    _assemble(target, records, plan, chunk_dir, n_chunks, settings, result, shard, source)
    result.seconds = time.perf_counter() - start
    return result


def source_of(module: Any, root: Path, settings: Settings) -> dict[str, Any]:
    """What a prepared cache is made from: the release root and every setting that shapes its content.

    A finished cache is reused only when all of it matches, so a second ``--root`` (or another
    ``--prepare.ptbxl_rate``, ``--data.fs`` ...) never silently gets the first one's records.
    """
    plan_settings = getattr(module, "PLAN_SETTINGS", ())
    return {
        "root": str(Path(root).expanduser().resolve()),
        "preprocessing": cache_mod.preprocessing_of(settings.data),
        "prepare_settings": {key: getattr(settings.prepare, key) for key in plan_settings},
    }


def source_differences(meta: dict[str, Any], source: dict[str, Any]) -> list[str]:
    """How a cache's ``meta.json`` differs from ``source``, in command-line terms ([] when it matches)."""
    out = []
    root = meta.get("root")
    if root is not None and Path(root).expanduser().resolve() != Path(source["root"]):
        out.append(f"from {root} (now {source['root']})")
    have = meta.get("preprocessing") or {}
    want = source["preprocessing"]
    for key, value in want.items():
        if key != "lead_map" and key in have and have[key] != value:
            out.append(f"with --data.{key} {_shown(have[key])} (now {_shown(value)})")
    if (have.get("lead_map") or {}) != (want.get("lead_map") or {}):
        shown = {k: _lead_map_text(d.get("lead_map")) for k, d in (("was", have), ("now", want))}
        out.append(f"with --lead-map {shown['was']} (now {shown['now']})")
    recorded = meta.get("prepare_settings")
    if recorded is not None:  # caches from before it was recorded are compared on the rest
        for key, value in source["prepare_settings"].items():
            if key in recorded and recorded[key] != value:
                out.append(f"with --prepare.{key} {recorded[key]} (now {value})")
    return out


def _lead_map_text(mapping: dict[str, str] | None) -> str:
    return ",".join(f"{old}={new}" for old, new in (mapping or {}).items()) or "(none)"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else f"{value}"


def _check_siblings(target: Path, base: Path, shard: tuple[int, int] | None, source: dict[str, Any]) -> None:
    """Shards are used together, so every finished shard of ``base`` must come from the same source."""
    if shard is None or not base.is_dir():
        return
    for child in sorted(base.iterdir()):
        meta_path = child / cache_mod.META_FILE
        if child == target or not cache_mod.SHARD_RE.match(child.name) or not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        differences = source_differences(meta, source)
        if differences:
            raise LvcgError(
                f"{child}: a shard of this data set was prepared {'; '.join(differences)}; shards are used "
                "together, so prepare into its own folder with --out DIR, or replace the shards with --force"
            )


def _slice_fingerprint(records: pd.DataFrame) -> str:
    import hashlib

    digest = hashlib.sha1()
    for path in records["path"].astype(str):
        digest.update(path.encode() + b"\n")
    return digest.hexdigest()


def _noop() -> None:
    return None


def _start_pool(n_workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers exist before this returns.

    ``fork`` when this process has a single thread (fast; nothing re-imported), else
    ``forkserver``/``spawn`` (safe with threads; workers re-import the modules).
    """
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        method = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    executor = ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    executor.submit(_noop).result()  # with fork, every worker is started at the first submit
    return executor


def _run_pool(
    executor, pending, chunk_paths, chunk_dir, data_dump, n_workers, finished, lead_map=None
) -> None:
    """Chunks over the pool, at most ``2 * n_workers`` in flight (bounded memory, quick Ctrl-C)."""
    queue = list(pending)
    in_flight: dict = {}
    while queue or in_flight:
        while queue and len(in_flight) < 2 * n_workers:
            k = queue.pop(0)
            in_flight[executor.submit(run_chunk, k, chunk_paths(k), chunk_dir, data_dump, lead_map)] = k
        done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        for future in done:
            k = in_flight.pop(future)
            finished(k, future.result())


def _copy_chunks(
    partial_signals, final_signals, chunk_dir, markers, copied, state_path, n_written, n
) -> None:
    """Copy chunks ``copied..`` into the partial signals file in order, each checked against its marker."""
    from numpy.lib.format import open_memmap

    n_chunks = len(markers)
    if copied == 0 or not partial_signals.is_file():
        copied = 0
        # Header + a sparse file of the final size; rows are then written with plain file I/O
        # (a memmap would keep every written page mapped, growing RSS with N).
        header_only = open_memmap(partial_signals, mode="w+", dtype=np.float16, shape=(n_written, 12, n))
        del header_only
    row_bytes = 12 * n * 2
    with open(partial_signals, "r+b") as handle:
        major, _ = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        reader(handle)
        data_start = handle.tell()
        offset = sum(len(m["written"]) for m in markers[:copied])
        for k in range(copied, n_chunks):
            m = len(markers[k]["written"])
            if m:
                block = np.load(chunk_dir / f"{k:06d}.npy")
                _check_chunk(chunk_dir, k, block, markers[k], n)
                handle.seek(data_start + offset * row_bytes)
                handle.write(np.ascontiguousarray(block, dtype="<f2").tobytes())
                handle.flush()
                os.fsync(handle.fileno())
            offset += m
            write_text_atomic(state_path, json.dumps({"copied": k + 1}))
            with contextlib.suppress(FileNotFoundError):
                (chunk_dir / f"{k:06d}.npy").unlink()
    os.replace(partial_signals, final_signals)


def _check_chunk(chunk_dir: Path, k: int, block: np.ndarray, marker: dict, n: int) -> None:
    """A chunk file must hold exactly the rows its marker describes (else another writer touched it)."""
    want = marker.get("row_crc32")
    shape_ok = block.shape == (len(marker["written"]), 12, n) and block.dtype == np.float16
    if shape_ok and (want is None or row_checksums(block) == want):
        return
    for suffix in (".npy", ".json"):  # the next run redoes this chunk
        with contextlib.suppress(FileNotFoundError):
            (chunk_dir / f"{k:06d}{suffix}").unlink()
    raise LvcgError(
        f"{chunk_dir / f'{k:06d}.npy'}: does not match its marker (shape {block.shape}); "
        "it was removed: run the same command again to prepare it anew"
    )


def _verify(target: Path, chunk_dir: Path, markers: list[dict], n_written: int, n: int, manifest) -> None:
    """Checks run before a cache is marked complete: counts, no unwritten chunk, rows where they belong.

    Cheap by design (a stat, the array header, and two rows per chunk read back), so it adds
    nothing noticeable to a run; a failure leaves the cache unmarked, i.e. not trusted by readers.
    """
    problems = []
    signals = np.load(target / cache_mod.SIGNALS_FILE, mmap_mode="r")
    if signals.shape != (n_written, 12, n) or signals.dtype != np.float16:
        problems.append(
            f"signals.npy holds {signals.dtype} {signals.shape}, expected float16 ({n_written}, 12, {n})"
        )
    if len(manifest) != n_written:
        problems.append(f"manifest has {len(manifest)} rows for {n_written} records")
    left = sorted(p.name for p in chunk_dir.glob("*.npy"))
    if left:
        problems.append(f"chunk file(s) {', '.join(left[:3])} were never copied")
    offset = 0
    for k, marker in enumerate(markers):
        want, m = marker.get("row_crc32"), len(marker["written"])
        if want is not None and m and not problems:
            for local in sorted({0, m - 1}):
                if zlib.crc32(np.ascontiguousarray(signals[offset + local], "<f2").tobytes()) != want[local]:
                    problems.append(f"row {offset + local} (chunk {k}) does not hold what was prepared")
                    break
        offset += m
    del signals
    if problems:
        raise LvcgError(
            f"{target}: not marked complete, verification failed: {problems[0]}; prepare it again with --force"
        )


def _assemble(
    target: Path,
    records: pd.DataFrame,
    plan: Plan,
    chunk_dir: Path,
    n_chunks: int,
    settings,
    result,
    shard,
    source: dict[str, Any],
):
    """Copy finished chunks into one memmap (resumably), verify, then write the tables and meta.json last."""
    unwritten = [k for k in range(n_chunks) if not (chunk_dir / f"{k:06d}.json").is_file()]
    if unwritten:
        raise LvcgError(
            f"{target}: chunk(s) {', '.join(map(str, unwritten[:5]))} of {n_chunks} were never written; "
            "run the same command again to prepare them"
        )
    markers = [json.loads((chunk_dir / f"{k:06d}.json").read_text()) for k in range(n_chunks)]
    chunk_size = json.loads((target / PARTIAL / "job.json").read_text())["chunk_size"]
    rows, flags, present, skipped_rows = [], [], [], []
    for k, marker in enumerate(markers):
        base = k * chunk_size
        rows.extend(base + local for local in marker["written"])
        flags.extend(marker["flags"])
        present.extend(marker["present"])
        skipped_rows.extend((base + local, reason) for local, reason in marker["skipped"])
    n_written = len(rows)
    n = settings.data.n_samples

    state_path = target / PARTIAL / "assembly.json"
    partial_signals = target / PARTIAL / cache_mod.SIGNALS_FILE
    final_signals = target / cache_mod.SIGNALS_FILE
    copied = json.loads(state_path.read_text())["copied"] if state_path.is_file() else 0
    if copied < n_chunks or not final_signals.is_file():
        try:
            _copy_chunks(partial_signals, final_signals, chunk_dir, markers, copied, state_path, n_written, n)
        except OSError as exc:
            raise output_error(partial_signals, exc) from None

    written = records.iloc[rows].reset_index(drop=True)
    label_columns = [c for c in written.columns if ":" in c and not c.startswith("split:")]
    text_columns = [c for c in written.columns if c not in label_columns and c != "path"]
    manifest = written[text_columns].copy()
    manifest.insert(0, "id", manifest.pop("id"))
    manifest.insert(1, "source", manifest.pop("source"))
    manifest.insert(2, "split", manifest.pop("split").fillna("").astype(str))
    manifest.insert(3, "flags", flags)
    manifest.insert(4, "present", present)
    if label_columns:
        labels = written[label_columns].astype(np.int8).set_index(manifest.index)
        manifest = pd.concat([manifest, labels], axis=1)
    with atomic_path(target / cache_mod.MANIFEST_FILE) as tmp:
        manifest.to_csv(tmp, index=False)

    extras = [c for c in ("subject_id", "study_id", "person_id", "patient_id") if c in written.columns]
    columns = [written["id"].astype(str).tolist(), [record_path_without_suffix(p) for p in written["path"]]]
    columns += [written[c].fillna("").astype(str).tolist() for c in extras]
    lines = []
    for values in zip(*columns, strict=True):
        entry = {"id": values[0], "ecg_path": values[1]}
        entry.update({key: value for key, value in zip(extras, values[2:], strict=True) if value})
        lines.append(json.dumps(entry))
    write_text_atomic(target / cache_mod.JSONL_FILE, "\n".join(lines) + ("\n" if lines else ""))

    skipped = pd.DataFrame(
        {
            "id": [str(records["id"].iat[i]) for i, _ in skipped_rows],
            "path": [str(records["path"].iat[i]) for i, _ in skipped_rows],
            "reason": [reason for _, reason in skipped_rows],
        }
    )
    with atomic_path(target / cache_mod.SKIPPED_FILE) as tmp:
        skipped.to_csv(tmp, sep="\t", index=False)

    _verify(target, chunk_dir, markers, n_written, n, manifest)
    meta = {
        "format": cache_mod.FORMAT,
        "dataset": plan.dataset,
        "root": source["root"],
        "prepare_settings": source["prepare_settings"],
        "fs": float(settings.data.fs),
        "n_samples": int(n),
        "n": int(n_written),
        "n_planned": int(len(records)),
        "n_skipped": len(skipped_rows),
        "shard": list(shard) if shard else None,
        "tasks": plan.tasks,
        "default_task": plan.default_task,
        # as planned (job.json): the data settings plus a --lead-map when one was given
        "preprocessing": json.loads((target / PARTIAL / "job.json").read_text())["preprocessing"],
        "info": plan.info,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "complete": True,
    }
    write_text_atomic(target / cache_mod.META_FILE, json.dumps(meta, indent=1))
    shutil.rmtree(target / PARTIAL, ignore_errors=True)
    result.n_written = n_written
    result.skipped = Counter(reason_category(reason) for _, reason in skipped_rows)


__all__ = ["PrepareResult", "parse_shard", "prepare_dataset", "process_record", "run_chunk", "shard_slice"]
