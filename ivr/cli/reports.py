"""`python -m ivr report` and `calls`: the call journal (IVR_EVENTS) read back as figures and stories."""

from __future__ import annotations

import json
import os
import re

import click

from ivr.cli.base import Command

__all__ = ["calls", "journal", "report", "window", "with_window"]

_SOURCES = ("twilio", "phone", "replay", "import", "all")  # ivr.analytics.formats.WINDOW_SOURCES (imported late)
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}\Z")


def window(since: str | None, until: str | None, source: str):
    from ivr.analytics.formats import parse_window

    try:
        return parse_window(since, until, source)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None


def journal():
    from ivr.analytics.database import journal_from_settings
    from ivr.settings import load_settings

    return journal_from_settings(load_settings())


def _flow(flow_id: str, flows_dir: str | None):
    """The loaded flow (so that every state has its row), else its id alone (a flow since removed)."""
    from ivr.core.loader import find_flow_files, load_flow
    from ivr.errors import IvrError

    try:
        [*found], problems = find_flow_files([flow_id], flows_dir or os.environ.get("IVR_FLOWS_DIR") or "flows")
        if not problems:
            return load_flow(found[0])
    except IvrError:
        pass
    return flow_id


_window_options = [
    click.option("--since", help="From this time: an ISO date or time (UTC unless it says), or 24h, 7d, 2w back."),
    click.option("--until", help="Up to (not including) this time, the same way."),
    click.option(
        "--source",
        type=click.Choice(_SOURCES),
        default="twilio",
        show_default=True,
        help="Whose calls: Twilio's, the built-in phones', replays', imported ones, or all.",
    ),
]


def with_window(command):
    for option in reversed(_window_options):
        command = option(command)
    return command


@click.command(cls=Command)
@click.argument("flow")
@with_window
@click.option("--format", "fmt", type=click.Choice(("text", "json", "csv")), default="text", show_default=True)
@click.option("--flows", "flows_dir", default=None, help="Flows directory (default: IVR_FLOWS_DIR or flows).")
def report(flow: str, since: str | None, until: str | None, source: str, fmt: str, flows_dir: str | None) -> None:
    """Where FLOW's callers go and where they give up: per state and per flow, from the journal (IVR_EVENTS)."""
    from ivr.analytics.formats import render
    from ivr.analytics.report import build_report

    chosen = window(since, until, source)
    db = journal()
    try:
        click.echo(render(build_report(db, _flow(flow, flows_dir), chosen), fmt))
    finally:
        db.close()


@click.command(cls=Command)
@click.argument("flow_or_call")
@with_window
@click.option("--limit", default=50, show_default=True, help="How many calls, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def calls(flow_or_call: str, since: str | None, until: str | None, source: str, limit: int, as_json: bool) -> None:
    """A flow's recent calls, or one call's steps (give its CallSid) like an execution log."""
    from ivr.analytics.calls import call_steps, format_steps, recent_calls

    db = journal()
    try:
        if _CALL_SID.fullmatch(flow_or_call):
            summary, steps = call_steps(db, flow_or_call)
            if summary is None and not steps:
                raise click.ClickException(f"no call {flow_or_call} in the journal ({db.shown})")
            if as_json:
                shown = {"call": summary.as_dict() if summary else None, "steps": [s.as_dict() for s in steps]}
                click.echo(json.dumps(shown, indent=2))
            else:
                click.echo(format_steps(summary, steps))
            return
        found = recent_calls(db, flow_or_call, window(since, until, source), limit)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], indent=2))
        return
    if not found:
        whose = "" if source == "all" else f" from {source}"
        click.echo(f"no calls of flow {flow_or_call}{whose} in the journal")
        return
    for c in found:
        duration = "-" if c.duration is None else f"{c.duration:.0f}s"
        click.echo(
            f"{c.as_dict()['started'] or '-':<21} {c.call_sid}  {(c.caller or 'withheld')[:12]:<12} {duration:>6}  "
            f"{c.outcome:<12} {c.last_state or '-'}"
        )
