"""`python -m ivr ...` and the `ivr` script: one click group, a module per command group.

Commands raise `IvrError` (or click's own errors); their classes (ivr/cli/base.py) are the one
place an `IvrError` becomes a message and exit status 1.
"""

from __future__ import annotations

import os

import click

from ivr.cli.backup import backup, restore
from ivr.cli.base import Group
from ivr.cli.campaign import campaign
from ivr.cli.check import check
from ivr.cli.drain import drain, reconcile
from ivr.cli.fallback import fallback_twiml
from ivr.cli.graph import graph
from ivr.cli.journal import forget_caller, journal
from ivr.cli.messages import messages
from ivr.cli.outbound import call, sms
from ivr.cli.phone import phone
from ivr.cli.recordings import import_call, replay
from ivr.cli.reports import calls, report
from ivr.cli.studio import import_studio
from ivr.hooks import load_hooks

__all__ = ["cli", "main"]


@click.group(cls=Group)
def cli() -> None:
    """ivr: a code-first IVR for Twilio."""
    # Every command sees the same hooks as the app: IVR_HOOKS, else hooks.py beside the flows.
    load_hooks(os.environ.get("IVR_HOOKS") or None, os.environ.get("IVR_FLOWS_DIR") or "flows")


_COMMANDS = (backup, call, calls, campaign, check, drain, fallback_twiml, forget_caller, graph, import_call,
             import_studio, journal, messages, phone, reconcile, replay, report, restore, sms)  # fmt: skip
for _command in _COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; IvrError becomes a message and exit status 1."""
    try:
        # Without standalone mode, click returns a command's ctx.exit(N) status instead of exiting.
        status = cli.main(args=argv, prog_name="python -m ivr", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    return status if isinstance(status, int) else 0
