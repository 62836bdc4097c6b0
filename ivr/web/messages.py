"""Voicemail that reaches someone: messages kept from Record's callbacks and handed to `on_message`.

Twilio posts a recording callback when a recording is ready, and, for `transcribe: true`, a
transcription callback later (or never: short, long or failed recordings get none). Either may
come first and either may be retried. Each message is stored under its RecordingSid; the
`on_message` hook gets it once when the recording is ready, and once more when a transcription
arrives after that delivery.

Effectively once: a delivery is a claim with a lease (`Claim`), taken in the same atomic update
that stores the callback, so concurrent copies of one callback deliver once. A claim whose lease
ran out without completing is taken again (the hook gets the same RecordingSid and a higher
`attempt`, to recognise a retry); a transcription stored while a delivery runs is claimed when that
delivery completes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["DELIVERY_LEASE", "MESSAGE_TTL", "Claim", "MessageBox"]

MESSAGE_TTL = 30 * 24 * 3600  # seconds a message is kept for `python -m ivr messages`
# Seconds a deliverer holds a claim: a hook's budget (at most 10 s) or a text's request, with room to spare.
DELIVERY_LEASE = 60.0
_PREFIX = "message:"


class MessageBox:
    """Messages in the session store, keyed `message:<RecordingSid>`, each with its delivery claim."""

    def __init__(self, store) -> None:
        self.store = store

    def recording(
        self, params: dict, flow: str, state: str, session: dict | None, now: datetime
    ) -> tuple[dict, Claim | None]:
        """Store a recording callback; with it, the claim of a delivery due now (None when none is)."""
        claimed: list[Claim | None] = []

        def update(message):
            message = message or _new(params, flow, state, now)
            message.update(
                url=params.get("RecordingUrl", ""),
                duration=_int(params.get("RecordingDuration")),
                status=params.get("RecordingStatus", "completed"),
                updated=_iso(now),
            )
            if session:
                message.setdefault("from", session.get("caller", {}).get("From", ""))
                message.setdefault("to", session.get("caller", {}).get("To", ""))
                message["vars"] = dict(session.get("vars", {}))
            claimed.append(_claim(message, now))
            return message

        message = self.store.update(_key(params), update, MESSAGE_TTL)
        return message, claimed[-1]

    def transcription(self, params: dict, flow: str, state: str, now: datetime) -> tuple[dict, Claim | None]:
        """Store a transcription callback; with it, the claim of a delivery due now (None when none is)."""
        claimed: list[Claim | None] = []

        def update(message):
            message = message or _new(params, flow, state, now)
            text = params.get("TranscriptionText", "")
            status = params.get("TranscriptionStatus", "completed")
            message["transcription"] = {"text": text, "status": status}
            message["updated"] = _iso(now)
            claimed.append(_claim(message, now))
            return message

        message = self.store.update(_key(params), update, MESSAGE_TTL)
        return message, claimed[-1]

    def claim_due(self, recording_sid: str, now: datetime) -> tuple[dict | None, Claim | None]:
        """Claim a delivery that is due (an expired claim that never completed, say); (message, claim)."""
        claimed: list[Claim | None] = [None]

        def update(message):
            if message is not None:
                claimed.append(_claim(message, now))
            return message

        message = self.store.update(_PREFIX + recording_sid, update, MESSAGE_TTL)
        return message, claimed[-1]

    def delivered(self, claim: Claim, record: dict, now: datetime) -> tuple[dict | None, Claim | None]:
        """Note how a claimed delivery went; after a success, claim what became due meanwhile (a late transcription)."""
        claimed: list[Claim | None] = [None]

        def update(message):
            if message is None:
                return None
            message.setdefault("deliveries", []).append({"at": _iso(now), **record})
            if (message.get("claim") or {}).get("id") == claim.id:
                del message["claim"]
            if record.get("error") is None:
                message["delivered"] = True
                message["delivered_transcription"] = claim.transcription
                claimed.append(_claim(message, now))
            return message

        message = self.store.update(_PREFIX + claim.recording_sid, update, MESSAGE_TTL)
        return message, claimed[-1]

    def release(self, claim: Claim) -> None:
        """Give a claim back with nothing delivered (the flow has no on_message to deliver to)."""

        def update(message):
            if message is not None and (message.get("claim") or {}).get("id") == claim.id:
                del message["claim"]
            return message

        self.store.update(_PREFIX + claim.recording_sid, update, MESSAGE_TTL)

    def stale(self, now: datetime) -> list[str]:
        """RecordingSids whose delivery was claimed by a lease that ran out without completing."""
        moment = now.timestamp()
        found = self.store.scan(_PREFIX)
        return [m["recording_sid"] for _, m in found if m.get("claim") and m["claim"]["until"] <= moment and _due(m)]

    def get(self, recording_sid: str) -> dict | None:
        """The message of a recording, or None when none is stored."""
        return self.store.get(_PREFIX + recording_sid)

    def recent(self, limit: int = 20) -> list[dict]:
        """The newest messages first."""
        messages = [value for _, value in self.store.scan(_PREFIX)]
        messages.sort(key=lambda m: m.get("created", ""), reverse=True)
        return messages[:limit]


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery taken by one deliverer until `until` (a lease): of the recording, or of a transcription update."""

    recording_sid: str
    id: str
    update: bool  # a transcription that came after the recording was delivered
    until: float
    attempt: int
    message: dict  # the message as it was claimed: what the hook is given
    transcription: dict | None


def _due(message: dict) -> str | None:
    """What of a message is still to be delivered: "recording", "transcription" or None."""
    if message.get("status") != "completed":
        return None
    if not message.get("delivered"):
        return "recording"
    if message.get("transcription") and message["transcription"] != message.get("delivered_transcription"):
        return "transcription"
    return None


def _claim(message: dict, now: datetime) -> Claim | None:
    """Take the delivery that is due, in the caller's atomic update; None while another's lease runs."""
    moment = now.timestamp()
    held = message.get("claim")
    if held and held["until"] > moment:
        return None  # in progress elsewhere: what came meanwhile is claimed when it completes
    what = _due(message)
    if what is None:
        message.pop("claim", None)
        return None
    attempt = (held or {}).get("attempt", 0) + 1 if held else 1
    message["claim"] = {"id": secrets.token_hex(8), "what": what, "until": moment + DELIVERY_LEASE, "attempt": attempt}
    return Claim(
        message["recording_sid"],
        message["claim"]["id"],
        what == "transcription",
        moment + DELIVERY_LEASE,
        attempt,
        {k: v for k, v in message.items() if k not in ("claim", "deliveries")},
        message.get("transcription"),
    )


def _key(params: dict) -> str:
    sid = params.get("RecordingSid", "")
    if not sid:
        raise ValueError("a recording callback without RecordingSid")
    return _PREFIX + sid


def _new(params: dict, flow: str, state: str, now: datetime) -> dict:
    return {
        "recording_sid": params.get("RecordingSid", ""),
        "call_sid": params.get("CallSid", ""),
        "flow": flow,
        "state": state,
        "url": params.get("RecordingUrl", ""),
        "duration": _int(params.get("RecordingDuration")),
        "status": None,
        "transcription": None,
        "created": _iso(now),
        "updated": _iso(now),
    }


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
