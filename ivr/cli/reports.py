"""`python -m ivr report` and `calls`: the call journal (IVR_EVENTS) read back as figures and stories."""

from __future__ import annotations

import json
import os
import re

import click

from ivr.analytics.formats import FORMATS, WINDOW_SOURCES
from ivr.cli.base import Command

__all__ = ["calls", "journal", "report", "window", "with_window"]

_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}\Z")


def window(since: str | None, until: str | None, source: str):
    """The window of --since, --until and --source; a bad value is a usage error saying what to give."""
    from ivr.analytics.formats import parse_window

    try:
        return parse_window(since, until, source)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from None


def journal():
    """The journal IVR_EVENTS names, for commands that only read it (it must exist)."""
    from ivr.analytics.database import journal_from_settings
    from ivr.settings import load_settings

    return journal_from_settings(load_settings(), existing=True)


def _flow(flow_id: str, flows_dir: str | None, db):
    """The loaded flow (so that every state has its row), else its id alone when the journal knows it (a
    flow since removed); else a usage error naming the flows there are."""
    from ivr.core.loader import find_flow_files, load_flow
    from ivr.errors import IvrError

    directory = flows_dir or os.environ.get("IVR_FLOWS_DIR") or "flows"
    problems = []
    try:
        [*found], problems = find_flow_files([flow_id], directory)
        if not problems:
            return load_flow(found[0])
    except IvrError:
        pass
    if db.query("SELECT 1 FROM calls WHERE flow = ? LIMIT 1", [flow_id]):
        return flow_id
    why = problems[0].message if problems else f"flow '{flow_id}' does not load from {directory}"
    raise click.BadParameter(f"{why}; and the journal has no call of a flow '{flow_id}'", param_hint="FLOW")


_window_options = [
    click.option("--since", help="From this time: an ISO date or time (UTC unless it says), or 24h, 7d, 2w back."),
    click.option("--until", help="Up to (not including) this time, the same way."),
    click.option(
        "--source",
        type=click.Choice(WINDOW_SOURCES),
        default="twilio",
        show_default=True,
        help="Whose calls: Twilio's, the built-in phones', replays', imported ones, or all.",
    ),
]


def with_window(command):
    """Add --since, --until and --source to a command."""
    for option in reversed(_window_options):
        command = option(command)
    return command


@click.command(cls=Command)
@click.argument("flow")
@with_window
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--flows", "flows_dir", default=None, help="Flows directory (default: IVR_FLOWS_DIR or flows).")
def report(flow: str, since: str | None, until: str | None, source: str, fmt: str, flows_dir: str | None) -> None:
    """Where FLOW's callers go and where they give up: per state and per flow, from the journal (IVR_EVENTS)."""
    from ivr.analytics.formats import render
    from ivr.analytics.report import build_report

    chosen = window(since, until, source)
    db = journal()
    try:
        click.echo(render(build_report(db, _flow(flow, flows_dir, db), chosen), fmt), nl=fmt != "csv")
    finally:
        db.close()


@click.command(cls=Command)
@click.argument("flow_or_call")
@with_window
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="How many calls, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def calls(flow_or_call: str, since: str | None, until: str | None, source: str, limit: int, as_json: bool) -> None:
    """A flow's recent calls, or one call's steps (give its CallSid) like an execution log."""
    from ivr.analytics.calls import call_steps, format_steps, recent_calls

    db = journal()
    try:
        if flow_or_call.startswith("CA") and not _CALL_SID.fullmatch(flow_or_call) and len(flow_or_call) > 8:
            raise click.BadParameter(f"{flow_or_call!r} is not a CallSid (CA and 32 hex digits)", param_hint="FLOW")
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
        chosen = window(since, until, source)
        _flow(flow_or_call, None, db)  # a flow of the flows directory, or one the journal knows
        found = recent_calls(db, flow_or_call, chosen, limit)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], indent=2))
        return
    if not found:
        whose = "" if source == "all" else f" from {source}"
        click.echo(f"no calls of flow {flow_or_call}{whose} in the journal")
        return
    click.echo(f"{'started (UTC)':<20} {'call':<34}  {'caller':<12} {'length':>6}  {'outcome':<12} last state")
    for c in found:
        duration = "-" if c.duration is None else f"{c.duration:.0f}s"
        click.echo(
            f"{_when(c.started_at):<20} {c.call_sid}  {(c.caller or 'withheld')[:12]:<12} {duration:>6}  "
            f"{c.outcome:<12} {c.last_state or '-'}"
        )


def _when(moment: float | None) -> str:
    from datetime import UTC, datetime

    return "-" if moment is None else datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
