"""`python -m ivr call` and `sms`: one call, a campaign from a CSV file (`call --csv`), one text."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

import click

from ivr.cli.base import Command
from ivr.outbound.calls import MACHINE_DETECTION, MAX_TIMEOUT, place_call, send_sms
from ivr.outbound.campaign import Campaign, Summary, campaign_name_for
from ivr.outbound.checks import check_settings
from ivr.outbound.client import make_client
from ivr.outbound.contacts import read_contacts
from ivr.outbound.deps import OutboundDeps
from ivr.web import metrics

__all__ = ["call", "pass_deps", "sms"]

# Tests inject services with `obj=OutboundDeps(...)`; without them each command builds its own from the settings.
pass_deps = click.make_pass_decorator(OutboundDeps, ensure=True)


def _parse_vars(items: tuple[str, ...]) -> dict:
    variables = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: give NAME=VALUE, e.g. --var first_name=Ada", param_hint="--var")
        variables[name.strip()] = value
    return variables


@click.command("call", cls=Command)
@click.argument("flow")
@click.option("--to", help="The number to call, in E.164 (e.g. +15551234567).")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A campaign: call every row (column `to`, optional `timezone`, other columns become variables).",
)
@click.option("--from", "from_", help="Caller ID (default TWILIO_FROM_NUMBER).")
@click.option("--state", help="Enter the flow at this state instead of its start.")
@click.option("--var", "var_items", multiple=True, metavar="NAME=VALUE", help="A variable for the flow (repeatable).")
@click.option("--machine-detection", type=click.Choice(MACHINE_DETECTION), help="Answering machine detection.")
@click.option("--timeout", type=click.IntRange(1, MAX_TIMEOUT), help="Seconds to let it ring (Twilio's default 60).")
@click.option("--campaign", "campaign_name", help="With --csv: the campaign's name (default: the file's name).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --csv: calls per second.",
)
@click.option("--dry-run", is_flag=True, help="Print the exact request(s) and send nothing.")
@pass_deps
@click.pass_context
def call(
    ctx: click.Context,
    deps: OutboundDeps,
    flow: str,
    to: str | None,
    csv_file: str | None,
    from_: str | None,
    state: str | None,
    var_items: tuple[str, ...],
    machine_detection: str | None,
    timeout: int | None,
    campaign_name: str | None,
    rate: float,
    dry_run: bool,
) -> None:
    """Call a number (--to) or every row of a CSV file (--csv) into FLOW.

    A campaign is safe to run again: nobody is called twice, held rows (outside IVR_CALL_HOURS) are
    called by a later run. Exit status 1 when a row failed or the run stopped early.
    """
    if (to is None) == (csv_file is None):
        raise click.UsageError("give either --to NUMBER (one call) or --csv FILE (a campaign)")
    if to is not None and (campaign_name or ctx.get_parameter_source("rate") != click.core.ParameterSource.DEFAULT):
        raise click.UsageError("--campaign and --rate go with --csv")
    variables = _parse_vars(var_items)
    settings = deps.resolved_settings()
    if csv_file is not None:
        summary = _run_campaign(
            deps,
            settings,
            flow,
            csv_file,
            name=campaign_name,
            from_=from_,
            state=state,
            variables=variables,
            machine_detection=machine_detection,
            timeout=timeout,
            rate=rate,
            dry_run=dry_run,
        )
        if not summary.ok:
            ctx.exit(1)
        return
    # A dry run stores nothing, so it needs no store.
    with nullcontext() if dry_run else deps.opened_store(settings) as store:
        result = place_call(
            settings,
            flow,
            to,
            from_=from_,
            state=state,
            variables=variables,
            machine_detection=machine_detection,
            timeout=timeout,
            client=deps.client,
            store=store,
            flows=deps.flows,
            dry_run=dry_run,
        )
    if result.dry_run:
        click.echo(result.request.show())
        if variables:
            click.echo(f"variables kept server-side, not sent: {', '.join(sorted(variables))}")
        click.echo("dry run: nothing sent, nothing stored")
    else:
        click.echo(f"placed call {result.sid} to {result.to} into {flow} (status {result.status})")


def _run_campaign(
    deps: OutboundDeps,
    settings: dict,
    flow: str,
    csv_file: str,
    *,
    name: str | None,
    rate: float,
    dry_run: bool,
    **call_options,
) -> Summary:
    """`call FLOW --csv FILE`: read the rows, run with a progress bar, print the summary."""
    name = campaign_name_for(csv_file, name)
    contacts = read_contacts(csv_file)
    client = deps.client
    # Every missing setting at once, before the client is made (which would name only the credentials).
    check_settings(settings, call_options.get("from_"), credentials=client is None and not dry_run)
    if client is None and not dry_run:
        client = make_client(settings)
    with deps.opened_store(settings) as store:
        campaign = Campaign(
            settings,
            name,
            flow,
            client=client,
            store=store,
            flows=deps.flows,
            rate=rate,
            clock=deps.clock or time.time,
            sleep=deps.sleep or time.sleep,
            **call_options,
        )
        with click.progressbar(length=len(contacts), label=f"campaign {name}", file=sys.stderr) as bar:
            summary = campaign.run(contacts, dry_run=dry_run, on_row=lambda _contact: bar.update(1))
    if not dry_run:  # reaches /metrics when run with the server's PROMETHEUS_MULTIPROC_DIR
        metrics.campaign_calls(len(summary.placed), len(summary.failed))
    if dry_run and summary.requests:
        click.echo(summary.requests[0].show())
        if len(summary.requests) > 1:
            click.echo(f"  ... and {len(summary.requests) - 1} more like it, each with its own To and ctx")
    click.echo(summary.report())
    return summary


@click.command("sms", cls=Command)
@click.option("--to", required=True, help="The number to text, in E.164 (e.g. +15551234567).")
@click.option("--body", required=True, help="The text.")
@click.option("--from", "from_", help="Sender (default TWILIO_FROM_NUMBER).")
@click.option("--dry-run", is_flag=True, help="Print the exact request and send nothing.")
@pass_deps
def sms(deps: OutboundDeps, to: str, body: str, from_: str | None, dry_run: bool) -> None:
    """Send a text message."""
    result = send_sms(deps.resolved_settings(), to, body, from_=from_, client=deps.client, dry_run=dry_run)
    if result.dry_run:
        click.echo(result.request.show())
        click.echo("dry run: nothing sent")
    else:
        click.echo(f"sent text {result.sid} to {result.to} (status {result.status})")
