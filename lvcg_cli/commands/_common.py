"""Options and helpers shared by every subcommand."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from lvcg_cli import console
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import Settings, check_sections, parse_dotted_args, resolve_settings, scan_args

# Subcommands accept arbitrary ``--section.key VALUE`` tokens after their own options.
OVERRIDABLE = {"allow_extra_args": True, "ignore_unknown_options": True}


def unset_option(*names: str, help: str, **extra: Any) -> Any:
    """An option whose default is "not given" (None): the command or the settings decide."""
    return typer.Option(None, *names, help=help, show_default=False, **extra)


ConfigOption = unset_option(
    "--config", "-c", help="Settings YAML file; repeat to layer several (later wins)."
)
PresetOption = unset_option("--preset", help="Bundled preset: lvcg-tiny or lvcg-base.")
QuietOption = typer.Option(False, "--quiet", "-q", help="Only warnings, errors and results.")
JsonOption = typer.Option(False, "--json", help="Print results as JSON on stdout.")
DeviceOption = unset_option("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto).")


def settings_from(
    ctx: typer.Context,
    *,
    reads: Sequence[str],
    preset: str | None = None,
    config: list[Path] | None = None,
    explicit: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings for a command: defaults < preset < YAML < env < dotted CLI < explicit options.

    ``reads`` names the settings sections the command uses: a ``--section.key`` of another section
    on its command line is refused (it would be dropped without a word), while YAML files and the
    environment may carry every section. ``overrides`` are dotted settings a variadic argument
    swallowed (:func:`split_inputs`); ``explicit`` holds the command's own named options
    (``--device cpu``) as dotted keys, applied last because they were typed on this command line.
    """
    given = {**(overrides or {}), **parse_dotted_args(list(ctx.args))}
    check_sections(given, reads, command_name(ctx))
    given.update({k: v for k, v in (explicit or {}).items() if v is not None})
    return resolve_settings(preset=preset, config_files=config or [], overrides=given, base=base)


def command_name(ctx: typer.Context) -> str:
    """``lvcg embed``, ``lvcg config show``: however the program was started (``python -m lvcg_cli``)."""
    names = []
    while ctx.parent is not None:
        names.append(str(ctx.info_name))
        ctx = ctx.parent
    return " ".join(["lvcg", *reversed(names)])


def split_inputs(tokens: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """Record inputs, and the ``--section.key VALUE`` settings a variadic argument swallowed."""
    scanned = scan_args(list(tokens or []))
    if scanned.options:
        raise LvcgError(f"no such option: {scanned.options[0]}")
    return scanned.positionals, scanned.overrides


CheckpointOption = unset_option(
    "--checkpoint", help="Checkpoint (.pt) to use (default: the bundled lvcg-tiny weights)."
)
VisibleOption = unset_option(
    "--visible", help="Leads the model may see, e.g. I,II,V2 (default: every lead a record has)."
)


def progress_bar(unit: str = "records"):
    """Progress of a data job: a transient live bar on a terminal, plain timestamped lines elsewhere."""
    return console.progress(transient=True, unit=unit)


def visible_from(spec: str | None) -> np.ndarray | None:
    """``--visible I,II,V2`` -> a (12,) mask (None: every present lead)."""
    if spec is None:
        return None
    from lvcg_cli.signals.leads import parse_leads, visible_mask

    return visible_mask(parse_leads(spec))


def format_score(value, digits: int = 3) -> str:
    """A metric for a results table: fixed decimals, or '-' when missing, non-numeric or not finite."""
    if not isinstance(value, numbers.Real) or not math.isfinite(value):  # numpy scalars included
        return "-"
    return f"{value:.{digits}f}"


LeadMapOption = unset_option(
    "--lead-map",
    help="Name channels the reader does not know: OLD=NEW,... with NEW a standard lead or '-' to ignore "
    "the channel, e.g. 'ECG1=I,ECG2=II,Pleth=-'.",
)


def lead_map_from(spec: str | None) -> dict[str, str] | None:
    """Parse --lead-map once (a one-line error for a bad entry) before any file is read."""
    if spec is None:
        return None
    from lvcg_cli.signals.leads import parse_lead_map

    return parse_lead_map(spec)
