"""Recorded calls: every webhook of a call as JSON lines, written by the app, read by replay.

A recording is one `<CallSid>.jsonl` file. Its first line is a header
`{"ivr_recording": 1, "call_sid", "flows": {id: content hash}, "public_url", "started", "masked",
"source"}`; each further line is one webhook: `{"t", "method", "url", "params", "status", "twiml"}`,
plus `"redacted": true` when a sensitive state's input was blanked and `"hooks"`, the results of
the hooks the request ran, and on an agent state's `<Connect action>` request `"agent"`: the conversation
that ended (what the caller said and keyed, what they heard, each model reply with its tool calls, each
tool's result, the outcome). Lines are appended and flushed
one at a time, so a crash mid-call loses at most the line being written. The signature header is
never stored.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from ivr.core.pay import no_numbers

__all__ = [
    "FORMAT_VERSION",
    "REDACTED",
    "Recorder",
    "forget_recordings",
    "mask_numbers",
    "read_recording",
]

FORMAT_VERSION = 1
REDACTED = "[redacted]"
_TORN_MARK = '{"torn_line_above":true}'
_INPUT_PARAMS = ("Digits", "SpeechResult", "UnstableSpeechResult")
_NUMBER_RE = re.compile(r"(\+|%2B)(\d{8,15})", re.IGNORECASE)  # also URL-encoded, in GET query strings
_SID_RE = re.compile(r"[A-Za-z0-9]{1,64}\Z")
# What <Pay>'s action carries besides its result: never kept (the engine reads none of it; ivr.core.pay).
_CARD_PARAMS = ("ExpirationDate", "SecurityCode", "PaymentCardPostalCode", "BankRoutingNumber")
_CARD_MASKED = ("PaymentCardNumber", "BankAccountNumber")  # kept as Twilio masks them: the last four digits
_ALL_BUT_LAST4 = re.compile(r"[0-9](?=(?:[^0-9]*[0-9]){4})")
_CONNECTOR_TEXT = ("PaymentError", "ConnectorError")


def _without_card_data(params: dict) -> dict:
    """A request's parameters with whatever a payment's could tell of a card beyond its last four digits removed."""
    params = dict(params)
    for key in _CARD_PARAMS:
        if params.get(key):
            params[key] = REDACTED
    for key in _CARD_MASKED:
        if params.get(key):
            params[key] = _ALL_BUT_LAST4.sub("x", params[key])
    for key in _CONNECTOR_TEXT:  # a connector's message may quote what the caller keyed
        if params.get(key):
            params[key] = no_numbers(params[key], limit=len(params[key]))
    return params


def mask_numbers(text: str) -> str:
    """Mask E.164 numbers, keeping the first four digits and the last two: +15551234567 -> +15550000067."""

    def mask(match: re.Match) -> str:
        digits = match.group(2)
        return match.group(1) + digits[:4] + "0" * (len(digits) - 6) + digits[-2:]

    return _NUMBER_RE.sub(mask, text)


class Recorder:
    """Appends each webhook of a call to `<directory>/<CallSid>.jsonl`."""

    def __init__(self, directory: str | Path, *, mask: bool = False, public_url: str | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mask = mask
        self.public_url = public_url
        self._lock = threading.Lock()

    def record(
        self,
        *,
        call_sid: str,
        method: str,
        url: str,
        params: dict,
        status: int,
        twiml: str,
        flows: dict[str, str],
        now: datetime,
        sensitive: bool = False,
        hooks: list[dict] | None = None,
        agent: dict | None = None,
    ) -> Path | None:
        """Append one webhook; the header goes first when the call's file is new."""
        if not _SID_RE.match(call_sid or ""):
            return None  # never let a request choose a file name
        params = _without_card_data(params)
        line: dict = {"t": _iso(now), "method": method, "url": url}
        if sensitive:
            secrets = [params[k] for k in _INPUT_PARAMS if params.get(k)]
            for key in _INPUT_PARAMS:
                if params.get(key):
                    params[key] = REDACTED
            for secret in secrets:  # a template may have read the input back, XML-escaped in the TwiML
                if len(secret) >= 3:
                    for form in (secret, escape(secret), escape(secret, {'"': "&quot;"})):
                        twiml = twiml.replace(form, REDACTED)
            twiml = _redact_speech(twiml)
            line["redacted"] = True
        if self.mask:
            params = {k: mask_numbers(v) for k, v in params.items()}
            twiml = mask_numbers(twiml)
            line["url"] = mask_numbers(url)
        line.update(params=params, status=status, twiml=twiml)
        if agent:  # the conversation that ended before this <Connect action> request: replay talks it again
            line["agent"] = json.loads(mask_numbers(json.dumps(agent))) if self.mask else agent
        if hooks:  # replay feeds these results back instead of calling the hooks
            line["hooks"] = [{k: v for k, v in h.items() if k not in ("seconds", "state")} for h in hooks]
        path = self.directory / f"{call_sid}.jsonl"
        with self._lock:
            new = not path.exists()
            torn = not new and _ends_torn(path)
            with path.open("a", encoding="utf-8") as out:
                if torn:  # the app stopped mid-line: close that line and mark it, so only it is lost
                    out.write("\n" + _TORN_MARK + "\n")
                if new:
                    header = {
                        "ivr_recording": FORMAT_VERSION,
                        "call_sid": call_sid,
                        "flows": flows,
                        "public_url": self.public_url,
                        "started": _iso(now),
                        "masked": self.mask,
                        "source": "app",
                    }
                    out.write(json.dumps(header, separators=(",", ":")) + "\n")
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
                out.flush()
        return path


