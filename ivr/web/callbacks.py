"""Twilio's callbacks: call status, the fallback URL, and Record's recording and transcription
callbacks, which store voicemail and hand it to the flow's `on_message`."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Flask, current_app, request

from ivr.core.effects import HookCall, SendText
from ivr.core.twiml import apology_document, empty_document
from ivr.errors import IvrError
from ivr.web import security
from ivr.web.effects import journal_texts, send_text
from ivr.web.http import SESSION_GRACE, SESSION_TTL
from ivr.web.http import xml_response as _xml
from ivr.web.logs import shown_url
from ivr.web.messages import MessageBox
from ivr.web.services import hook_records, services

__all__ = ["callbacks"]

log = logging.getLogger("ivr.web")

_TERMINAL = ("completed", "busy", "failed", "no-answer", "canceled")
_STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, **dict.fromkeys(_TERMINAL, 4)}

callbacks = Blueprint("twilio", __name__)


def init_app(app: Flask) -> None:
    """Twilio's callbacks: status, fallback, recording and transcription."""
    app.register_blueprint(callbacks)


@callbacks.before_request
def _check_callback() -> None:
    if request.endpoint != "twilio.fallback":  # the fallback must answer whatever happened to the app
        security.check_webhook()


@callbacks.route("/twilio/status", methods=["POST"])
def status():
    """Call status callbacks: remember how the call went; a terminal status is never undone."""
    params = request.form
    sid = params.get("CallSid", "")
    new = params.get("CallStatus", "")
    if not sid or new not in _STATUS_RANK:
        log.warning("CallSid=%s status callback with CallStatus=%r ignored", sid or "-", new)
        return _xml(empty_document())

    def update(session):
        if session is None:
            return None
        old = session.get("status")
        if old is None or _STATUS_RANK[new] > _STATUS_RANK.get(old, -1):
            session["status"] = new
            if new in _TERMINAL:
                session["ended"] = True
                session["duration"] = params.get("CallDuration")
        return session

    try:
        store = services().store
        # An ended call's session only waits out the grace period for late callbacks, whatever
        # order they come in.
        current = store.get(sid) or {}
        ended = new in _TERMINAL or current.get("ended", False)
        store.update(sid, update, SESSION_GRACE if ended else SESSION_TTL)
        log.info("CallSid=%s status %s", sid, new)
        if new in _TERMINAL:
            _campaign_outcome(store, sid, new, params.get("AnsweredBy") or current.get("caller", {}).get("AnsweredBy"))
    except IvrError:
        log.exception("CallSid=%s status callback could not be stored", sid)
    return _xml(empty_document())


def _campaign_outcome(store, sid: str, status: str, answered_by: str | None) -> None:
    """A campaign call's fate, kept with its row for `python -m ivr campaign status`."""
    from ivr.outbound.campaign import CAMPAIGN_TTL

    outcome = "answered" if status == "completed" else status
    if status == "completed" and (answered_by or "").startswith(("machine", "fax")):
        outcome = "machine"
    placed = store.get(f"call:{sid}")
    if placed is None:
        # The callback beat the create request's answer: the campaign merges this in when it links the call.
        store.update(f"call:{sid}", lambda current: {**(current or {}), "outcome": outcome}, _CALL_TTL)
        return
    if not placed.get("campaign") or not placed.get("row"):
        return
    store.update(placed["row"], lambda row: None if row is None else {**row, "outcome": outcome}, CAMPAIGN_TTL)


_CALL_TTL = 7 * 24 * 3600


@callbacks.route("/twilio/fallback", methods=["GET", "POST"])
def fallback():
    """The number's Fallback URL: a static apology, nothing else."""
    params = request.values
    log.error(
        "CallSid=%s fallback URL called (ErrorCode=%s, ErrorUrl=%s)",
        params.get("CallSid", "-"),
        params.get("ErrorCode", "-"),
        shown_url(params.get("ErrorUrl", "-")),  # the failed URL's query may hold the caller's input
    )
    return _xml(apology_document())


