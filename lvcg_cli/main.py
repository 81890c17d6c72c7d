"""The ``lvcg`` executable: one Typer app, one thin module per subcommand in ``commands/``.

Known errors (:class:`lvcg_cli.errors.LvcgError`) and operating-system errors (a read-only or
full disk, a missing permission, a file where a folder should be) become one line on stderr and
exit code 2; a closed stdout (``| head``) ends quietly with exit code 1; ``LVCG_DEBUG=1`` shows
the traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from lvcg_cli import __version__
from lvcg_cli.commands import config, embed, prepare_data, pretrain, probe, reconstruct
from lvcg_cli.commands._help import LvcgGroup, use_lvcg_classes
from lvcg_cli.errors import LvcgError, describe_os_error, first_line
from lvcg_cli.settings import warn_unknown_env

app = typer.Typer(
    name="lvcg",
    cls=LvcgGroup,
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
use_lvcg_classes(app)


def run() -> None:
    """Console-script entry point."""
    debug = os.environ.get("LVCG_DEBUG", "") not in {"", "0", "false"}
    try:
        warn_unknown_env()
        app()
    except LvcgError as exc:
        if debug:
            raise
        _fail(first_line(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("lvcg: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except OSError as exc:  # permissions, read-only or full disk, a file where a folder should be ...
        if debug:
            raise
        _fail(describe_os_error(exc), 2)
    except UnicodeError as exc:  # a text file that is not UTF-8, or a name the terminal cannot show
        if debug:
            raise
        reason = getattr(exc, "reason", str(exc))
        _fail(f"text encoding: {reason} ({type(exc).__name__}; files must be UTF-8)", 2)
    except Exception as exc:  # a bug: say so in one line unless debugging
        if debug:
            raise
        print(
            f"lvcg: internal error: {type(exc).__name__}: {exc} (run with LVCG_DEBUG=1 for the traceback, "
            "and please report it)",
            file=sys.stderr,
        )
        sys.exit(1)


def _fail(message: str, code: int) -> None:
    print(f"lvcg: error: {first_line(message)}", file=sys.stderr)
    sys.exit(code)


def _quiet_broken_pipe() -> None:
    """The reader of our stdout went away (``| head``): stop quietly, with a non-zero exit.

    Pointing stdout at /dev/null keeps Python's final flush from printing a second error.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


if __name__ == "__main__":
    run()
