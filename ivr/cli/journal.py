"""`python -m ivr journal purge|load|forget` and `forget-caller`: the journal's retention, recorded calls
loaded into it, and one caller erased everywhere the product keeps them (privacy requests)."""

from __future__ import annotations

from pathlib import Path

import click

from ivr.cli.base import Command, Group

__all__ = ["forget_caller", "journal"]


@click.group("journal", cls=Group)
def journal() -> None:
    """The call journal (IVR_EVENTS): purge old rows, load recorded calls, forget a caller."""


@journal.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    default=None,
    help="Days to keep (default: IVR_EVENTS_RETENTION_DAYS, 90).",
)
def purge(days: int | None) -> None:
    """Delete the journal's events and calls older than the retention. The app does it once a day too."""
    import time

    from ivr.analytics.database import journal_from_settings
    from ivr.analytics.privacy import DAY
    from ivr.analytics.privacy import purge as purge_rows
    from ivr.settings import load_settings

    settings = load_settings()
    days = days or settings["IVR_EVENTS_RETENTION_DAYS"]
    db = journal_from_settings(settings)
    try:
        gone = purge_rows(db, time.time() - days * DAY)
    finally:
        db.close()
    click.echo(f"purged {gone.calls} calls and {gone.events} events older than {days} days from {db.shown}")


@journal.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--flows", "flows_dir", default=None, help="Flows directory (default: IVR_FLOWS_DIR or flows).")
def load(files: tuple[Path, ...], flows_dir: str | None) -> None:
    """Load recorded calls (.jsonl) and Twilio Call Events pages (.json, as import-call reads them) into the
    journal, with source `import` and their own times: `report FLOW --source import` shows them."""
    from ivr.settings import load_settings
    from ivr.web.journal_load import load_calls

    try:
        loaded = load_calls(files, load_settings(), flows_dir=flows_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for item in loaded:
        click.echo(item.line())
    done = sum(item.skipped is None for item in loaded)
    click.echo(f"{done} of {len(loaded)} calls loaded (source import)")


def _forget(number: str, yes: bool) -> None:
    from ivr.analytics.privacy import analytics_key, normalise_number
    from ivr.settings import load_settings
    from ivr.web.privacy import forget_everywhere

    try:
        number = normalise_number(number)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None
    settings = load_settings()
    if settings["IVR_EVENTS"]:
        analytics_key(settings)  # in production without IVR_ANALYTICS_KEY: say what to set before asking
    if not yes:
        click.confirm(
            f"Erase every trace of {number} (journal, sessions, texts, voicemail, recordings, spool)? "
            "This cannot be undone",
            abort=True,
        )
    click.echo(forget_everywhere(settings, number).summary())
    click.echo("Twilio keeps its own call logs and recordings: delete them there too (docs/operations.md).")


_number = click.argument("number")
_yes = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


@journal.command("forget")
@_number
@_yes
def forget(number: str, yes: bool) -> None:
    """Erase the caller with NUMBER everywhere the product keeps them (the same as forget-caller)."""
    _forget(number, yes)


@click.command("forget-caller", cls=Command)
@_number
@_yes
def forget_caller(number: str, yes: bool) -> None:
    """Erase the caller with NUMBER everywhere the product keeps them, for requests under privacy law:
    their calls in the journal, sessions of calls in progress, SMS conversations, voicemail, recorded
    calls (IVR_RECORD_DIR) and waiting callbacks (IVR_SPOOL_DIR). NUMBER in international form."""
    _forget(number, yes)
