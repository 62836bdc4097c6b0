"""The account's recordings in a time window, from Twilio's REST API (`GET .../Recordings.json`).

A recording exists at Twilio even when every callback about it was lost: `python -m ivr reconcile`
compares these with the message box and stores (and delivers) what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ivr.errors import TwilioCallError
from ivr.outbound.client import twilio_error

__all__ = ["RecordingFound", "list_recordings"]

_API = "https://api.twilio.com"


@dataclass(frozen=True, slots=True)
class RecordingFound:
    """One recording as the REST API lists it, with the fields a recording callback would carry."""

    sid: str
    call_sid: str
    account_sid: str
    status: str
    duration: int | None
    url: str  # as RecordingUrl in a callback: the media's address without an extension
    created: datetime | None
    source: str | None

    def callback_params(self) -> dict[str, str]:
        """The parameters Twilio would have posted to the recording status callback."""
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "RecordingSid": self.sid,
            "RecordingUrl": self.url,
            "RecordingStatus": self.status,
            "RecordingDuration": "" if self.duration is None else str(self.duration),
        }
        if self.source:
            params["RecordingSource"] = self.source
        return params


def list_recordings(client: Client, since: datetime, until: datetime | None = None) -> list[RecordingFound]:
    """Every recording of the account created in [since, until), oldest first; TwilioCallError when Twilio fails."""
    try:
        found = client.recordings.list(
            date_created_after=since, **({"date_created_before": until} if until is not None else {})
        )
    except TwilioException as exc:
        raise twilio_error(exc) from None
    except OSError as exc:
        raise TwilioCallError(f"could not reach Twilio to list recordings: {exc}") from None
    recordings = [
        RecordingFound(
            sid=item.sid,
            call_sid=item.call_sid or "",
            account_sid=item.account_sid or "",
            status=item.status or "completed",
            duration=_int(item.duration),
            url=_API + (item.uri or "").removesuffix(".json"),
            created=item.date_created,
            source=item.source,
        )
        for item in found
    ]
    return sorted(recordings, key=lambda r: (r.created is None, r.created or since, r.sid))


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
