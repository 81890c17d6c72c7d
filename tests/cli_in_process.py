"""``lvcg ARGS`` in-process through the real entry point, for tests that check its error mapping."""

from __future__ import annotations

import sys

import pytest

from lvcg_cli import main as main_mod


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``lvcg ARGS`` run by :func:`lvcg_cli.main.run` in this process."""
    monkeypatch.setattr(sys, "argv", ["lvcg", *args])
    with pytest.raises(SystemExit) as info:
        main_mod.run()
    captured = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err