@callbacks.route("/twilio/recording", methods=["POST"])
def recording():
    """A Record's recording is ready: store the message and deliver it through on_message."""
    return _message_callback("recording")


@callbacks.route("/twilio/transcription", methods=["POST"])
def transcription():
    """A Record's transcription arrived: store it, and update a message delivered already."""
    return _message_callback("transcription")


def _message_callback(kind: str):
    params = request.form.to_dict()
    flow_id, state_name = request.args.get("flow", ""), request.args.get("state", "")
    sid = params.get("CallSid", "-")
    store = services().store
    now = services().clock()
    box = MessageBox(store)
    try:
        if kind == "recording":
            session = store.get(params.get("CallSid", ""))
            message, deliver = box.recording(params, flow_id, state_name, session, now)
        else:
            message, deliver = box.transcription(params, flow_id, state_name, now)
        log.info("CallSid=%s %s callback for %s stored", sid, kind, message["recording_sid"])
        if deliver:
            _deliver(flow_id, state_name, message, update=kind == "transcription", now=now)
    except Exception:
        log.exception("CallSid=%s %s callback for flow=%s state=%s failed", sid, kind, flow_id, state_name)
    return _xml(empty_document())


def _deliver(flow_id: str, state_name: str, message: dict, *, update: bool, now: datetime) -> None:
    """Hand a message to its on_message hook (the state's, else the flow's) and remember the attempt."""
    engine = services().flows.engines.get(flow_id)
    state = engine.flow.states.get(state_name) if engine else None
    name = (state.on_message if state else None) or (engine.flow.defaults.on_message if engine else None)
    if name is None:
        return
    kind = "transcription" if update else "recording"
    if isinstance(name, dict):  # on_message: {sms: NUMBER}: the message goes out as a text
        error = _text_message(name["sms"], message, update, engine)
        MessageBox(services().store).delivered(
            message["recording_sid"], {"kind": kind, "sms": name["sms"], "error": error}, now
        )
        return
    context = {
        "call_sid": message.get("call_sid", ""),
        "flow": flow_id,
        "state": state_name,
        "call": {"From": message.get("from", ""), "To": message.get("to", ""), "CallSid": message.get("call_sid", "")},
        "vars": dict(message.get("vars") or {}),
        "input": {},
        "recording": {"url": message.get("url"), "duration": message.get("duration"), "sid": message["recording_sid"]},
        "dial": {},
        "now": now,
    }
    result, record = services().hooks.run(
        HookCall(name, flow_id, state_name, context), message={**message, "update": update}
    )
    hook_records().append(record)  # recorded with the callback, fed back by replay
    MessageBox(services().store).delivered(
        message["recording_sid"], {"kind": kind, "hook": name, "error": result.error}, now
    )


def voicemail_text(message: dict, update: bool, transcribed: bool = True) -> str:
    """The text a voicemail is delivered as: caller, length, link, and the transcription when it came."""
    transcription = (message.get("transcription") or {}).get("text")
    head = "Transcription of the voicemail" if update else "New voicemail"
    lines = [f"{head} from {message.get('from') or 'an unknown caller'} ({message.get('duration') or 0} s)"]
    lines.append(f"Listen: {message.get('url')}")
    if transcription:
        lines.append(f'"{transcription}"')
    elif transcribed:
        lines.append("Transcription to follow.")
    return "\n".join(lines)


def _text_message(number: str, message: dict, update: bool, engine) -> str | None:
    """Send a voicemail as a text; the error, or None. In tests without a fake Twilio, journaled only."""
    app = current_app._get_current_object()
    state = engine.flow.states.get(message.get("state", "")) if engine else None
    transcribed = bool(state and getattr(state.action, "transcribe", False))
    text = SendText(f"message:{message['recording_sid']}:{int(update)}", number, message.get("to") or None,
                    voicemail_text(message, update, transcribed))  # fmt: skip
    if not journal_texts(app, message.get("call_sid") or "-", [text]):
        return None  # the built-in phones show deliveries; they never carry them out
    return send_text(app, text)  # a failure is noted with the message, which stays stored