def read_recording(path: str | Path) -> tuple[dict, list[dict]]:
    """The header and the webhook lines of a recording; a torn last line (a crash) is dropped."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip() or raw == _TORN_MARK:
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            if number == len(lines) or lines[number] == _TORN_MARK:
                continue  # a line the app was writing when it stopped
            raise ValueError(f"{path}:{number}: not a JSON line") from None
    if not records or records[0].get("ivr_recording") != FORMAT_VERSION:
        raise ValueError(f"{path}:1: not an ivr recording (format {FORMAT_VERSION} header expected)")
    return records[0], records[1:]


def forget_recordings(directory: str | Path, number: str, call_sids: Collection[str] = ()) -> tuple[int, int]:
    """Delete the recordings of a caller: calls in `call_sids`, and calls with `number` as a parameter's value
    (From, To, Caller...), in clear or masked. (deleted, of which matched by the masked number alone: a masked
    number is shared by every number with the same first four and last two digits.)"""
    folder = Path(directory)
    if not folder.is_dir():
        return 0, 0
    masked = mask_numbers(number)
    deleted = by_mask = 0
    for path in sorted(folder.glob("*.jsonl")):
        try:
            header, lines = read_recording(path)
            values = {str(value) for line in lines for value in (line.get("params") or {}).values()}
        except (ValueError, OSError):  # not a recording, or torn beyond reading: its text decides
            header = {"masked": True}
            text = path.read_text(encoding="utf-8", errors="replace")
            values = {number} if number in text else {masked} if masked in text else set()
        if path.stem in call_sids or header.get("call_sid") in call_sids or number in values:
            path.unlink(missing_ok=True)
            deleted += 1
        elif header.get("masked") and masked in values:
            path.unlink(missing_ok=True)
            deleted += 1
            by_mask += 1
    return deleted, by_mask


def _redact_speech(twiml: str) -> str:
    """Blank every Say of an answer to sensitive input: a read-back may have reformatted it ("4 3 2 1")."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return REDACTED
    for say in root.iter("Say"):
        say.text = REDACTED
        for child in list(say):
            say.remove(child)
    return '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, encoding="unicode")


def _ends_torn(path: Path) -> bool:
    with path.open("rb") as raw:
        raw.seek(0, 2)
        if raw.tell() == 0:
            return False
        raw.seek(-1, 2)
        return raw.read(1) != b"\n"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
