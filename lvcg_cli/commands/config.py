"""``lvcg config show|write|presets``: inspect the resolved settings."""

from __future__ import annotations

from pathlib import Path

import typer

from lvcg_cli.atomic import write_text_atomic
from lvcg_cli.commands._common import OVERRIDABLE, ConfigOption, JsonOption, PresetOption, settings_from
from lvcg_cli.commands._help import LvcgGroup
from lvcg_cli.console import info
from lvcg_cli.settings import Settings

SECTIONS = tuple(Settings.model_fields)
"""``lvcg config`` shows and writes every section."""

config_app = typer.Typer(
    cls=LvcgGroup,
    help="Show or write the resolved settings (defaults < preset < --config < env < --section.key).",
    no_args_is_help=True,
)


@config_app.command("show", context_settings=OVERRIDABLE)
def show(
    ctx: typer.Context,
    preset: str = PresetOption,
    config: list[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Print the resolved settings as YAML (or JSON).

    Examples:

        lvcg config show --preset lvcg-base

        lvcg config show --config my.yaml --train.lr 3e-4
    """
    settings = settings_from(ctx, reads=SECTIONS, preset=preset, config=config)
    if as_json:
        typer.echo(settings.model_dump_json(indent=2))
    else:
        typer.echo(settings.to_yaml(), nl=False)


@config_app.command("write", context_settings=OVERRIDABLE)
def write(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Where to write the YAML file."),
    preset: str = PresetOption,
    config: list[Path] = ConfigOption,
) -> None:
    """Write the resolved settings to a YAML file you can edit and pass back with --config.

    Example:

        lvcg config write my.yaml --preset lvcg-tiny --train.max_steps 2000
    """
    settings = settings_from(ctx, reads=SECTIONS, preset=preset, config=config)
    write_text_atomic(path, settings.to_yaml())
    info(f"wrote {path}")


@config_app.command("presets")
def presets() -> None:
    """List the bundled presets."""
    from lvcg_cli.settings import preset_names

    for name in preset_names():
        typer.echo(name)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
