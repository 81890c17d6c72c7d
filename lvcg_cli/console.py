"""Terminal output: logs and progress on stderr, results on stdout.

Keeping results alone on stdout is what makes ``lvcg embed file.hea > out.npy`` and
``lvcg probe --json | jq`` work.

Every reader gets progress it can use. On a terminal that is a live rich bar. Anywhere else
(a SLURM or nohup log, a CI job, ``2> log.txt``) a redrawn bar is either invisible until the end
or control-code noise, so progress becomes plain timestamped lines instead (:class:`LineProgress`),
and nothing is ever hard-wrapped: rich assumes 80 columns when it cannot ask a terminal, which
would cut every long log line and squeeze every table (:class:`StreamConsole`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

UNWRAPPED_WIDTH = 1000
"""Columns a console writing to a file or pipe pretends to have: more than any log line or table needs."""
LINE_EVERY_S = 10.0
"""Plain progress lines for data work: at least one every this many seconds ..."""
LINE_EVERY_PERCENT = 10.0
"""... and one at each step of this many per cent (and one when a task finishes)."""
LINE_MIN_GAP_S = 1.0
"""Per-cent steps closer together than this share one line (short tasks print little)."""


class StreamConsole(Console):
    """A rich Console that wraps only where a terminal's width is known.

    Written to a file or a pipe, rich falls back to 80 columns and inserts line breaks into long
    lines (paths, progress) and squeezes tables; here such a console is as wide as any line, so
    every log line stays one line and every table keeps its natural width. (A ``COLUMNS``
    variable, often inherited from a login shell, describes a terminal, not a file.)
    """

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any):
        super().__init__(*args, width=width, **kwargs)
        self._fixed_width = width

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._fixed_width is None and not self.is_terminal:
            return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)
        self._fixed_width = new_size[0]


err_console = StreamConsole(stderr=True, highlight=False, soft_wrap=True)
out_console = StreamConsole(highlight=False)

_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """Silence info logs and progress (warnings and errors still print)."""
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


def format_seconds(seconds: float | None) -> str:
    """``75.2`` -> ``0:01:15``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass
class _LineTask:
    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float
    start_completed: float
    last_line: float
    last_step: int = 0
    finished: bool = False
    id: int = 0


class LineProgress:
    """Progress as plain, timestamped lines: the stand-in for a rich bar where stderr is no terminal.

    It answers the part of :class:`rich.progress.Progress` lvcg uses (``add_task``, ``update``,
    ``advance``, ``disable``, a context manager), so a caller never asks which one it has. A line
    is written when a task finishes, and in between either

    - every ``every_s`` seconds and at each ``every_percent`` step (data work), or
    - whenever ``update`` sets a field (``on_fields``: training sets its loss every ``log_every``
      steps, so that is the rhythm of its lines).

    A line reads ``2025-01-31 14:02:07 pretrain: 120/500 steps (24%), loss 0.4312, lr 1.9e-03,
    812 samples/s, 3.1 steps/s, elapsed 0:00:39, eta 0:02:03`` (never wrapped).
    """

    disable = False

    def __init__(
        self,
        extra_columns: Sequence[ProgressColumn] = (),
        *,
        unit: str = "items",
        every_s: float | None = LINE_EVERY_S,
        every_percent: float | None = LINE_EVERY_PERCENT,
        on_fields: bool = False,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.extra_columns = [c for c in extra_columns if isinstance(c, TextColumn)]
        self.unit = unit
        self.every_s = every_s
        self.every_percent = every_percent
        self.on_fields = on_fields
        self._write = write or (lambda line: err_console.print(line, markup=False, highlight=False))
        self._clock = clock
        self._tasks: dict[int, _LineTask] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # ---------------------------------------------------------------------------------------
    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = None,
        completed: float = 0,
        visible: bool = True,
        **fields: Any,
    ) -> int:
        now = self._clock()
        task = _LineTask(description, total, completed, fields, now, completed, now, id=len(self._tasks))
        task.last_step = self._step(task)
        self._tasks[task.id] = task
        return task.id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        task = self._tasks[task_id]
        fields.pop("visible", None)
        fields.pop("refresh", None)
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if description is not None:
            task.description = description
        task.fields.update(fields)
        if self._due(task, bool(fields)):
            self._emit(task)

    # ---------------------------------------------------------------------------------------
    def _step(self, task: _LineTask) -> int:
        if not self.every_percent or not task.total:
            return 0
        return int(100.0 * task.completed / task.total // self.every_percent)

    def _due(self, task: _LineTask, set_fields: bool) -> bool:
        now = self._clock()
        if task.total is not None and task.completed >= task.total:
            if task.finished:
                return False
            task.finished = True
            return True
        if self.on_fields and set_fields:
            return True
        if self.every_s is not None and now - task.last_line >= self.every_s:
            return True
        return self._step(task) > task.last_step and now - task.last_line >= LINE_MIN_GAP_S

    def line(self, task_id: int) -> str:
        """The text of the progress line of a task now (without the timestamp)."""
        task = self._tasks[task_id]
        now = self._clock()
        elapsed = now - task.started
        done = task.completed - task.start_completed
        rate = done / elapsed if elapsed > 0 else 0.0
        if task.total:
            count = f"{_number(task.completed)}/{_number(task.total)} {self.unit} "
            count += f"({100.0 * task.completed / task.total:.0f}%)"
        else:
            count = f"{_number(task.completed)} {self.unit}"
        parts = [f"{task.description}: {count}"]
        view = _TaskView(task)
        for column in self.extra_columns:
            text = column.text_format.format(task=view)
            parts.append(Text.from_markup(text).plain if column.markup else text)
        parts.append(f"{rate:,.1f} {self.unit}/s" if rate < 100 else f"{rate:,.0f} {self.unit}/s")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        if task.total is not None and task.completed < task.total:
            eta = (task.total - task.completed) / rate if rate > 0 else None
            parts.append(f"eta {format_seconds(eta)}")
        return ", ".join(parts)

    def _emit(self, task: _LineTask) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._write(f"{stamp} {self.line(task.id)}")
        task.last_line = self._clock()
        task.last_step = self._step(task)


@dataclass
class _TaskView:
    """What a rich TextColumn's format string reads (``{task.fields[loss]}``, ``{task.description}``)."""

    task: _LineTask

    @property
    def fields(self) -> dict[str, Any]:
        return self.task.fields

    @property
    def description(self) -> str:
        return self.task.description

    @property
    def completed(self) -> float:
        return self.task.completed

    @property
    def total(self) -> float | None:
        return self.task.total


def _number(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"


def progress(
    transient: bool = False,
    extra_columns: tuple = (),
    *,
    unit: str = "items",
    every_s: float | None = LINE_EVERY_S,
    every_percent: float | None = LINE_EVERY_PERCENT,
    on_fields: bool = False,
) -> Progress | LineProgress:
    """Progress on stderr for every reader: a live rich bar on a terminal, plain lines elsewhere.

    ``--quiet`` silences it. ``LVCG_NO_PROGRESS=1`` asks for the plain lines even on a terminal
    (e.g. under ``script`` or a terminal multiplexer that keeps a log). The line rhythm
    (``every_s``, ``every_percent``, ``on_fields``) is described in :class:`LineProgress`.
    """
    if _state["quiet"]:
        return Progress(console=err_console, disable=True)
    if not err_console.is_terminal or os.environ.get("LVCG_NO_PROGRESS") == "1":
        return LineProgress(
            extra_columns, unit=unit, every_s=every_s, every_percent=every_percent, on_fields=on_fields
        )
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
