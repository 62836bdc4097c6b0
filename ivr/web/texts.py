"""Inbound texts: `POST /sms/<flow>` walks the same flow's menus as a text conversation.

Each reply is the text the caller would hear (the Say verbs of the voice document the engine
answers with); a texted digit or keyword is the input of the menu the conversation waits in. A
state that only makes sense by voice (a dial, a recording, a queue) ends the conversation with the
documented text "This option needs a phone call: please call <our number>." The conversation is
keyed by the two numbers and expires after an hour of silence. Replies are built with
`messaging_response`; the request's signature is checked like a voice webhook's.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from xml.etree import ElementTree

from flask import Blueprint, Flask
from twilio.twiml.messaging_response import MessagingResponse

from ivr.core.engine import new_session
from ivr.errors import IvrError
from ivr.hooks import run_pending
from ivr.phone.twiml import said as heard_words
from ivr.web import security
from ivr.web.deadline import hooks_deadline
from ivr.web.http import webhook_params, xml_response
from ivr.web.services import services

__all__ = ["VOICE_ONLY", "texts"]

log = logging.getLogger("ivr.texts")

CONVERSATION_TTL = 3600  # seconds of silence after which a conversation starts over
VOICE_ONLY = "This option needs a phone call: please call {number}."
GOODBYE = "Goodbye."
_KEYS = re.compile(r"[0-9*#]+\Z")
_ENTRY = re.compile(r"/voice/([A-Za-z0-9_-]+)/?(?:\?state=([A-Za-z0-9_-]+))?\Z")

texts = Blueprint("texts", __name__)
texts.before_request(security.check_webhook)


def init_app(app: Flask) -> None:
    """Inbound texts on /sms/<flow>."""
    app.register_blueprint(texts)


@texts.route("/sms/<flow_id>", methods=["GET", "POST"])  # a number may be set to send texts with GET
def inbound(flow_id: str):
    """One text in, one text back: the next step of the flow's menus."""
    params = webhook_params()
    ours, theirs, body = params.get("To", ""), params.get("From", ""), params.get("Body", "").strip()
    store = services().store
    key = f"sms:{ours}:{theirs}"
    try:
        reply, ended, session = _converse(flow_id, store.get(key), params, body)
        if ended:
            store.delete(key)
        else:
            store.update(key, lambda _: session, CONVERSATION_TTL)
    except Exception as exc:
        level = log.error if isinstance(exc, IvrError) else log.exception
        level("SMS from %s to /sms/%s failed: %s", theirs, flow_id, exc)
        reply = "Sorry, something went wrong. Please try again later."
    response = MessagingResponse()
    response.message(reply)
    return xml_response(response.to_xml())


def _converse(flow_id: str, session: dict | None, params: dict, body: str) -> tuple[str, bool, dict]:
    registry = services().flows
    now = services().clock()
    # The engine reads a call's parameters: a conversation is a "call" between the same two numbers.
    call = {"CallSid": params.get("MessageSid", ""), "From": params.get("From", ""), "To": params.get("To", "")}
    call["Direction"] = "inbound"
    if session is None or not session.get("state"):
        session = new_session(flow_id)
        call["CallSid"] = "TX" + (params.get("MessageSid") or "")[2:]
        session["conversation"] = call["CallSid"]
        step = _hooks(registry.engine(flow_id).start(session, call, now))
    else:
        call["CallSid"] = session.get("conversation", call["CallSid"])
        engine = registry.engine(session.get("flow", flow_id))
        if _KEYS.match(body):
            call.update(Digits=body, FinishedOnKey="", msg="Gather End")
        else:  # typed words are matched as speech would be, with full confidence
            call.update(SpeechResult=body, Confidence="1.0")
        step = _hooks(engine.resume(session["state"], session, call, now))
    lines: list[str] = []
    for _ in range(10):  # follow redirects between flows, as the phone would
        said, waits, target = _read(step.twiml)
        lines += said
        if target is None:
            break
        flow, state = target
        step = _hooks(registry.engine(flow).start(session, call, now, state))
    else:
        waits = "end"
    if waits == "gather":
        return "\n".join(lines) or "?", False, session
    if waits in ("dial", "record", "enqueue"):
        lines.append(VOICE_ONLY.format(number=params.get("To", "us")))
    return "\n".join(lines) or GOODBYE, True, session


def _hooks(step):
    """A texted conversation runs the flow's hooks as a call does (a texted state's effects are not sent)."""
    return run_pending(step, services().hooks, [], deadline=hooks_deadline())


def _read(twiml: str) -> tuple[list[str], str, tuple[str, str | None] | None]:
    """What a voice document says, what it waits for, and where a trailing redirect leads."""
    root = ElementTree.fromstring(twiml)
    said: list[str] = []
    for verb in root:
        if verb.tag == "Say":
            said.append(heard_words(verb))
        elif verb.tag == "Gather":
            said += [heard_words(say) for say in verb.iter("Say")]
            return said, "gather", None
        elif verb.tag in ("Dial", "Record", "Enqueue"):
            return said, verb.tag.lower(), None
        elif verb.tag == "Redirect":
            path = urllib.parse.urlsplit((verb.text or "").strip())
            match = _ENTRY.search(path.path + (f"?{path.query}" if path.query else ""))
            if match:
                return said, "redirect", (match.group(1), match.group(2))
            return said, "end", None
    return said, "end", None
