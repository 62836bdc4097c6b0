"""`python -m ivr drain` and `reconcile`: callbacks from the spool into the store, recordings whose
callbacks never came from Twilio's REST API."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ivr.cli.base import Command
from ivr.outbound.deps import OutboundDeps

__all__ = ["drain", "reconcile"]

pass_deps = click.make_pass_decorator(OutboundDeps, ensure=True)


def _app(deps: OutboundDeps):
    from ivr.web.app import create_app

    return create_app(deps.settings)


@click.command(cls=Command)
@pass_deps
def drain(deps: OutboundDeps) -> None:
    """Store the callbacks waiting in the spool (IVR_SPOOL_DIR) and retry deliveries left unfinished."""
    from ivr.web.delivery import redeliver_stale
    from ivr.web.drain import drain_now

    app = _app(deps)
    result = drain_now(app)
    if result is None:
        raise click.ClickException(f"another process is draining {app.config['IVR_SPOOL_DIR']}: try again later")
    retried = redeliver_stale(app)
    click.echo(
        f"{result.applied} applied, {result.rejected} rejected, {result.left} left; {retried} retried deliveries"
    )
    if result.left:
        raise click.ClickException("the store refused entries: they stay in the spool; run drain again once it is back")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give an ISO time such as 2026-11-25T15:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command(cls=Command)
@click.option("--since", required=True, help="Start of the window, ISO 8601 (UTC unless it says): 2026-11-25T15:00Z.")
@click.option("--until", "until_", help="End of the window (default: now).")
@click.option("--flow", help="The flow of recordings whose call is no longer in the store.")
@click.option("--state", help="Their Record state (default: the flow's only Record state).")
@pass_deps
def reconcile(deps: OutboundDeps, since: str, until_: str | None, flow: str | None, state: str | None) -> None:
    """Store and deliver the account's recordings in a time window that the message box lacks."""
    from ivr.outbound.client import make_client
    from ivr.outbound.recordings import list_recordings
    from ivr.web.drain import reconcile as reconcile_recordings

    app = _app(deps)
    client = deps.client if deps.client is not None else make_client(app.config)
    found = list_recordings(client, _moment(since), _moment(until_) if until_ else None)
    stored = reconcile_recordings(app, found, flow=flow, state=state)
    click.echo(f"{len(found)} recordings in the window, {len(stored)} missing from the store: stored and delivered")
    for sid in stored:
        click.echo(f"  {sid}")
