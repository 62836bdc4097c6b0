"""A recording's callbacks on the built-in phone: Twilio's recording status callback when a <Record> ends,
and the transcription it may send later (mixed into PhoneCall)."""

from __future__ import annotations

import urllib.parse

from ivr.errors import PhoneError
from ivr.phone import params as twilio_params

__all__ = ["RecordingCallbacks"]


class RecordingCallbacks:
    """The recording callbacks of a PhoneCall (which this is mixed into)."""

    def transcription(self, text: str, *, status: str = "completed") -> None:
        """The transcription of the last recording arrives (it may never come: call it, or not)."""
        if not self._transcriptions:
            raise PhoneError("no recording of this call asked for a transcription (transcribe: true)")
        url, recording = self._transcriptions.pop(0)
        fields = twilio_params.transcription_fields(self.phone.account_sid, self.phone.new_sid("TR"), text, status)
        self._callback(url, {**self._params("completed" if self.ended else "in-progress"), **recording, **fields})

    def _recording_ready(self, verb, recording: dict[str, str]) -> None:
        """After a recording ends, Twilio posts its status callback, and queues its transcription."""
        base = self._doc_url or self.phone.url("/")
        callback = verb.get("recordingStatusCallback")
        if callback:
            params = twilio_params.recording_status_params(self.phone.account_sid, self.sid, recording)
            self._callback(urllib.parse.urljoin(base, callback), params)
        if verb.get("transcribe") == "true" and verb.get("transcribeCallback"):
            fields = {k: recording[k] for k in ("RecordingSid", "RecordingUrl")}
            self._transcriptions.append((urllib.parse.urljoin(base, verb.get("transcribeCallback")), fields))
