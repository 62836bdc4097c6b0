"""Studio's call widgets: Connect Call To, Record Voicemail, Enqueue Call and Send to Flex.

Each widget becomes one waiting state of the flow language (`dial`, `record`, `enqueue`) whose
outcomes route where the widget's transitions led. Studio's events are coarser than Twilio's
results, so the routes spell out which result each event stood for (the sources are cited where
the mapping is made). Call Recording and Capture Payments live in ivr/studio/widgets_pay.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ivr.studio import liquid
from ivr.studio.model import Context, Piece, Widget, converts, flag, number, reads
from ivr.studio.split import absorb_split

__all__ = ["DIAL_STATUSES", "connect_call_to", "enqueue_call", "record_voicemail", "send_to_flex"]

# Twilio's DialCallStatus values (TwiML <Dial>, "DialCallStatus"): what a split after a Connect Call
# To can test, and the dial outcomes of the flow language.
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
_DIAL_OUTPUTS = {"DialCallStatus": "dial.status", "DialCallDuration": "dial.duration", "DialCallSid": "dial.sid"}
_RECORD_OUTPUTS = {
    # Twilio's own URL, trusted whole: unmarked, a play or HTTP URL template would percent-encode it.
    "RecordingUrl": "recording.url | safe",
    "RecordingDuration": "recording.duration",
    "RecordingSid": "recording.sid",
    "Digits": "recording.digits",
}
_QUEUE_OUTPUTS = {"QueueResult": "queue.result", "QueueTime": "queue.time"}
WORKFLOW_SID = re.compile(r"WW[0-9a-fA-F]{32}\Z")  # what the flow language's enqueue.workflow takes


# --- Connect Call To -----------------------------------------------------------------------------

_NOUNS = {"number": "number", "number-multi": "number", "client": "client", "sip": "sip", "conference": "conference"}


@converts("connect-call-to")
def connect_call_to(widget: Widget, ctx: Context) -> Piece:
    """A `dial`; a split on its DialCallStatus right after it becomes the dial's outcome routes."""
    name = ctx.state(widget)
    noun = str(widget.prop("noun", "number"))
    kind = _NOUNS.get(noun)
    raw = widget.prop("sip_endpoint") if noun == "sip" else widget.prop("to")
    if kind is None or raw is None:
        what = f"connects to a {noun}" if kind is None else "names nobody to connect to"
        todo = f"Studio's Connect Call To {what}: dial the same party with `dial:` and route its outcomes"
        return ctx.todo(widget, f"{what}, which the flow language's dial cannot do", "hangup", todo=todo)
    comments: list[str] = []
    if noun == "number-multi":
        targets: Any = [liquid.text(ctx, widget, part.strip(), "to") for part in str(raw).split(",") if part.strip()]
        comments.append("Studio rang these numbers at once (simulring); the first to answer is connected.")
    else:
        targets = liquid.text(ctx, widget, str(raw).strip(), "to")
    dial: dict[str, Any] = {kind: targets}
    if kind == "conference" and re.match(r"CF[0-9a-fA-F]{32}\Z", str(raw).strip()):
        # <Dial><Conference> joins a conference by its name; a SID names a conference that already ran.
        ctx.report(widget, f"{raw} is a conference SID: the flow language's dial joins a conference by name")
    # Studio's Caller ID defaults to {{contact.channel.address}} (Connect Call To widget, "Caller ID":
    # https://www.twilio.com/docs/studio/widget-library/connect-call): the caller's own number.
    dial["caller_id"] = liquid.text(
        ctx, widget, str(widget.prop("caller_id", "{{contact.channel.address}}")), "caller_id"
    )
    if number(widget.prop("timeout")) is not None:
        dial["timeout"] = number(widget.prop("timeout"))
    if flag(widget.prop("record")):
        dial["record"] = True
    if widget.prop("sip_username") or widget.prop("sip_password"):
        ctx.report(
            widget,
            "SIP username and password are not carried over (a flow file is no place for a password): "
            "allow the SIP endpoint by IP access control list, or add the credentials to the dial by hand",
        )
        comments.append("Studio sent a SIP username and password with this dial; they are left out.")
    state: dict[str, Any] = {"dial": dial}
    # Studio's two events (https://www.twilio.com/docs/studio/widget-library/connect-call): callCompleted
    # whatever the DialCallStatus (busy and no-answer too), hangup when the caller hung up first.
    # Only a conference reports `answered`: a split testing it on another dial stays a split.
    statuses = DIAL_STATUSES if kind == "conference" else tuple(s for s in DIAL_STATUSES if s != "answered")
    folded = absorb_split(widget, "callCompleted", "DialCallStatus", ctx, accept=lambda v: v.lower() in statuses)
    if folded is not None:
        routes, rest = folded
        # A status that goes where No Match goes needs no route of its own.
        state["routes"] = {status.lower(): target for status, target in routes.items() if target != rest}
        state["next"] = rest
        if not state["routes"]:
            del state["routes"]
        comments.append("Studio split on the dial's DialCallStatus after this widget: those are the routes here.")
    else:
        state["next"] = ctx.target(widget, "callCompleted")
    if widget.next("hangup"):
        ctx.report(
            widget,
            "its hangup transition (the caller hung up) is not carried over: once the caller hangs up, "
            "Twilio stops asking the flow what to do",
        )
    return Piece().add(name, state, *comments)


