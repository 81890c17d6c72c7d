"""Options and helpers shared by every subcommand."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import typer

from lvcg_cli import console
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import Settings, resolve_settings

# Subcommands accept arbitrary ``--section.key VALUE`` tokens after their own options.
OVERRIDABLE = {"allow_extra_args": True, "ignore_unknown_options": True}

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Settings YAML file; repeat to layer several (later wins).",
    show_default=False,
)
PresetOption = typer.Option(
    None, "--preset", help="Bundled preset: lvcg-tiny or lvcg-base.", show_default=False
)
QuietOption = typer.Option(False, "--quiet", "-q", help="Only warnings, errors and results.")
JsonOption = typer.Option(False, "--json", help="Print results as JSON on stdout.")
DeviceOption = typer.Option(
    None, "--device", help="auto | cpu | cuda | cuda:N | mps (default: auto).", show_default=False
)


def settings_from(
    ctx: typer.Context,
    *,
    preset: str | None = None,
    config: list[Path] | None = None,
    explicit: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> Settings:
    """Resolve settings for a command: defaults < preset < YAML < env < dotted CLI < explicit options.

    ``explicit`` holds the command's own named options (``--device cpu``) as dotted keys; they
    are applied last because they were typed on this command line.
    """
    from lvcg_cli.settings import parse_dotted_args

    overrides = parse_dotted_args(list(ctx.args))
    overrides.update({k: v for k, v in (explicit or {}).items() if v is not None})
    return resolve_settings(preset=preset, config_files=config or [], overrides=overrides, base=base)


CheckpointOption = typer.Option(
    None,
    "--checkpoint",
    help="Checkpoint (.pt) to use (default: the bundled lvcg-tiny weights).",
    show_default=False,
)
VisibleOption = typer.Option(
    None,
    "--visible",
    help="Leads the model may see, e.g. I,II,V2 (default: every lead a record has).",
    show_default=False,
)


def split_dotted(tokens: list[str] | None) -> tuple[list[str], list[str]]:
    """Separate record inputs from ``--section.key VALUE`` overrides that a variadic argument swallowed."""
    inputs: list[str] = []
    overrides: list[str] = []
    tokens = list(tokens or [])
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and "." in token.split("=", 1)[0]:
            takes_value = "=" not in token and i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
            overrides.extend(tokens[i : i + (2 if takes_value else 1)])
            i += 2 if takes_value else 1
            continue
        if token.startswith("-") and len(token) > 1:
            raise LvcgError(f"no such option: {token}")
        inputs.append(token)
        i += 1
    return inputs, overrides


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


LeadMapOption = typer.Option(
    None,
    "--lead-map",
    help="Name channels the reader does not know: OLD=NEW,... with NEW a standard lead or '-' to ignore "
    "the channel, e.g. 'ECG1=I,ECG2=II,Pleth=-'.",
    show_default=False,
)


def lead_map_from(spec: str | None) -> dict[str, str] | None:
    """Parse --lead-map once (a one-line error for a bad entry) before any file is read."""
    if spec is None:
        return None
    from lvcg_cli.signals.leads import parse_lead_map

    return parse_lead_map(spec)
