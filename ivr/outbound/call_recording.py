"""Pausing, resuming and stopping a live call's recording through Twilio's REST API.

    POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings/Twilio.CURRENT.json
    Status=paused&PauseBehavior=skip        (or Status=in-progress, Status=stopped)

`Twilio.CURRENT` names the call's recording in progress, whoever started it (`<Start><Recording>`, the
REST API, or an outbound call placed with Record=true); PauseBehavior (skip or silence, Twilio's
default silence) applies only to a pause.
"""

from __future__ import annotations

from twilio.base import values
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ivr.core.call_recording import CURRENT
from ivr.outbound.client import twilio_error

__all__ = ["update_call_recording"]


def update_call_recording(client: Client, call_sid: str, status: str, pause_behavior: str | None = None) -> str:
    """Set the call's current recording to `status` (paused, in-progress, stopped); its RecordingSid.
    TwilioCallError says what Twilio answered (e.g. 21220 when no recording is in progress)."""
    if not call_sid:
        raise ValueError("no CallSid: the recording of which call?")
    try:
        recording = (
            client.calls(call_sid)
            .recordings(CURRENT)
            .update(status=status, pause_behavior=values.unset if pause_behavior is None else pause_behavior)
        )
    except TwilioException as exc:
        raise twilio_error(exc) from None
    return recording.sid or ""
