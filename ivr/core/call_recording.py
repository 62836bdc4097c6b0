"""Recording the whole call (`call_recording:`), as data. No I/O here.

    intro:
      say: This call is recorded for quality.
      announces_recording: true
      call_recording: {start: {channels: dual, track: both, trim: true}}
      next: menu
    card:
      call_recording: {pause: {behavior: skip}}   # or `call_recording: pause`
      next: pay
    after_card:
      call_recording: resume                      # `stop` ends it for good
      next: menu

`start` is TwiML: `<Start><Recording .../>` heads the document of the state that starts it, its
status callback going to /twilio/recording?flow=F&state=S&kind=call. `pause`, `resume` and `stop`
are REST requests on the call's current recording (`Twilio.CURRENT`): such a state is a kind of
`run:` (`ControlRecording`), so the walk stops there and the adapter carries out a `RecordingCall`
during the request, resuming with its result: `next` once Twilio agreed, the state's `on_error`
(else the flow's error state) when it did not. So a pause has taken effect before the document
that follows it is sent.

The session keeps `call_recording`: "on" (started or resumed), "paused" or "stopped";
`recording_running(session)` says whether a whole-call recording may be running.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.core import flow as f
from ivr.core.effects import HookResult

__all__ = [
    "CALL_KIND",
    "CURRENT",
    "OPERATIONS",
    "CallRecording",
    "ControlRecording",
    "RecordingCall",
    "note_started",
    "recording_call",
    "recording_event",
    "recording_running",
]

OPERATIONS = ("start", "pause", "resume", "stop")
CHANNELS = ("mono", "dual")
TRACKS = ("inbound", "outbound", "both")
PAUSE_BEHAVIORS = ("skip", "silence")
CURRENT = "Twilio.CURRENT"  # the REST API's name for the call's recording in progress
CALL_KIND = "call"  # `kind=call` on the status callback's URL: a whole-call recording, not a voicemail
# The session's `call_recording` after each operation Twilio carried out.
SESSION_VALUE = {"start": "on", "resume": "on", "pause": "paused", "stop": "stopped"}
# The Status each REST operation sets on the recording.
REST_STATUS = {"pause": "paused", "resume": "in-progress", "stop": "stopped"}


@dataclass(frozen=True, slots=True)
class CallRecording:
    """A state's `call_recording:`: the operation and, for start, how to record; for pause, what fills the gap."""

    op: str
    pos: f.Pos
    channels: str | None = None
    track: str | None = None
    trim: bool | None = None
    pause_behavior: str | None = None  # skip | silence (Twilio's default: silence)

    @property
    def turns_on(self) -> bool:
        """Whether a recording may run after it (start, resume)."""
        return self.op in ("start", "resume")


@dataclass(frozen=True, slots=True)
class ControlRecording(f.Run):
    """The action of a state that pauses, resumes or stops the recording: a `run:` that the adapter carries out
    with Twilio's REST API instead of a hook."""

    recording: CallRecording | None = None


@dataclass(frozen=True, slots=True)
class RecordingCall:
    """A REST request to make during the webhook: `Status` (and `PauseBehavior`) on the call's current recording.
    `name` ("call_recording:pause") names its row in the journal; `context` carries the call_sid and key."""

    name: str
    flow: str
    state: str
    op: str
    status: str
    pause_behavior: str | None
    context: dict

    @property
    def call_sid(self) -> str:
        """The call whose recording it changes."""
        return self.context.get("call_sid", "")


def recording_call(action: ControlRecording, flow_id: str, state: str, call_sid: str, key: str) -> RecordingCall:
    """The request a pause/resume/stop state asks the adapter to make."""
    rec = action.recording
    return RecordingCall(
        name=f"call_recording:{rec.op}",
        flow=flow_id,
        state=state,
        op=rec.op,
        status=REST_STATUS[rec.op],
        pause_behavior=rec.pause_behavior if rec.op == "pause" else None,
        context={"call_sid": call_sid, "key": key},
    )


def recording_event(session: dict, action: ControlRecording, result: HookResult) -> str:
    """The route a REST operation's result takes (next, or error), noting in the session what Twilio agreed to."""
    if result.error is not None:
        return f.ERROR_EVENT
    session["call_recording"] = SESSION_VALUE[action.recording.op]
    return f.NEXT_EVENT


def note_started(session: dict, state: f.State | None) -> bool:
    """Entering a state that starts the recording (in its TwiML): note it; whether the session changed."""
    rec = getattr(state, "call_recording", None)
    if rec is None or rec.op != "start" or session.get("call_recording") == "on":
        return False
    session["call_recording"] = "on"
    return True


def recording_running(session: dict) -> bool:
    """Whether a whole-call recording may be running on this call (started or resumed, not paused or stopped)."""
    return session.get("call_recording") == "on"
