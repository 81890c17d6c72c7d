"""Options and helpers shared by every subcommand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

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