@reads("connect-call-to")
def dial_output(widget: Widget, path: str, ctx: Context) -> str | None:
    return _DIAL_OUTPUTS.get(path)


# --- Record Voicemail ----------------------------------------------------------------------------


@converts("record-voicemail")
def record_voicemail(widget: Widget, ctx: Context) -> Piece:
    """A `record`: recordingComplete is `recorded`, noAudio `no_recording`, hangup a `when:` on the key."""
    name = ctx.state(widget)
    # Studio's defaults (Record Voicemail widget, "Optional configuration":
    # https://www.twilio.com/docs/studio/widget-library/record-voicemail): 5 seconds of silence,
    # no key stops the recording ("None"), 3600 seconds at most, no transcription.
    record: dict[str, Any] = {
        "max_length": number(widget.prop("max_length")) or 3600,
        "timeout": number(widget.prop("timeout")) if number(widget.prop("timeout")) is not None else 5,
        "finish_on_key": str(widget.prop("finish_on_key", "")),
    }
    beep = flag(widget.prop("play_beep"))
    if beep is not None:
        record["play_beep"] = beep
    trim = widget.prop("trim")
    if trim in ("trim-silence", "do-not-trim"):
        record["trim"] = trim == "trim-silence"
    comments: list[str] = []
    if flag(widget.prop("transcribe")):
        record["transcribe"] = True
        comments.append("The transcription reaches the on_message hook (docs/flows.md, Voicemail delivery).")
    for key in ("transcription_callback_url", "recording_status_callback_url"):
        if widget.prop(key):
            ctx.report(
                widget,
                f"{key} {widget.prop(key)} is not carried over: ivr receives "
                f"{'transcriptions' if key.startswith('transcription') else 'recordings'} itself and hands them "
                "to the flow's on_message hook; forward them from there",
            )
    piece = Piece()
    state: dict[str, Any] = {"record": record, "routes": {"no_recording": ctx.target(widget, "noAudio")}}
    done, hung_up = ctx.target(widget, "recordingComplete"), ctx.target(widget, "hangup")
    if widget.next("hangup") and hung_up != done:
        # Twilio ends a recording the caller hangs up on like any other, with Digits=hangup.
        check = f"{name}_ended"
        state["next"] = check
        piece.add(name, state, *comments)
        piece.add(
            check,
            {"when": [{"if": 'recording.digits == "hangup"', "next": hung_up}], "next": done},
            "Studio's hangup transition: the caller hung up to end the message.",
        )
        return piece
    if not widget.next("hangup") and done != ctx.END:
        comments.append(
            f"Studio ended the call's flow when the caller hung up to end the message; here it goes on to {done}."
        )
    state["next"] = done
    return piece.add(name, state, *comments)


@reads("record-voicemail")
def record_output(widget: Widget, path: str, ctx: Context) -> str | None:
    if path == "TranscriptionText":
        ctx.report(
            widget,
            "TranscriptionText is not known while the call goes on: Twilio posts the transcription later, "
            "and ivr hands it to the on_message hook",
        )
    return _RECORD_OUTPUTS.get(path)


# --- Enqueue Call and Send to Flex ---------------------------------------------------------------


def _enqueue_state(widget: Widget, ctx: Context, enqueue: dict[str, Any], comments: list[str]) -> Piece:
    """The enqueue state with Studio's three events as routes on QueueResult.

    Enqueue Call widget, "Transitions" (https://www.twilio.com/docs/studio/widget-library/enqueue-call):
    Failed to Enqueue is QueueResult "queue-full", Call Failed is "system-error", and Call Complete
    every other time the action URL is requested."""
    wait = widget.prop("wait_url") or widget.prop("waitUrl")
    if wait:
        enqueue["wait_url"] = liquid.text(ctx, widget, str(wait), "wait_url")
    method = str(widget.prop("wait_url_method") or widget.prop("waitUrlMethod") or "POST").upper()
    if wait and method != "POST":
        ctx.report(widget, f"the hold music URL is requested with {method} in Studio; ivr always uses POST")
    state = {
        "enqueue": enqueue,
        "routes": {
            "queue-full": ctx.target(widget, "failedToEnqueue"),
            "system-error": ctx.target(widget, "callFailure"),
        },
        "next": ctx.target(widget, "callComplete"),
    }
    return Piece().add(ctx.state(widget), state, *comments)


