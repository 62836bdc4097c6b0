"""What Twilio sends: the parameters of each webhook and callback the built-in phone makes, named
and spelled as Twilio's own requests are."""

from __future__ import annotations

from email.utils import formatdate

__all__ = [
    "answering_party_params",
    "call_params",
    "queue_fields",
    "recording_fields",
    "recording_status_params",
    "status_fields",
    "transcription_fields",
]

API_VERSION = "2010-04-01"
# Twilio geolocates numbers; the phone's numbers are nowhere in particular.
_PLACES = {
    prefix + part: "US" if part == "Country" else ""
    for prefix in ("From", "To", "Caller", "Called")
    for part in ("City", "State", "Zip", "Country")
}


def call_params(account_sid: str, call_sid: str, status: str, direction: str, from_: str, to: str) -> dict[str, str]:
    """The parameters of every voice webhook and status callback of a call."""
    params = {"AccountSid": account_sid, "ApiVersion": API_VERSION, "CallSid": call_sid}
    params.update(CallStatus=status, Direction=direction, From=from_, To=to)
    params.update(Caller=from_, Called=to)
    params.update(_PLACES)
    return params


def status_fields(duration: int, moment: float, sequence: int) -> dict[str, str]:
    """What a status callback adds: the call's duration, when it happened (RFC 2822, as Twilio sends it), and
    its place in the call's order (SequenceNumber, from 0)."""
    return {
        "CallDuration": str(duration),
        "Timestamp": formatdate(moment, usegmt=True),
        "SequenceNumber": str(sequence),
    }


def answering_party_params(account_sid: str, child_sid: str, parent_sid: str, from_: str, to: str) -> dict[str, str]:
    """The parameters of a screened dial's answering-party leg: its own CallSid, ParentCallSid the caller's."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": child_sid,
        "ParentCallSid": parent_sid,
        "CallStatus": "in-progress",
        "Direction": "outbound-dial",
        "From": from_,
        "To": to,
    }


def recording_fields(account_sid: str, recording_sid: str, seconds: int) -> dict[str, str]:
    """What a <Record> adds to its action request."""
    url = _resource_url(account_sid, "Recordings", recording_sid)
    return {"RecordingUrl": url, "RecordingSid": recording_sid, "RecordingDuration": str(seconds)}


def recording_status_params(account_sid: str, call_sid: str, recording: dict[str, str]) -> dict[str, str]:
    """The recordingStatusCallback Twilio posts when a recording (from `recording_fields`) is ready."""
    return {
        "AccountSid": account_sid,
        "CallSid": call_sid,
        "RecordingSid": recording["RecordingSid"],
        "RecordingUrl": recording["RecordingUrl"],
        "RecordingStatus": "completed",
        "RecordingDuration": recording["RecordingDuration"],
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }


def transcription_fields(account_sid: str, transcription_sid: str, text: str, status: str) -> dict[str, str]:
    """What a transcribeCallback adds to the call's parameters and its recording's."""
    return {
        "TranscriptionSid": transcription_sid,
        "TranscriptionText": text,
        "TranscriptionStatus": status,
        "TranscriptionUrl": _resource_url(account_sid, "Transcriptions", transcription_sid),
    }


def queue_fields(result: str, queue_sid: str, seconds: int) -> dict[str, str]:
    """What an <Enqueue> adds to its action request when the caller leaves the queue."""
    return {"QueueResult": result, "QueueSid": queue_sid, "QueueTime": str(seconds)}


def _resource_url(account_sid: str, kind: str, sid: str) -> str:
    return f"https://api.twilio.com/{API_VERSION}/Accounts/{account_sid}/{kind}/{sid}"
