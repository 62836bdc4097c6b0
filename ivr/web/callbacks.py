"""Twilio's callbacks: call status, the fallback URL, and Record's recording and transcription callbacks.

Status, recording and transcription callbacks are never acknowledged before what they carry is
durable: each is appended to the spool (`ivr.web.spool`, IVR_SPOOL_DIR) and answered 200 once it is
there, 5xx only when the spool itself fails (Twilio may then retry). The drainer stores them and
delivers voicemail in the background (`ivr.web.drain`, `ivr.web.delivery`), never in the webhook.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, request

from ivr.core.call_recording import CALL_KIND
from ivr.core.twiml import apology_document, empty_document
from ivr.errors import SpoolError
from ivr.phone.transport import from_built_in_phone
from ivr.web import security
from ivr.web.analytics import request_source
from ivr.web.delivery import STATUS_RANK
from ivr.web.drain import drain_soon
from ivr.web.http import webhook_params
from ivr.web.http import xml_response as _xml
from ivr.web.logs import shown_url
from ivr.web.services import services

__all__ = ["callbacks"]

log = logging.getLogger("ivr.web")

callbacks = Blueprint("twilio", __name__)


def init_app(app: Flask) -> None:
    """Twilio's callbacks: status, fallback, recording and transcription."""
    app.register_blueprint(callbacks)


@callbacks.before_request
def _check_callback() -> None:
    if request.endpoint != "twilio.fallback":  # the fallback must answer whatever happened to the app
        security.check_webhook()


@callbacks.route("/twilio/status", methods=["GET", "POST"])  # a number may be set to call back with GET
def status():
    """Call status callbacks: spooled, then kept by the drainer (a terminal status is never undone)."""
    params = webhook_params()
    sid, new = params.get("CallSid", ""), params.get("CallStatus", "")
    if not sid or new not in STATUS_RANK:
        log.warning("CallSid=%s status callback with CallStatus=%r ignored", sid or "-", new)
        return _xml(empty_document())
    entry = {"kind": "status", "params": params, "source": request_source()}
    return _spooled(entry, f"CallSid={sid} CallStatus={new}")


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


@callbacks.route("/twilio/recording", methods=["GET", "POST"])
def recording():
    """A Record's recording is ready: spooled, then stored and delivered through on_message by the drainer. A
    whole-call recording's status (`kind=call`) is spooled too, then kept with the call, never delivered."""
    return _message_callback("call_recording" if request.args.get("kind") == CALL_KIND else "recording")


@callbacks.route("/twilio/transcription", methods=["GET", "POST"])
def transcription():
    """A Record's transcription arrived: spooled, then stored (and a delivered message updated) by the drainer."""
    return _message_callback("transcription")


def _message_callback(kind: str):
    params = webhook_params()
    sid, recording_sid = params.get("CallSid") or "-", params.get("RecordingSid", "")
    if not recording_sid:  # nothing to store: Twilio always names the recording
        log.warning(
            "CallSid=%s %s callback without RecordingSid ignored (%s)", sid, kind, shown_url(security.signed_url())
        )
        return _xml(empty_document())
    entry = {
        "kind": kind,
        "params": params,
        "flow": request.args.get("flow", ""),
        "state": request.args.get("state", ""),
        # A built-in phone's deliveries are shown in its journal, never sent: the drainer must know.
        "phone": from_built_in_phone(request.environ),
    }
    return _spooled(entry, f"CallSid={sid} RecordingSid={recording_sid}")


def _spooled(entry: dict, names: str):
    """Answer 200 once the entry is on disk, 5xx when it cannot be; then let the drainer store it."""
    app = current_app._get_current_object()
    try:
        services(app).spool.append(entry)
    except SpoolError as exc:
        log.error(
            "%s %s callback NOT acknowledged (%s): %s", names, entry["kind"], shown_url(security.signed_url()), exc
        )
        return _xml(empty_document(), status=503)
    try:
        drain_soon(app)
    except Exception:  # it is on disk: a later drain stores it
        log.exception("%s %s callback spooled; the drain after it failed", names, entry["kind"])
    return _xml(empty_document())
