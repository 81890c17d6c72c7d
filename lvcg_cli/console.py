"""Terminal output: logs and progress on stderr, results on stdout.

Keeping results alone on stdout is what makes ``lvcg embed file.hea > out.npy`` and
``lvcg probe --json | jq`` work.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """Silence info logs and progress bars (warnings and errors still print)."""
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def info(message: str) -> None:
    """An informational line on stderr (hidden by --quiet)."""
    if not _state["quiet"]:
        err_console.print(message)


def warn(message: str) -> None:
    """A warning line on stderr (always shown)."""
    err_console.print(f"[yellow]warning:[/yellow] {message}", markup=True, soft_wrap=True)


def progress(transient: bool = False, extra_columns: tuple = ()) -> Progress:
    """A rich progress bar on stderr with count, elapsed time and ETA.

    Disabled under --quiet and when stderr is not a terminal in CI-like settings
    (``LVCG_NO_PROGRESS=1``).
    """
    disabled = _state["quiet"] or os.environ.get("LVCG_NO_PROGRESS") == "1"
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        *extra_columns,
        console=err_console,
        transient=transient,
        disable=disabled,
    )


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def write_stdout_bytes(data: bytes) -> None:
    """Write binary results to stdout, all of them or an error.

    Why not one ``sys.stdout.buffer.write``: when the reader goes away mid-write (``| head -c
    100``), a buffered write returns the count it managed and raises nothing, so the command
    would exit 0 with its output cut. Writing the rest turns that into a BrokenPipeError (a quiet
    exit 1 in :func:`lvcg_cli.main.run`); any other failure (a full disk behind ``>``) is an
    :class:`~lvcg_cli.errors.OutputError`.
    """
    from lvcg_cli.errors import OutputError, os_error_cause

    stream = sys.stdout.buffer
    view = memoryview(data)
    try:
        while view:
            written = stream.write(view)
            view = view[written if written is not None else 0 :]
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError("stdout", os_error_cause(exc), exc.errno) from None
