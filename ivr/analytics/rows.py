"""What the journal keeps of a webhook, as rows: pure functions of what the webhook saw.

Event rows follow `EVENT_COLUMNS`; a voice webhook also moves the call's summary on (`ANSWERED`),
and a terminal status callback closes it (`ENDED`). The kinds of event row:

    call         the call entered a flow (detail: Direction)
    entered      a state was entered (every state of an inline chain too)
    key, speech  the caller answered a Gather (detail: the route taken; input; confidence)
    no_input     nothing came (a Gather's timeout, a Record with no recording)
    no_match     what came fits no route
    max_reached  no_input or no_match once more than the state allows (detail: which)
    dial, queue  a Dial's or an Enqueue's outcome (detail: DialCallStatus, QueueResult)
    recording    a Record got a recording
    pay          a Pay ended (detail: Twilio's Result, e.g. success; never card data, nor what the caller keyed)
    agent        an agent's conversation ended (detail: the route it chose, limit, error, or hangup for a caller who
                 hung up mid-conversation; never what was said)
    agent_turn   a caller's prompt the agent answered (one row per turn of the conversation that just ended)
    agent_reply  a reply the model streamed (latency_ms: its time to the first token)
    tool         a tool the agent called (detail: its outcome, or refused or error; input: the tool's name;
                 latency_ms); never its arguments
    input        any other waiting verb's result
    wait         a filler's Redirect picked up a slow hook's result (or heard the filler again): no caller action
    split        an A/B split chose a variant (detail: the variant's state)
    hook         a `run:` hook returned (detail: its outcome; latency_ms)
    error        a hook failed, or the webhook answered with the error state
    text         a text was sent (detail: the number's hash is not kept, only that it went)
    status       a non-final status callback (detail: CallStatus)
    ended        the final status callback (detail: CallStatus)
"""

from __future__ import annotations

import hashlib
import hmac
from email.utils import parsedate_to_datetime

from ivr.core.splits import caller_number

__all__ = [
    "MARKS",
    "TERMINAL",
    "agent_rows",
    "answer_class",
    "caller_number",
    "ended_rows",
    "keyed_hash",
    "twilio_time",
]

MARKS = ("contained", "transferred", "voicemail", "failed")
TERMINAL = ("completed", "busy", "no-answer", "failed", "canceled")


def keyed_hash(key: bytes, number: str | None) -> str | None:
    """HMAC-SHA256 of a number under the analytics key (128 bits shown): the same caller, never the number.

    A plain or salted hash of a phone number falls to brute force in minutes (there are about 10^10
    numbers per country code); without the key there is nothing to try them against."""
    if number is None:
        return None
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:32]


def answer_class(action: str | None, outcome: str | None, params: dict, reached_max: bool) -> str:
    """The kind of event a waiting verb's result is (see the module's table)."""
    if outcome == "wait":  # a filler's Redirect picking up slow work: not the caller's action
        return "wait"
    if outcome in ("no_input", "no_recording", "no_match"):
        return "max_reached" if reached_max else ("no_match" if outcome == "no_match" else "no_input")
    if action == "Gather":
        return "speech" if params.get("SpeechResult") else "key"
    kinds = {"Record": "recording", "Dial": "dial", "Enqueue": "queue", "Pay": "pay", "Agent": "agent"}
    return kinds.get(action or "", "input")


def agent_rows(sid: str, flow: str, state: str, summary: object, at: float, source: str) -> list[tuple]:
    """The figures of the conversation that ended in `state`, from the summary the conversation keeps in the
    session (`agent`): a row per turn, per model reply (its latency) and per tool call. Nothing of what was said."""
    if not isinstance(summary, dict) or summary.get("state") != state:
        return []  # no conversation (it could not start), or another state's

    def row(kind, detail=None, given=None, ms=None):
        return (sid, flow, state, kind, detail, given, None, None, ms, at, None, None, source)

    rows = [row("agent_turn") for _ in range(int(summary.get("turns") or 0))]
    rows += [row("agent_reply", ms=_number(ms)) for ms in summary.get("latency_ms") or ()]
    for call in summary.get("tools") or ():
        outcome = "error" if call.get("error") and call.get("outcome") != "refused" else call.get("outcome")
        seconds = _number(call.get("seconds"))
        rows.append(row("tool", outcome, call.get("name"), None if seconds is None else round(seconds * 1000, 1)))
    return rows


def twilio_time(params: dict) -> float | None:
    """A callback's `Timestamp` (RFC 2822, as Twilio sends it) in Unix seconds; None when absent or unreadable."""
    text = params.get("Timestamp")
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _number(text: str | None, kind=float):
    try:
        return kind(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def ended_rows(params: dict, at: float, source: str) -> tuple[tuple, tuple | None]:
    """A status callback's event row, and for a final status the call's closing (`ENDED`'s values)."""
    sid, status = params.get("CallSid", ""), params.get("CallStatus", "")
    final = status in TERMINAL
    stamp = twilio_time(params)
    event = (
        sid, None, None, "ended" if final else "status", status, None, None, None, None, at, stamp,
        _number(params.get("SequenceNumber"), int), source,
    )  # fmt: skip
    if not final:
        return event, None
    duration = _number(params.get("CallDuration"))
    return event, (sid, source, params.get("Direction") or None, stamp if stamp is not None else at, status, duration)
