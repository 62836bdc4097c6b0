"""The command classes every `python -m ivr` command is built on: the one place where an `IvrError`
becomes click's error (its message after `Error: `, exit status 1), whichever way the command is
invoked (`main`, the `ivr` script, or click's CliRunner in tests)."""

from __future__ import annotations

import click

from ivr.errors import IvrError

__all__ = ["Command", "Group"]


class _ReportsIvrErrors:
    def invoke(self, ctx: click.Context):
        """Run the command; an IvrError is shown as its message, not a traceback."""
        try:
            return super().invoke(ctx)
        except IvrError as exc:
            raise click.ClickException(str(exc)) from None


class Command(_ReportsIvrErrors, click.Command):
    """A command whose IvrError is reported as a click error."""


class Group(_ReportsIvrErrors, click.Group):
    """A group whose commands (and sub-groups) report their IvrError as a click error."""

    command_class = Command
    group_class = type  # sub-groups are Groups too
