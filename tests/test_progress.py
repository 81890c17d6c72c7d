"""Progress and logs for every reader: plain timestamped lines off a terminal, nothing hard-wrapped."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from rich.progress import TextColumn
from rich.table import Table

from lvcg_cli.console import LineProgress, StreamConsole, format_seconds

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_format_seconds():
    assert format_seconds(75.2) == "0:01:15"
    assert format_seconds(3 * 3600 + 61) == "3:01:01"
    assert format_seconds(None) == "-" and format_seconds(float("inf")) == "-"


def test_data_work_lines_every_ten_percent_or_ten_seconds_with_rate_and_eta():
    clock, lines = FakeClock(), []
    bar = LineProgress(unit="records", write=lines.append, clock=clock)
    task = bar.add_task("preparing ptbxl", total=1000)
    for _ in range(1000):  # 10 records/s
        clock.now += 0.1
        bar.advance(task)
    # one line per 10 % step (each 10 s apart here), the last one being the finished task
    assert len(lines) == 10
    assert all(re.match(rf"^{STAMP} preparing ptbxl: \d+/1000 records \(\d+%\)", line) for line in lines)
    assert "100/1000 records (10%)" in lines[0]
    assert "10.0 records/s" in lines[0]
    assert "eta 0:01:30" in lines[0]  # 900 left at 10/s
    assert "1000/1000 records (100%)" in lines[-1] and "eta" not in lines[-1]
    assert "elapsed 0:01:40" in lines[-1]


def test_slow_work_still_logs_every_ten_seconds():
    clock, lines = FakeClock(), []
    bar = LineProgress(unit="records", write=lines.append, clock=clock)
    task = bar.add_task("embedding", total=10_000)
    for _ in range(60):  # 1 record per second: 0.6 % in a minute
        clock.now += 1.0
        bar.advance(task)
    assert len(lines) == 6
    assert "eta 2:45:40" in lines[-1]  # 9940 left at 1/s


def test_short_tasks_print_one_line():
    clock, lines = FakeClock(), []
    bar = LineProgress(unit="records", write=lines.append, clock=clock)
    task = bar.add_task("embedding", total=3)
    for _ in range(3):
        clock.now += 0.05
        bar.advance(task)
    assert len(lines) == 1 and "3/3 records (100%)" in lines[0]


def test_training_lines_follow_the_logged_fields():
    clock, lines = FakeClock(), []
    extra = (TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} samples/s"))
    bar = LineProgress(
        extra, unit="steps", every_s=None, every_percent=None, on_fields=True, write=lines.append, clock=clock
    )
    task = bar.add_task("pretrain", total=100, completed=40, loss="-", speed="-")  # resumed at 40
    for step in range(41, 101):
        clock.now += 0.5
        shown = {"loss": f"{1.0 / step:.4f}", "speed": "64"} if step % 20 == 0 else {}
        bar.update(task, completed=step, **shown)
    assert [int(re.search(r"pretrain: (\d+)/100", line).group(1)) for line in lines] == [60, 80, 100]
    assert "loss 0.0167, 64 samples/s, 2.0 steps/s" in lines[0]  # rate since this run started
    assert "eta 0:00:20" in lines[0]


def test_a_console_on_a_file_never_wraps_but_a_terminal_does():
    long_line = "checkpoint: " + "/very/long/path" * 20 + "/final.pt"
    table = Table(title="wide")
    for k in range(9):
        table.add_column(f"column number {k}")
    table.add_row(*[f"value {k} " * 3 for k in range(9)])
    buffer = io.StringIO()
    plain = StreamConsole(file=buffer, soft_wrap=True)
    plain.print(long_line)
    plain.print(table, soft_wrap=False)
    out = buffer.getvalue().splitlines()
    assert out[0] == long_line
    assert sum("value 8 value 8 value 8" in line for line in out) == 1  # the row is one line
    terminal = io.StringIO()
    StreamConsole(file=terminal, force_terminal=True, width=40).print(long_line)
    assert len(terminal.getvalue().splitlines()) > 1


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.slow
def test_pretrain_with_stderr_in_a_file_logs_progress_lines(tmp_path):
    """A batch job (SLURM, nohup, CI) sees step, loss, rate and ETA every log_every steps."""
    env = {k: v for k, v in os.environ.items() if k != "LVCG_NO_PROGRESS"}
    env["COLUMNS"] = "80"  # a login shell's width must not wrap a log file
    err_path = tmp_path / "stderr.txt"
    args = [
        "pretrain", "--max-steps", "8", "--out", str(tmp_path / "run"),
        "--data.sim_records", "64", "--data.val_fraction", "0.25", "--train.batch_size", "8",
        "--train.log_every", "2", "--train.val_every", "4", "--engine.device", "cpu",
        "--model.encoder_channels", "8,16", "--model.lifter_channels", "8", "--model.lifter_layers", "1",
        "--model.state_dim", "16", "--model.d_token", "16",
    ]  # fmt: skip
    with open(err_path, "w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "lvcg_cli", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            timeout=300,
        )
    text = err_path.read_text()
    assert proc.returncode == 0, text
    lines = text.splitlines()
    progress = [line for line in lines if re.match(rf"^{STAMP} pretrain: \d+/8 steps", line)]
    assert [int(re.search(r": (\d+)/8", line).group(1)) for line in progress] == [2, 4, 6, 8]
    for line in progress:
        assert re.search(r"loss \d+\.\d{4}", line) and re.search(r"[\d.]+ steps/s", line)
        assert re.search(r"\d+ samples/s", line) and "elapsed" in line
    assert all("eta" in line for line in progress[:-1])
    with_loss = [line for line in lines if re.search(r"loss \d", line)]
    assert len(with_loss) >= 3 and max(len(line) for line in with_loss) <= 200
    assert not any("\x1b" in line for line in lines)  # no control codes in a log file
    # long lines (paths, the suggested next commands) are never broken in two
    assert any(
        line.strip().startswith("lvcg reconstruct") and line.endswith("--plot full.png") for line in lines
    )
    assert proc.stdout.strip() == str(tmp_path / "run" / "final.pt")
