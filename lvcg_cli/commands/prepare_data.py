"""``lvcg prepare-data NAME``: a user's release -> a packed, memory-mapped cache (see datasets/prepare.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lvcg_cli.commands._common import (
    OVERRIDABLE,
    ConfigOption,
    JsonOption,
    LeadMapOption,
    QuietOption,
    lead_map_from,
    settings_from,
    unset_option,
)
from lvcg_cli.console import err_console, info, is_quiet, set_quiet

NAMES = "mimic, ptbxl, cpsc2018, chapman, ai-readi, ludb, folder"

HELP = f"""Prepare a data set release for training and probing: read every record, repair NaN gaps,
resample to --data.fs, band-pass, cut --data.window_s windows, and pack them (float16 mV) with a
manifest of labels and splits into the cache folder (or --out).

NAME is one of: {NAMES}.

The release root comes from --root, else from the setting --prepare.NAME_root, e.g. --prepare.mimic_root
(also the environment variable LVCG_PREPARE__MIMIC_ROOT, or a --config YAML). Records that cannot be read
are skipped and listed in skipped.tsv; the rest is written. An interrupted run continues where
it stopped when run again. A finished cache is reused only if it was made from the same release
root and settings (else: prepare into another --out, or replace it with --force).

Examples:

    lvcg prepare-data ptbxl --root ~/data/ptb-xl-1.0.3

    lvcg prepare-data mimic --root /data/mimic-iv-ecg-1.0 --workers 16

    LVCG_PREPARE__MIMIC_ROOT=/data/mimic-iv-ecg lvcg prepare-data mimic --shard 3/64

    lvcg prepare-data ptbxl --prepare.split strat_fold --prepare.ptbxl_rate 100 --data.fs 100

    lvcg prepare-data folder --root ./my_ecgs --out ./prepared/mine

    lvcg prepare-data folder --root ./hospital_export --lead-map "ECG1=I,ECG2=II"

A folder may hold WFDB and CPSC records and the formats hospitals export (DICOM, GE MUSE XML,
HL7 aECG, SCP-ECG, Philips XML, EDF), recognised by content.

See docs/DATA_PREPARATION.md for where to get each release and what comes out.
"""


READS = ("data", "prepare", "paths")
"""Settings sections ``lvcg prepare-data`` reads."""


def prepare_data(
    ctx: typer.Context,
    name: str = typer.Argument(..., help=f"Data set: {NAMES}.", show_default=False),
    root: Path = unset_option(
        "--root", help="Release root folder (default: --prepare.NAME_root, e.g. --prepare.ptbxl_root)."
    ),
    out: Path = unset_option(
        "--out", help="Output folder (default: CACHE/prepared/NAME; see --paths.cache_dir, LVCG_CACHE_DIR)."
    ),
    workers: int = unset_option(
        "--workers", "-j", help="Worker processes; 0 = one per CPU core (default: --prepare.workers).", min=0
    ),
    shard: str = unset_option(
        "--shard",
        help="Prepare only slice i of n (0 <= i < n), into OUT/shard-i-of-n/, e.g. one per cluster job "
        "(--shard $SLURM_ARRAY_TASK_ID/64); all shards are used together once finished.",
    ),
    force: bool = typer.Option(False, "--force", help="Prepare again even if a finished cache exists."),
    lead_map: str = LeadMapOption,
    as_json: bool = JsonOption,
    config: list[Path] = ConfigOption,
    quiet: bool = QuietOption,
) -> None:
    from lvcg_cli.datasets.prepare import parse_shard, prepare_dataset
    from lvcg_cli.datasets.registry import module_for

    if quiet:
        set_quiet(True)
    module = module_for(name)
    shard_spec = parse_shard(shard)
    leads = lead_map_from(lead_map)
    explicit = {"prepare.workers": workers} if workers is not None else None
    settings = settings_from(ctx, reads=READS, config=config, explicit=explicit)
    job = {
        "root": root,
        "out": out,
        "workers": workers,
        "shard": shard_spec,
        "force": force,
        "lead_map": leads,
    }
    result = prepare_dataset(module.NAME, settings, **job)
    if result.reused:
        info(
            f"{module.NAME}: already prepared at {result.path} from the same release and settings "
            f"({result.n_written} records); reusing it (add --force to prepare again)"
        )
    else:
        _summary(result)
    if as_json:
        typer.echo(json.dumps(_result_json(result), indent=2))
    else:
        typer.echo(str(result.path))


def register(app: typer.Typer) -> None:
    app.command("prepare-data", context_settings=OVERRIDABLE, help=HELP)(prepare_data)


def _result_json(result) -> dict:
    """What ``--json`` prints: where the cache is and what went into it."""
    return {
        "dataset": result.dataset,
        "path": str(result.path),
        "reused": result.reused,
        "n_planned": result.n_planned,
        "n_written": result.n_written,
        "n_skipped": result.n_skipped,
        "skipped": dict(result.skipped.most_common()),
        "skipped_file": str(result.path / "skipped.tsv"),
        "seconds": round(result.seconds, 3),
    }


def _summary(result) -> None:
    """The end-of-run table on stderr: read, skipped by reason, written."""
    if is_quiet():
        return
    from rich.table import Table

    table = Table(title=f"prepare-data {result.dataset}", title_justify="left")
    table.add_column("records", justify="left")
    table.add_column("count", justify="right")
    table.add_row("read", str(result.n_planned))
    for reason, count in result.skipped.most_common():
        table.add_row(f"skipped: {reason}", str(count))
    table.add_row("written", str(result.n_written), style="bold")
    err_console.print(table)
    rate = result.n_planned / result.seconds if result.seconds > 0 else 0.0
    info(f"wrote {result.path} in {result.seconds:.1f} s ({rate:.0f} records/s)")
    if result.n_skipped:
        info(f"{result.n_skipped} skipped records are listed in {result.path / 'skipped.tsv'}")
