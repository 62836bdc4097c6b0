"""`POST /twilio/pay?flow=F&state=S`: <Pay>'s status callback (its action is the state's own URL).

Twilio reports each step of a payment here (the step asked, an error, the result). What is kept is
its progress in the call's session (`pay`: flow, state, step, error, result, card type), never a
number, a date or a code: `ivr.core.pay.progress` names what may be kept. The answer is empty, as
Twilio ignores it. Losing one of these loses nothing the call needs (the action carries the result),
so it is stored directly, not spooled.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, request

from ivr.core.flow import NAME_RE
from ivr.core.pay import progress
from ivr.core.twiml import empty_document
from ivr.web import security
from ivr.web.http import SESSION_TTL, webhook_params
from ivr.web.http import xml_response as _xml
from ivr.web.services import services

__all__ = ["pay_callbacks"]

log = logging.getLogger("ivr.web")

pay_callbacks = Blueprint("pay", __name__)


def init_app(app: Flask) -> None:
    """<Pay>'s status callback."""
    app.register_blueprint(pay_callbacks)


@pay_callbacks.before_request
def _check() -> None:
    security.check_webhook()  # signed like every other /twilio callback: 403 when it is not


@pay_callbacks.route("/twilio/pay", methods=["POST"])
def pay_status():
    """Keep a payment's progress with the call (never card data); answer an empty document."""
    params = webhook_params()
    sid = params.get("CallSid", "")
    flow_id, state = request.args.get("flow", ""), request.args.get("state", "")
    if not sid or not NAME_RE.match(flow_id) or not NAME_RE.match(state):
        log.warning("CallSid=%s <Pay> status callback without a call, flow or state ignored", sid or "-")
        return _xml(empty_document())
    seen = {"flow": flow_id, "state": state, **progress(params)}

    def update(session):
        if session is None:  # not a call of this app (or long over): nothing to add to
            return None
        session["pay"] = seen
        return session

    try:
        services(current_app).store.update(sid, update, SESSION_TTL)
    except Exception:  # the action request carries the result: the call goes on without this
        log.exception("CallSid=%s <Pay> progress not stored", sid)
    log.info(  # only values progress() knows Twilio sends: nothing a forged callback writes reaches the log
        "CallSid=%s <Pay> %s/%s %s", sid, flow_id, state, " ".join(f"{k}={v}" for k, v in progress(params).items())
    )
    return _xml(empty_document())
