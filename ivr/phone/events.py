"""A real call as Twilio saw it, turned into a recorded call that replay can run.

Twilio's Call Events resource lists every request Twilio made for a call and what the app
answered (`GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Events.json`, readable 15 minutes
after the call ends). Each event is `{"request": {"url", "method", "parameters"}, "response":
{"date_created", "request_duration", "response_code", "content_type", "response_body"}}`, with the
parameter names in snake_case (`call_sid`, `dial_call_status`).

`events_to_recording` keeps the voice webhooks of the call (`.../voice/<flow>[/<state>]`) in time
order and gives back the lines of a recording in `ivr.phone.recording`'s format, with Twilio's webhook
parameter names (`CallSid`, `DialCallStatus`). Everything else is dropped: status callbacks
(`/twilio/status`), recording callbacks, the REST request that created an outbound call, and the
webhooks of other call legs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioException

from ivr.errors import TwilioCallError
from ivr.outbound.client import twilio_error
from ivr.phone.recording import FORMAT_VERSION

__all__ = ["call_sids", "events_to_recording", "fetch_events", "load_events_file", "webhook_name", "write_recording"]

_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
# The path of a voice webhook after the public URL's own prefix: /voice/<flow> or /voice/<flow>/<state>.
_VOICE_PATH = re.compile(r"(?P<prefix>.*?)/voice/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)?/?")
# Twilio's webhook names that are not the snake_case key in PascalCase: <Gather>'s action gets
# `msg=Gather End`, lower case.
_NAMES = {"msg": "msg"}


def fetch_events(client, call_sid: str) -> list[dict]:
    """Every event of `call_sid` through the REST client, as `{"request": ..., "response": ...}` dicts."""
    if not _CALL_SID.fullmatch(call_sid or ""):
        raise TwilioCallError(f"{call_sid!r} is not a call SID (CA followed by 32 hexadecimal digits)")
    try:
        return [
            {"request": event.request, "response": event.response} for event in client.calls(call_sid).events.list()
        ]
    except TwilioException as exc:
        raise twilio_error(exc) from None


def load_events_file(path: str | Path) -> list[dict]:
    """The events saved in a JSON file: a page as Twilio returns it (`{"events": [...], ...}`) or a plain list."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return data["events"]
    if isinstance(data, list):
        return data
    raise ValueError(f"{path}: neither a page of Twilio call events (an 'events' list) nor a list of events")


def webhook_name(key: str) -> str:
    """Twilio's webhook parameter name for an event's snake_case key: call_sid -> CallSid, msg -> msg."""
    if key in _NAMES:
        return _NAMES[key]
    if key != key.lower():
        return key  # not snake_case: already the name Twilio sent
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def call_sids(events: list[dict]) -> list[str]:
    """The calls whose voice webhooks are among `events`, each once, in the order they first appear."""
    found: dict[str, None] = {}
    for event in events:
        request = event.get("request") or {}
        sid = (request.get("parameters") or {}).get("call_sid")
        if (
            isinstance(sid, str)
            and _CALL_SID.fullmatch(sid)
            and _VOICE_PATH.fullmatch(urlsplit(request.get("url") or "").path)
        ):
            found.setdefault(sid, None)
    return list(found)


def events_to_recording(events: list[dict], call_sid: str) -> list[dict]:
    """The lines of a recording (header first) for the voice webhooks of `call_sid` among `events`."""
    webhooks = []
    for index, event in enumerate(events):
        request = event.get("request") or {}
        parameters = request.get("parameters") or {}
        match = _VOICE_PATH.fullmatch(urlsplit(request.get("url") or "").path)
        if not match or parameters.get("call_sid", call_sid) != call_sid:
            continue
        webhooks.append((_event_time(event, index), index, request, event.get("response") or {}, match))
    if not webhooks:
        raise ValueError(f"no voice webhooks of {call_sid} among {len(events)} events")
    # Twilio's times have whole seconds, so its own order breaks ties; a list that runs newest first
    # is read backwards before sorting.
    if webhooks[0][0] > webhooks[-1][0]:
        webhooks.reverse()
    webhooks.sort(key=lambda item: item[0])
    first_url, first_match = webhooks[0][2]["url"], webhooks[0][4]
    parts = urlsplit(first_url)
    header = {
        "ivr_recording": FORMAT_VERSION,
        "call_sid": call_sid,
        "flows": {},
        "public_url": urlunsplit((parts.scheme, parts.netloc, first_match["prefix"], "", "")),
        "started": _iso(webhooks[0][0]),
        "masked": False,
        "source": "twilio-events",
    }
    lines = [header]
    for moment, _index, request, response, _match in webhooks:
        lines.append(
            {
                "t": _iso(moment),
                "method": (request.get("method") or "POST").upper(),
                "url": request["url"],
                "params": {
                    webhook_name(key): "" if value is None else str(value)
                    for key, value in (request.get("parameters") or {}).items()
                },
                "status": int(response.get("response_code") or 0),
                "twiml": _body(response.get("response_body")),
            }
        )
    return lines


def write_recording(lines: list[dict], path: str | Path) -> Path:
    """Write the lines as a recording file: one compact JSON object per line, UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
    return path


def _event_time(event: dict, index: int) -> datetime:
    created = (event.get("response") or {}).get("date_created")
    if not created:
        raise ValueError(f"event {index} ({(event.get('request') or {}).get('url')}) has no response.date_created")
    try:
        moment = parsedate_to_datetime(created)  # Twilio's RFC 2822 form: "Tue, 11 Aug 2020 17:44:08 +0000"
    except (TypeError, ValueError):
        moment = datetime.fromisoformat(created)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _body(body: str | None) -> str:
    # The Events resource gives the body as sent; Event Streams give it base64-encoded. Accept both.
    if not body:
        return ""
    if body.lstrip().startswith("<"):
        return body
    try:
        decoded = base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return body
    return decoded if decoded.lstrip().startswith("<") else body
