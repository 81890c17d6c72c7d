"""``lvcg reconstruct``: all 12 leads from a few, with the model or the physics/linear baselines."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer

from lvcg_cli import console
from lvcg_cli.commands._common import (
    OVERRIDABLE,
    CheckpointOption,
    ConfigOption,
    DeviceOption,
    JsonOption,
    LeadMapOption,
    PresetOption,
    QuietOption,
    format_score,
    lead_map_from,
    progress_bar,
    settings_from,
    split_inputs,
    unset_option,
    visible_from,
)
from lvcg_cli.errors import LvcgError, RecordError


def _record_table(rec) -> object:
    from rich.table import Table

    table = Table(title=f"{rec.id}: {rec.method} from {', '.join(_names(rec.visible))}", title_justify="left")
    numbers = ("r", "RMSE (mV)", "p-p ratio")
    for column in ("lead", *numbers, ""):
        table.add_column(column, justify="right" if column in numbers else "left")
    for name, score in rec.scores.items():
        note = "derived" if rec.derived[_index(name)] else ""
        table.add_row(
            name, format_score(score.r), format_score(score.rmse, 4), format_score(score.ptp_ratio, 2), note
        )
    hidden = [v for k, v in rec.scores.items() if not rec.derived[_index(k)]]
    if hidden:
        table.add_row(
            "mean",
            format_score(_nanmean([v.r for v in hidden])),
            format_score(_nanmean([v.rmse for v in hidden]), 4),
            format_score(_nanmean([v.ptp_ratio for v in hidden]), 2),
            "(not derived)",
        )
    table.caption = "p-p ratio = peak-to-peak reconstructed / original"
    table.caption_justify = "left"
    return table


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _index(name: str) -> int:
    from lvcg_cli.signals.leads import CANONICAL_LEADS

    return CANONICAL_LEADS.index(name)


def _names(mask) -> list[str]:
    from lvcg_cli.signals.leads import lead_names

    return lead_names(mask)


def _record_json(rec) -> dict:
    return {
        "id": rec.id,
        "path": rec.path,
        "method": rec.method,
        "fs": rec.fs,
        "n_samples": int(rec.signal.shape[-1]),
        "visible": _names(rec.visible),
        "derived": _names(rec.derived),
        "warnings": rec.warnings,
        "leads": {
            k: {"r": _num(v.r), "rmse_mv": _num(v.rmse), "ptp_ratio": _num(v.ptp_ratio)}
            for k, v in rec.scores.items()
        },
    }


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


READS = ("data", "model", "engine", "paths")
"""Settings sections ``lvcg reconstruct`` reads (``model.lift_eps`` for the physics method)."""


def reconstruct(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(
        None,
        help="Record files (WFDB, CPSC .mat, DICOM, MUSE/aECG/Philips XML, SCP-ECG, EDF), folders or globs.",
        show_default=False,
    ),
    visible: str = unset_option(
        "--visible", help="Leads given to the method, e.g. I,II,V2 (default: every lead the record has)."
    ),
    lead_map: str = LeadMapOption,
    output: Path = unset_option(
        "--output",
        "-o",
        help="Write the 12 leads: .npy, .csv or .hea (one record), .npz (any number, keyed by id).",
    ),
    plot: Path = unset_option(
        "--plot",
        help="12-lead ECG at paper scale (3x4 + lead-II rhythm strip, 25 mm/s, 10 mm/mV; PNG/PDF/SVG), "
        "one record.",
    ),
    vcg_plot: Path = unset_option(
        "--vcg-plot",
        help="VCG figure: QRS and T loops of the median beat in three planes (PNG/PDF/SVG), one record.",
    ),
    method: str = typer.Option(
        "lvcg", "--method", help="lvcg (the model), physics (lift/project) or linear (regression)."
    ),
    geometry: str = typer.Option(
        "dower", "--geometry", help="Lead field of the physics method: dower or ideal."
    ),
    data: str = unset_option("--data", help="Score a prepared data set split instead of files."),
    report: bool = typer.Option(False, "--report", help="With --data: model and baselines side by side."),
    split: str = typer.Option("test", "--split", help="With --data: the split to score."),
    checkpoint: Path = CheckpointOption,
    device: str = DeviceOption,
    batch_size: int = typer.Option(32, "--batch-size", help="Windows per model call."),
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    preset: str = PresetOption,
    config: list[Path] = ConfigOption,
) -> None:
    """Reconstruct all 12 leads from the visible ones, at the record's own rate and length.

    Visible leads are passed through unchanged; hidden leads are the method's estimate
    (the model's is band-limited to its 0.67-40 Hz input band). When the record has the
    hidden leads, Pearson r, RMSE (mV) and the peak-to-peak ratio (reconstructed / original)
    per lead are printed: both the reference and the reconstruction are band-passed with the
    model's filter first.

    Examples:

        lvcg reconstruct 00001_hr.hea --visible I,II,V2 -o full.npy --plot full.png

        lvcg reconstruct records/ --visible I --method linear -o all.npz --json

        lvcg reconstruct --data ptbxl --visible I,II,V2 --report --split test
    """
    from lvcg_cli.downstream.reconstruct import METHODS, RECON_FORMATS

    console.set_quiet(quiet)
    inputs, overrides = split_inputs(inputs)
    if method not in METHODS:
        raise LvcgError(f"--method: must be one of {', '.join(METHODS)} (got {method!r})")
    if geometry not in ("dower", "ideal"):
        raise LvcgError(f"--geometry: must be dower or ideal (got {geometry!r})")
    if output is not None and output.suffix.lower() not in RECON_FORMATS:
        raise LvcgError(
            f"{output}: unknown output format {output.suffix or '(none)'!r}; use {', '.join(RECON_FORMATS)}"
        )
    for figure in (plot, vcg_plot):
        if figure is not None:
            from lvcg_cli.plots import require_matplotlib

            require_matplotlib()
    explicit = {"engine.device": device}
    settings = settings_from(
        ctx, reads=READS, preset=preset, config=config, explicit=explicit, overrides=overrides
    )
    mask = visible_from(visible)
    leads = lead_map_from(lead_map)
    if data is not None:
        if lead_map is not None:
            raise LvcgError("--lead-map applies to record files, not to a prepared --data set")
        if inputs:
            raise LvcgError("give either record files or --data NAME, not both")
        if mask is None:
            raise LvcgError("--data needs --visible (which leads the methods may see)")
        job = SplitJob(data, split, mask, method, report, geometry, checkpoint, batch_size)
        _score_split(settings, job, as_json)
        return
    if not inputs:
        raise LvcgError("nothing to reconstruct: give record files, folders or globs, or --data NAME")
    job = FilesJob(inputs, mask, method, geometry, checkpoint, batch_size, leads)
    _reconstruct_files(settings, job, FilesOutput(output, plot, vcg_plot, as_json))


def register(app: typer.Typer) -> None:
    app.command("reconstruct", context_settings=OVERRIDABLE)(reconstruct)


@dataclass
class FilesJob:
    """What to reconstruct from record files, and how."""

    inputs: list[str]
    visible: np.ndarray | None
    method: str
    geometry: str
    checkpoint: Path | None
    batch_size: int
    lead_map: dict[str, str] | None


@dataclass
class FilesOutput:
    """Where the reconstructions of files go."""

    output: Path | None
    plot: Path | None
    vcg_plot: Path | None
    as_json: bool


@dataclass
class SplitJob:
    """A prepared split scored by one method, or by every method (``report``)."""

    dataset: str
    split: str
    visible: np.ndarray
    method: str
    report: bool
    geometry: str
    checkpoint: Path | None
    batch_size: int


def _reconstruct_files(settings, job: FilesJob, out: FilesOutput) -> None:
    """Reconstruct record files (skipping bad ones when there are several), write, plot and print."""
    from lvcg_cli.downstream.embed import expand_inputs
    from lvcg_cli.downstream.reconstruct import open_reconstructor, reconstruct_files, save_reconstructions

    paths, missing = expand_inputs(job.inputs, warn=console.warn)
    for path, problem in missing:
        console.warn(f"skipping {path}: {problem}")
    several = len(paths) + len(missing) > 1 or any(Path(i).is_dir() or "*" in i for i in job.inputs)
    if not paths:
        if len(missing) == 1:
            raise RecordError(*missing[0])
        raise LvcgError(f"no record to reconstruct ({len(missing)} input(s) not found)")
    if (out.plot is not None or out.vcg_plot is not None) and len(paths) > 1:
        raise LvcgError("--plot and --vcg-plot take one record (got several)")
    if out.output is not None and out.output.suffix.lower() != ".npz" and len(paths) > 1:
        raise LvcgError(f"{out.output}: several records need -o out.npz")
    engine, _ = open_reconstructor(
        settings, job.method, geometry=job.geometry, checkpoint=job.checkpoint, batch_size=job.batch_size
    )
    results, skipped = reconstruct_files(
        engine, paths, job.visible, lead_map=job.lead_map, skip_bad=several, warn=console.warn
    )
    skipped = [*missing, *skipped]
    if not results:
        raise LvcgError(f"no record could be reconstructed ({len(skipped)} skipped)")
    if out.output is not None:
        written = save_reconstructions(out.output, results)
        console.info(f"wrote {', '.join(str(p) for p in written)}")
    if out.plot is not None:
        from lvcg_cli.plots import plot_reconstruction

        plot_reconstruction(results[0], out.plot, band=tuple(engine.data.bandpass))
        console.info(f"wrote {out.plot}")
    if out.vcg_plot is not None:
        from lvcg_cli.plots import plot_vcg

        rec = results[0]
        if rec.vcg is None:
            raise LvcgError("--vcg-plot needs a 3-D field: use --method lvcg or physics")
        label = "latent VCG (model)" if rec.method == "lvcg" else f"lifted VCG ({job.geometry} lead field)"
        plot_vcg(rec.vcg, rec.vcg_fs, out.vcg_plot, title=f"{rec.id}: {label}")
        console.info(f"wrote {out.vcg_plot}")
    if out.as_json:
        payload = [_record_json(r) for r in results]
        typer.echo(json.dumps(payload[0] if len(payload) == 1 and not several else payload, indent=2))
        return
    for rec in results:
        if rec.scores:
            console.out_console.print(_record_table(rec))
        else:
            console.info(f"{rec.id}: no hidden lead to score against (the record lacks them)")


def _score_split(settings, job: SplitJob, as_json: bool) -> None:
    """Scores over a prepared split: the chosen method, or with --report the model and every baseline."""
    from lvcg_cli.downstream.reconstruct_report import report_engines, score_split

    engines, used = report_engines(
        settings,
        method=job.method,
        everything=job.report,
        geometry=job.geometry,
        checkpoint=job.checkpoint,
        batch_size=job.batch_size,
        warn=console.warn,
    )
    with progress_bar() as bar:
        task = bar.add_task(f"scoring {job.dataset}/{job.split}")
        result = score_split(
            job.dataset, used, job.split, job.visible, engines, progress=lambda n: bar.advance(task, n)
        )
    if as_json:
        typer.echo(json.dumps(result.payload(), indent=2, default=_num))
        return
    from rich.table import Table

    hidden = result.scored_leads
    table = Table(
        title=f"{job.dataset}/{job.split}: {result.n_records} records, visible {', '.join(_names(job.visible))} "
        "(mean r / mean RMSE mV / median peak-to-peak ratio per hidden independent lead)",
        title_justify="left",
    )
    table.add_column("lead")
    for key in result.scores:
        table.add_column(key, justify="right")
    per = {key: s.per_lead() for key, s in result.scores.items()}
    for lead in hidden:
        table.add_row(lead, *[_report_cell(per[k][lead]) if lead in per[k] else "-" for k in result.scores])
    overall = {k: s.overall(hidden) for k, s in result.scores.items()}
    table.add_row("mean", *[_report_cell(overall[k]) for k in result.scores])
    console.out_console.print(table)


def _report_cell(figures: dict) -> str:
    """``r / RMSE / peak-to-peak ratio`` of one method on one lead (or overall)."""
    return (
        f"{format_score(figures['r_mean'])} / {format_score(figures['rmse_mean'], 3)}"
        f" / {format_score(figures.get('ptp_ratio_median'), 2)}"
    )
