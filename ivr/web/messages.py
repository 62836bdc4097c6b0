"""Voicemail that reaches someone: messages kept from Record's callbacks and handed to `on_message`.

Twilio posts a recording callback when a recording is ready, and, for `transcribe: true`, a
transcription callback later (or never: short, long or failed recordings get none). Either may
come first and either may be retried. Each message is stored under its RecordingSid; the
`on_message` hook gets it once when the recording is ready, and once more when a transcription
arrives after that delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["MESSAGE_TTL", "MessageBox"]

MESSAGE_TTL = 30 * 24 * 3600  # seconds a message is kept for `python -m ivr messages`
_PREFIX = "message:"


class MessageBox:
    """Messages in the session store, keyed `message:<RecordingSid>`."""

    def __init__(self, store) -> None:
        self.store = store

    def recording(self, params: dict, flow: str, state: str, session: dict | None, now: datetime) -> tuple[dict, bool]:
        """Store a recording callback; True when the message should be delivered now."""
        deliver = []

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
            deliver.append(message["status"] == "completed" and not message.get("delivered"))
            return message

        message = self.store.update(_key(params), update, MESSAGE_TTL)
        return message, deliver[-1]

    def transcription(self, params: dict, flow: str, state: str, now: datetime) -> tuple[dict, bool]:
        """Store a transcription callback; True when it updates a message delivered already."""
        update_delivery = []

        def update(message):
            message = message or _new(params, flow, state, now)
            text = params.get("TranscriptionText", "")
            status = params.get("TranscriptionStatus", "completed")
            old = message.get("transcription") or {}
            message["transcription"] = {"text": text, "status": status}
            message["updated"] = _iso(now)
            update_delivery.append(bool(message.get("delivered")) and old != message["transcription"])
            return message

        message = self.store.update(_key(params), update, MESSAGE_TTL)
        return message, update_delivery[-1]

    def delivered(self, recording_sid: str, record: dict, now: datetime) -> None:
        """Remember a delivery attempt (and whether it failed) with the message."""

        def update(message):
            if message is None:
                return None
            message.setdefault("deliveries", []).append({"at": _iso(now), **record})
            if record.get("error") is None:
                message["delivered"] = True
            return message

        self.store.update(_PREFIX + recording_sid, update, MESSAGE_TTL)

    def recent(self, limit: int = 20) -> list[dict]:
        """The newest messages first."""
        messages = [value for _, value in self.store.scan(_PREFIX)]
        messages.sort(key=lambda m: m.get("created", ""), reverse=True)
        return messages[:limit]


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
