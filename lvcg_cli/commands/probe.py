"""``lvcg probe``: linear probes on frozen embeddings (the published protocol), with baselines."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lvcg_cli import console, runs
from lvcg_cli.commands._common import (
    OVERRIDABLE,
    CheckpointOption,
    ConfigOption,
    DeviceOption,
    JsonOption,
    PresetOption,
    QuietOption,
    format_score,
    progress_bar,
    settings_from,
    unset_option,
)
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import ProbeSettings

CSV_NAME = "probing_results.csv"
RUN_PREFIX = "probe-"
PROBE_TASKS: dict[str, tuple[str, ...]] = {
    "sim": ("sim",),
    "ptbxl": ("super", "sub", "form", "rhythm", "diag", "all"),
    "cpsc2018": ("dx",),
    "chapman": ("lvcg", "melp", "dx"),
    "ai-readi": ("cardio_relevant",),
    "ludb": ("axis", "rhythm", "hypertrophy"),
}
"""Each probe-able data set's tasks, its default first (what ``prepare-data`` writes; tests check it)."""
TASKS_HELP = "; ".join(f"{name}: {', '.join(tasks)}" for name, tasks in PROBE_TASKS.items())
_DEFAULTS = ProbeSettings()


def _claim_run_dir(settings) -> tuple[Path, bool]:
    """The run folder (``--out``, ``--run.run_id`` or a new unique ``runs/probe-...``); returns (path, created)."""
    runs.check_one_location(settings.run.run_id, settings.run.out)
    hint = "choose another --out (collect the rows of several runs in one file with --csv FILE)"
    if settings.run.out is not None:
        return runs.claim_named(settings.run.out, hint)
    if settings.run.run_id is not None:
        return runs.claim_named(Path(settings.run.runs_dir) / settings.run.run_id, hint)
    return runs.claim_new(settings.run.runs_dir, prefix=RUN_PREFIX), True


READS = ("data", "model", "engine", "probe", "paths", "run")
"""Settings sections ``lvcg probe`` reads."""


