"""`python -m ivr messages`: the newest voicemail messages in the session store."""

from __future__ import annotations

import click

from ivr.cli.base import Command

__all__ = ["messages"]


@click.command(cls=Command)
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def messages(limit: int, as_json: bool) -> None:
    """List recent voicemail messages from the session store (IVR_STORE)."""
    import json

    from ivr.settings import load_settings
    from ivr.store import store_from_settings
    from ivr.web.messages import MessageBox

    settings = load_settings()
    store = store_from_settings(settings, for_the_app=True)
    try:
        found = MessageBox(store).recent(limit)
    finally:
        store.close()
    if not found:
        click.echo(f"no messages in {settings['IVR_STORE']}")
    for message in found:
        if as_json:
            click.echo(json.dumps(message, sort_keys=True))
            continue
        transcription = (message.get("transcription") or {}).get("text") or "(no transcription yet)"
        if message.get("delivered"):
            delivered = "delivered"
        elif message.get("deliveries"):
            delivered = "delivery failed"
        else:
            delivered = "stored"
        click.echo(
            f"{message.get('created', '?')}  {message.get('from') or '?':<14} {message['flow']}/{message['state']}"
            f"  {message.get('duration') or 0:>3} s  {delivered}\n    {transcription}\n    {message.get('url')}"
        )
