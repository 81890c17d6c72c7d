"""Placeholder: filled in by its issue."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("reconstruct")
    def _placeholder() -> None:
        """Not yet available."""
        raise typer.Exit(1)
