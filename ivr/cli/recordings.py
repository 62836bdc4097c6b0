"""`python -m ivr replay` and `import-call`: recorded calls, replayed or made from a real call."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from twilio.base.exceptions import TwilioException

from ivr.cli.base import Command

__all__ = ["import_call", "replay"]


@click.command(cls=Command)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--flows", "flows_dir", default=None, help="Flows directory (default: IVR_FLOWS_DIR or flows).")
@click.option("--rerecord", is_flag=True, help="Rewrite the recordings with today's answers.")
def replay(files: tuple[Path, ...], flows_dir: str | None, rerecord: bool) -> None:
    """Re-send recorded calls to the current flows and show where the TwiML now differs."""
    import os

    from ivr.phone.replay import replay as run_replay
    from ivr.web import replay_target

    flows_dir = flows_dir or os.environ.get("IVR_FLOWS_DIR") or "flows"
    failed = 0
    for path in files:
        try:
            result = run_replay(path, replay_target, flows_dir=flows_dir, rerecord=rerecord)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(result.report())
        failed += not result.ok and not rerecord
    if failed:
        sys.exit(1)


@click.command("import-call", cls=Command)
@click.argument("call_sid")
@click.option(
    "--file",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A saved Events.json page instead of fetching it from Twilio.",
)
@click.option(
    "--out",
    "out_dir",
    default="tests/calls",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the recording is written.",
)
def import_call(call_sid: str, events_file: Path | None, out_dir: Path) -> None:
    """Turn a real call (Twilio's Call Events) into a recorded call that replays as a test."""
    from ivr.outbound.client import make_client, twilio_error
    from ivr.phone.events import events_to_recording, fetch_events, load_events_file, write_recording
    from ivr.settings import load_settings

    if events_file is not None:
        events = load_events_file(events_file)
    else:
        client = make_client(load_settings())
        try:
            events = fetch_events(client, call_sid)
        except TwilioException as exc:
            raise twilio_error(exc) from None
    try:
        lines = events_to_recording(events, call_sid)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if len(lines) < 2:
        raise click.ClickException(
            f"no voice webhooks of {call_sid} in the events (calls are readable 15 minutes after they end)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{call_sid}.jsonl"
    write_recording(lines, path)
    click.echo(f"wrote {path} ({len(lines) - 1} webhooks); check it with: python -m ivr replay {path}")
