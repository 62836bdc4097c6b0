"""`python -m ivr fallback-twiml`: the TwiML to paste into a TwiML Bin for the number's Fallback URL.

Twilio fetches the Fallback URL when the app does not answer; the app's own /twilio/fallback is down
whenever the app is, so the fallback belongs somewhere else: a TwiML Bin, hosted by Twilio.
"""

from __future__ import annotations

import click

from ivr.cli.base import Command
from ivr.core.twiml import APOLOGY_TEXT, apology_document

__all__ = ["fallback_twiml"]


@click.command("fallback-twiml", cls=Command)
@click.option("--say", "text", default=APOLOGY_TEXT, show_default=True, help="What the caller hears.")
@click.option("--voice", help="The Say voice, such as Polly.Joanna (Twilio's default when left out).")
@click.option("--language", help="The Say language, such as en-US.")
def fallback_twiml(text: str, voice: str | None, language: str | None) -> None:
    """Print the apology TwiML (the app's own /twilio/fallback) to paste into a TwiML Bin for the Fallback URL."""
    if not text.strip():
        raise click.BadParameter("give the words the caller hears", param_hint="--say")
    click.echo(apology_document(voice, language, text))