def probe(
    ctx: typer.Context,
    dataset: str = unset_option(
        "--dataset",
        help=f"Data set: {', '.join(PROBE_TASKS)}, or a prepared folder (default: {_DEFAULTS.dataset}).",
    ),
    task: str = unset_option(
        "--task", help=f"Task of the data set (default: its first one here): {TASKS_HELP}."
    ),
    ratio: float = unset_option(
        "--ratio", help=f"Fraction of the training split with labels (default: {_DEFAULTS.ratio:g})."
    ),
    seed: list[int] = unset_option(
        "--seed",
        help="Seed of the label subset; repeat for mean +/- std "
        f"(default: {', '.join(str(s) for s in _DEFAULTS.seeds)}).",
    ),
    model: str = unset_option("--model", help=f"lvcg, random-init or features (default: {_DEFAULTS.model})."),
    baselines: bool = typer.Option(
        False, "--baselines", help="Also probe random-init and features (same table)."
    ),
    run_all: bool = typer.Option(
        False, "--all", help="The paper's table; data sets not prepared are listed as skipped."
    ),
    cv: int = unset_option(
        "--cv",
        help="K-fold cross-validation over every labelled record, repeated --probe.cv_repeats times "
        "(default 5), with a bootstrap interval: for small data sets such as LUDB.",
    ),
    visible: str = unset_option(
        "--visible", help="Embed from these leads only, e.g. I,II,V2 (default: every lead a record has)."
    ),
    checkpoint: Path = CheckpointOption,
    out: Path = unset_option(
        "--out", help=f"Run folder, new or empty (default: a new runs/{RUN_PREFIX}YYYYmmdd-HHMMSS-XXXX)."
    ),
    csv: Path = unset_option(
        "--csv",
        help=f"Append rows to this CSV, e.g. one shared by several runs (default: RUN_FOLDER/{CSV_NAME}).",
    ),
    device: str = DeviceOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
    preset: str = PresetOption,
    config: list[Path] = ConfigOption,
) -> None:
    """Linear probe of frozen embeddings: logistic regression on a labelled fraction of train.

    C is chosen on validation macro AUROC; test macro AUROC, macro AUPRC and macro F1 (thresholds
    tuned on validation) are reported and appended to a CSV. Embeddings are cached per checkpoint
    and data set.

    Examples:

        lvcg probe                                  # the built-in simulated set, works anywhere

        lvcg probe --dataset ptbxl --ratio 0.1

        lvcg probe --dataset ptbxl --task super --ratio 0.1 --seed 1 --seed 2 --seed 3 --baselines

        lvcg probe --all --baselines --checkpoint runs/x/final.pt --json

        lvcg probe --dataset ludb --task axis --cv 5 --baselines

        lvcg probe --dataset ptbxl --visible I,II,V2 --probe.blocks morphology,dynamics
    """
    from lvcg_cli.downstream.probe import ProbeRunner, probe_entries, probe_models

    console.set_quiet(quiet)
    explicit = {
        "probe.dataset": dataset,
        "probe.task": task,
        "probe.ratio": ratio,
        "probe.model": model,
        "probe.cv_folds": cv,
        "probe.visible": visible,
        "engine.device": device,
        "run.out": str(out) if out is not None else None,
    }
    if seed:
        explicit["probe.seeds"] = ",".join(str(s) for s in seed)
    settings = settings_from(ctx, reads=READS, preset=preset, config=config, explicit=explicit)
    probe_settings = settings.probe
    if run_all and (dataset is not None or task is not None):
        raise LvcgError("--all runs the whole table; leave out --dataset and --task")
    models = probe_models(probe_settings.model, baselines)
    entries = probe_entries(probe_settings, run_all)

    from lvcg_cli.engine.device import select_device

    torch_device = str(select_device(settings.engine.device))
    run_dir, created = _claim_run_dir(settings)
    csv_path = csv if csv is not None else run_dir / CSV_NAME
    try:
        with progress_bar() as bar:
            tasks: dict[str, int] = {}

            def on_progress(label: str, n: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(f"embedding {label}", total=total)
                bar.advance(tasks[label], n)

            runner = ProbeRunner(
                settings,
                checkpoint=checkpoint,
                device=torch_device,
                csv_path=csv_path,
                on_progress=on_progress,
                on_info=console.info,
            )
            report = runner.run(
                entries,
                models,
                ratio=probe_settings.ratio,
                seeds=probe_settings.seeds,
                strict=not run_all,
            )
    except BaseException as exc:
        runs.abandon(run_dir, runs.failure_reason(exc), created=created)
        raise
    if report.rows:
        from lvcg_cli.atomic import write_text_atomic

        write_text_atomic(run_dir / "config.yaml", settings.to_yaml())
        console.info(f"results appended to {csv_path}")
    else:
        runs.abandon(run_dir, "nothing was probed", created=created)
    for skip in report.skipped:
        console.warn(f"skipped {skip['dataset']}/{skip['task']}: {skip['reason']}")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "rows": report.rows,
                    "summaries": report.summaries,
                    "skipped": report.skipped,
                    "csv": str(csv_path),
                },
                indent=2,
                default=lambda v: None,
            )
        )
    else:
        _print_table(report, probe_settings.ratio)
    if not report.rows and not report.skipped:
        raise LvcgError("nothing was probed")


def register(app: typer.Typer) -> None:
    app.command("probe", context_settings=OVERRIDABLE)(probe)


def _print_table(report, ratio: float) -> None:
    """The results as a rich table on stdout (``--json`` prints them as JSON instead)."""
    from rich.table import Table

    if not report.summaries and not report.skipped:
        return
    table = Table(title=f"linear probe, {ratio:g} of the training labels (test split)", title_justify="left")
    for column in ("data set", "task", "model", "seeds", "n_train", "macro AUROC", "macro AUPRC", "macro F1"):
        table.add_column(column, justify="left" if column in {"data set", "task", "model"} else "right")
    for s in report.summaries:
        n_train = [
            r["n_train"]
            for r in report.rows
            if (r["dataset"], r["task"], r["model"]) == (s["dataset"], s["task"], s["model"])
        ]
        spread = s["n_seeds"] > 1

        def cell(metric: str, s=s, spread=spread) -> str:
            mean = format_score(s[f"{metric}_mean"])
            text = f"{mean} ± {format_score(s[f'{metric}_std'])}" if spread else mean
            if (
                metric == "macro_auroc"
                and f"{metric}_ci_low" in s
                and format_score(s[f"{metric}_ci_low"]) != "-"
            ):
                text += (
                    f" [{format_score(s[f'{metric}_ci_low'], 2)}, {format_score(s[f'{metric}_ci_high'], 2)}]"
                )
            return text

        table.add_row(
            s["dataset"],
            s["task"],
            s["model"],
            str(s["n_seeds"]),
            str(n_train[0] if n_train else "-"),
            cell("macro_auroc"),
            cell("macro_auprc"),
            cell("macro_f1"),
        )
    for skip in report.skipped:
        table.add_row(skip["dataset"], skip["task"], skip["model"], "-", "-", "skipped", "", "")
    console.out_console.print(table)
