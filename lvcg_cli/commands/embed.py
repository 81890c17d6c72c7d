"""``lvcg embed``: frozen embeddings of records, as .npy on stdout or a file."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from lvcg_cli import console
from lvcg_cli.commands._common import (
    OVERRIDABLE,
    CheckpointOption,
    ConfigOption,
    DeviceOption,
    LeadMapOption,
    PresetOption,
    QuietOption,
    VisibleOption,
    lead_map_from,
    progress_bar,
    settings_from,
    split_inputs,
    unset_option,
    visible_from,
)
from lvcg_cli.errors import LvcgError, RecordError

READS = ("data", "model", "engine", "paths")
"""Settings sections ``lvcg embed`` reads (the checkpoint fixes model and input, data policies may change)."""


def embed(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        None,
        help="Record files (WFDB .hea, CPSC .mat, DICOM, MUSE/aECG/Philips XML, SCP-ECG, EDF), "
        "folders (searched recursively) or globs.",
        show_default=False,
    ),
    output: Path = unset_option(
        "--output", "-o", help="Write to FILE: .npy, .npz (with record ids) or .parquet."
    ),
    data: str = unset_option("--data", help="Embed a prepared data set (name or folder) instead of files."),
    split: str = unset_option("--split", help="With --data: only this split (train, val or test)."),
    visible: str = VisibleOption,
    lead_map: str = LeadMapOption,
    batch_size: int = typer.Option(64, "--batch-size", help="Windows per model call."),
    workers: int = typer.Option(0, "--workers", help="Reader threads (0: up to 4, one per core)."),
    checkpoint: Path = CheckpointOption,
    device: str = DeviceOption,
    force: bool = typer.Option(
        False, "--force", "-f", help="Write binary .npy to stdout even if it is a terminal."
    ),
    quiet: bool = QuietOption,
    preset: str = PresetOption,
    config: list[Path] = ConfigOption,
) -> None:
    """Embed records with a pretrained model: one vector per record.

    Writes a .npy array to stdout ((D,) for one record file, (N, D) for several, in input
    order), or to -o FILE (.npy, .npz or .parquet; .npz and .parquet keep the record ids).
    Records longer than the model window are embedded window by window and averaged;
    unreadable records are skipped with a warning (exit code 2 only if none could be read).
    The checkpoint fixes the model, its rate, band and window (--data.fs and the like are
    refused); data policies such as --data.max_nan_gap_s apply.

    Examples:

        lvcg embed 00001_hr.hea > emb.npy

        lvcg embed records/ "more/*.hea" -o emb.npz --visible I,II,V2

        lvcg embed study.dcm muse.xml ecg.scp recording.edf -o clinical.npz

        lvcg embed --data ptbxl --split test -o ptbxl_test.parquet
    """
    from lvcg_cli.downstream.embed import (
        NONFINITE_EMBEDDING,
        check_finite_rows,
        check_output_suffix,
        embed_prepared,
        expand_inputs,
        npy_bytes,
        open_embedder,
        save_embeddings,
    )
    from lvcg_cli.engine.device import describe, set_inference_threads

    console.set_quiet(quiet)
    inputs, overrides = split_inputs(inputs)
    if output is not None:
        check_output_suffix(output)
    elif console.stdout_is_terminal() and not force:
        raise LvcgError(
            "refusing to write binary .npy data to a terminal; redirect it (> out.npy), use -o FILE, or -f to force"
        )
    if not inputs and data is None:
        raise LvcgError("nothing to embed: give record files, folders or globs, or --data NAME")
    if inputs and data is not None:
        raise LvcgError("give either record files or --data NAME, not both")
    explicit = {"engine.device": device}
    settings = settings_from(
        ctx, reads=READS, preset=preset, config=config, explicit=explicit, overrides=overrides
    )
    mask = visible_from(visible)
    leads = lead_map_from(lead_map)

    started = time.perf_counter()
    paths, missing = ([], []) if data is not None else expand_inputs(inputs, warn=console.warn)
    for path, problem in missing:
        console.warn(f"skipping {path}: {problem}")
    if data is None and not paths:
        if len(missing) == 1:
            raise RecordError(*missing[0])
        raise LvcgError(f"no record could be embedded ({len(missing)} input(s) not found)")
    embedder, used = open_embedder(
        settings, checkpoint, visible=mask, batch_size=batch_size, workers=workers or None, lead_map=leads
    )
    console.info(f"model {used.model.name} ({embedder.dim}-d) on {describe(embedder.device)}")
    set_inference_threads(embedder.device, busy_threads=embedder.workers)
    with progress_bar() as bar:
        if data is not None:
            from lvcg_cli.datasets.prepared import open_prepared_data

            prepared = open_prepared_data(data, used)
            task = bar.add_task(f"embedding {data}", total=len(prepared))
            result = embed_prepared(embedder, prepared, split, progress=lambda n: bar.advance(task, n))
        else:
            task = bar.add_task("embedding", total=len(paths))

            def tick(item) -> None:
                bar.advance(task)
                for line in (item.warning or "").splitlines():
                    console.warn(line)
                if item.error is not None and len(paths) > 1:  # alone, it becomes the error itself
                    console.warn(f"skipping {item.error.path}: {item.error.problem}")

            result = embedder.embed_paths(paths, on_record=tick)
    for path, problem in result.skipped:
        if problem == NONFINITE_EMBEDDING and (data is not None or len(paths) > 1):
            console.warn(f"skipping {path}: {problem}")
    ids, vectors, skipped = result.ids, result.embeddings, result.skipped + missing
    if len(ids) == 0:
        if len(skipped) == 1:
            raise RecordError(*skipped[0])
        raise LvcgError(f"no record could be embedded ({len(skipped)} skipped)")
    squeeze = data is None and len(inputs) == 1 and Path(inputs[0]).is_file() and len(ids) == 1
    if output is not None:
        save_embeddings(output, ids, vectors, squeeze=squeeze, names=embedder.model.embedding_names)
    else:
        array = vectors[0] if squeeze else vectors
        check_finite_rows(vectors, ids, "stdout")
        console.write_stdout_bytes(npy_bytes(array))  # all of it, or an error
    elapsed = time.perf_counter() - started
    where = f" to {output}" if output is not None else ""
    console.info(
        f"embedded {len(ids)} record(s) -> {vectors.shape[1]}-d{where} in {elapsed:.1f} s "
        f"({len(ids) / max(elapsed, 1e-9):.0f} records/s)" + (f"; skipped {len(skipped)}" if skipped else "")
    )


def register(app: typer.Typer) -> None:
    app.command("embed", context_settings=OVERRIDABLE)(embed)
