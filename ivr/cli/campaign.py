"""`python -m ivr campaign ...`: the rows of a campaign placed with `call FLOW --csv FILE`."""

from __future__ import annotations

import click

from ivr.cli.base import Group
from ivr.cli.outbound import pass_deps
from ivr.outbound.campaign import release_rows, status_report
from ivr.outbound.deps import OutboundDeps

__all__ = ["campaign"]


@click.group("campaign", cls=Group)
def campaign() -> None:
    """Campaigns placed with `call FLOW --csv FILE`."""


@campaign.command("status")
@click.argument("name")
@pass_deps
def status(deps: OutboundDeps, name: str) -> None:
    """Show each row of campaign NAME: status and outcome (answered, busy, no-answer, failed, machine)."""
    with deps.opened_store() as store:
        click.echo(status_report(store, name))


@campaign.command("retry")
@click.argument("name")
@click.argument("numbers", nargs=-1, required=True)
@pass_deps
def retry(deps: OutboundDeps, name: str, numbers: tuple[str, ...]) -> None:
    """Let the next run call these rows again (pending, failed or held rows of campaign NAME)."""
    problems = []
    with deps.opened_store() as store:
        for released, message in release_rows(store, name, numbers):
            if released:
                click.echo(message)
            else:
                problems.append(message)
    if problems:
        raise click.ClickException("; ".join(problems))
