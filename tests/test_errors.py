"""``errors.first_line``: the one place an exception becomes a phrase of a one-line message."""

from __future__ import annotations

from lvcg_cli.errors import first_line


def test_first_line_of_a_multi_line_message_is_its_first_non_empty_line():
    assert first_line(ValueError("\n  bad header  \nsecond line")) == "bad header"


def test_an_empty_message_gives_the_type_name_never_an_index_error():
    assert first_line(OSError()) == "OSError"
    assert first_line(ValueError("   \n ")) == "ValueError"
    assert first_line("") == "error"
    assert first_line(RuntimeError(""), empty="(none)") == "(none)"


def test_limit_cuts_long_lines_only_when_asked():
    long = "x" * 500
    assert first_line(long) == long
    assert first_line(RuntimeError(long), limit=160) == "x" * 160