def _task(widget: Widget, ctx: Context, attributes_key: str, comments: list[str]) -> dict[str, Any]:
    """The TaskRouter task: its attributes (JSON, with templates in its texts), priority and timeout."""
    task: dict[str, Any] = {}
    raw = widget.prop(attributes_key)
    if raw is not None:
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            task["attributes"] = _templated(ctx, widget, parsed)
        else:
            ctx.report(
                widget,
                "its task attributes are not a JSON object once read (Liquid outside the JSON's texts?); "
                "left out: write them under enqueue.task.attributes by hand",
            )
            comments.append("Studio's task attributes could not be read as JSON; add them by hand.")
    for key in ("priority", "timeout"):
        if widget.prop(key) is not None:
            value = number(widget.prop(key))
            if value is None:
                ctx.report(widget, f"task {key} {widget.prop(key)!r} is not a whole number; left out")
            else:
                task[key] = value
    return task


def _templated(ctx: Context, widget: Widget, value: Any) -> Any:
    if isinstance(value, str):
        return liquid.text(ctx, widget, value, "task attributes")
    if isinstance(value, dict):
        return {str(k): _templated(ctx, widget, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_templated(ctx, widget, v) for v in value]
    return value


def _no_queue(widget: Widget, ctx: Context, what: str, todo: str) -> Piece:
    """A marked state for an enqueue the flow language cannot write: it fails, never waits in a queue."""
    return ctx.todo(widget, what, "failedToEnqueue", "callFailure", todo=todo)


def _workflow(widget: Widget, ctx: Context, sid: str, comments: list[str], attributes_key: str) -> Piece:
    if not WORKFLOW_SID.match(sid):
        what = f"its TaskRouter workflow {sid!r} is not a workflow SID (WW and 32 hex digits)"
        return _no_queue(widget, ctx, what, f"Studio's {widget.type} names workflow {sid!r}: write the workflow's SID")
    enqueue: dict[str, Any] = {"workflow": sid}
    task = _task(widget, ctx, attributes_key, comments)
    if task:
        enqueue["task"] = task
    return _enqueue_state(widget, ctx, enqueue, comments)


@converts("enqueue-call")
def enqueue_call(widget: Widget, ctx: Context) -> Piece:
    """An `enqueue` into a named queue, or a TaskRouter task when the widget names a workflow."""
    comments: list[str] = []
    if widget.prop("workflow_sid"):
        return _workflow(widget, ctx, str(widget.prop("workflow_sid")).strip(), comments, "task_attributes")
    queue = widget.prop("queue_name")
    if not queue:
        todo = "Studio's Enqueue Call names no queue: write `enqueue: QUEUE` and its routes"
        return _no_queue(widget, ctx, "it names no queue and no workflow", todo)
    return _enqueue_state(widget, ctx, {"name": liquid.text(ctx, widget, str(queue), "queue_name")}, comments)


@converts("send-to-flex")
def send_to_flex(widget: Widget, ctx: Context) -> Piece:
    """An `enqueue` with the Flex workflow and its task; the task channel is Twilio's voice channel."""
    workflow = widget.prop("workflow")
    comments: list[str] = []
    if not workflow:
        todo = "Studio's Send to Flex names no workflow: write `enqueue: {workflow: WW..., task: ...}`"
        return _no_queue(widget, ctx, "it names no TaskRouter workflow", todo)
    channel = widget.prop("channel")
    if channel and str(channel).lower() not in ("voice", "default"):
        # <Enqueue workflowSid> creates the task on the voice channel; TwiML has no channel attribute.
        ctx.report(widget, f"task channel {channel} is not carried over: a call's task takes the voice channel")
        comments.append(f"Studio named the task channel {channel}; a call's task takes the voice channel.")
    return _workflow(widget, ctx, str(workflow).strip(), comments, "attributes")


@reads("enqueue-call", "send-to-flex")
def queue_output(widget: Widget, path: str, ctx: Context) -> str | None:
    return _QUEUE_OUTPUTS.get(path)
