"""Help that shows flags as flags.

Typer's rich help prints a value type beside every option, flags included (``--force <bool>``),
which reads as if ``--force true`` were the way to write it; it is not (a flag takes no value).
These command classes give every flag an empty type label, so ``--help`` shows ``--force`` alone.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


class _FlagsAsFlags:
    """Mixin: flags (options that take no value) show no value type in the help."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0"})


class LvcgCommand(_FlagsAsFlags, TyperCommand):
    """Every ``lvcg`` subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """``--force true`` would otherwise end as "unexpected argument 'true'"; say what is meant.

        An option whose metavar is in brackets (``--resume [PATH]``) may be given without its
        value: it then gets the empty string (the parser itself has no optional values).
        """
        params = self.get_params(ctx)
        optional = {name for p in params if str(p.metavar or "").startswith("[") for name in p.opts}
        args = fill_optional_values(args, optional)
        flags = {name for p in params if getattr(p, "is_flag", False) for name in p.opts}
        for option, value in zip(args, args[1:], strict=False):
            if option in flags and value.lower() in BOOLEAN_WORDS:
                from lvcg_cli.errors import LvcgError

                advice = (
                    f"write {option} alone" if value.lower() in {"true", "yes", "on", "1"} else "leave it out"
                )
                raise LvcgError(f"{option} is a flag and takes no value ({option} {value}: {advice})")
        return super().parse_args(ctx, args)


def fill_optional_values(args: list[str], options: set[str]) -> list[str]:
    """Give ``""`` to each of ``options`` written without a value (last, or before another option)."""
    out: list[str] = []
    for i, token in enumerate(args):
        out.append(token)
        following = args[i + 1] if i + 1 < len(args) else None
        if token in options and (following is None or (following.startswith("-") and len(following) > 1)):
            out.append("")
    return out


class LvcgGroup(_FlagsAsFlags, TyperGroup):
    """``lvcg`` itself and ``lvcg config``."""


def use_lvcg_classes(app: Any) -> None:
    """Make every command registered on ``app`` (and on its sub-apps) an :class:`LvcgCommand`."""
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:  # typer's default
            info.cls = LvcgCommand
    for group in app.registered_groups:
        use_lvcg_classes(group.typer_instance)
