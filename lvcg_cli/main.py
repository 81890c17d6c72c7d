"""The ``lvcg`` executable: one Typer app, one thin module per subcommand in ``commands/``.

Known errors (:class:`lvcg_cli.errors.LvcgError`) become one line on stderr and exit code 2;
``LVCG_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from lvcg_cli import __version__
from lvcg_cli.commands import config, embed, prepare_data, pretrain, probe, reconstruct
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import warn_unknown_env

app = typer.Typer(
    name="lvcg",
    help=(
        "Latent vectorcardiogram (LVCG) representations of 12-lead ECGs.\n\n"
        "Lift any visible leads into a latent 3-D cardiac field, encode each beat through a small "
        "token bottleneck, model beat-to-beat dynamics, and project back to all 12 leads through a "
        "fixed lead-field geometry.\n\n"
        "Settings: every command accepts --config FILE (YAML, several allowed), --preset NAME and dotted "
        "overrides such as --train.lr 3e-4 or --data.meta_root PATH; environment variables "
        "`LVCG_<SECTION>__<KEY>` sit between YAML and the command line. See `lvcg config show`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lvcg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Latent vectorcardiogram (LVCG) representations of 12-lead ECGs."""


config.register(app)
prepare_data.register(app)
pretrain.register(app)
probe.register(app)
reconstruct.register(app)
embed.register(app)


def run() -> None:
    """Console-script entry point."""
    debug = os.environ.get("LVCG_DEBUG", "") not in {"", "0", "false"}
    try:
        warn_unknown_env()
        app()
    except LvcgError as exc:
        if debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"lvcg: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("lvcg: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line unless debugging
        if debug:
            raise
        print(
            f"lvcg: internal error: {type(exc).__name__}: {exc} (run with LVCG_DEBUG=1 for the traceback, "
            "and please report it)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    run()
