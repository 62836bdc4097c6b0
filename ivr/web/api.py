"""`POST /api/calls`: other systems place outbound calls that enter a flow.

JSON in: {"flow", "to", "from"?, "state"?, "vars"?, "machine_detection"?, "timeout"?}; a bearer
token (IVR_API_TOKEN) required. The endpoint exists only when the token is set. JSON out: the call's
sid and status (201), or {"error": message} with 400 for a request to fix, 401 without the token,
502 when Twilio refused, 503 when the server's own settings cannot place calls (its Twilio
credentials, caller ID or public URL: every one missing is named, and logged).
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Flask, current_app, jsonify, request

from ivr.errors import ConfigError, IvrError, TwilioCallError
from ivr.outbound.checks import check_settings
from ivr.web.services import services, twilio_client

__all__ = ["init_app"]

log = logging.getLogger("ivr.api")

api = Blueprint("api", __name__)
_FIELDS = ("flow", "to", "from", "state", "vars", "machine_detection", "timeout")


def init_app(app: Flask) -> None:
    """Serve /api/calls when IVR_API_TOKEN is set (and only then)."""
    if app.config.get("IVR_API_TOKEN"):
        app.register_blueprint(api)


@api.before_request
def _authorize():
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {current_app.config['IVR_API_TOKEN']}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        response = jsonify(error="send the API token: Authorization: Bearer <IVR_API_TOKEN>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="ivr"'
        return response
    return None


@api.route("/api/calls", methods=["POST"])
def create_call():
    """Place a call into a flow; the flow and state are checked before anything is sent."""
    from ivr.outbound.calls import place_call

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, 'send a JSON object, e.g. {"flow": "main", "to": "+15551234567"}')
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        return _error(400, f"unknown fields {', '.join(unknown)}; accepted: {', '.join(_FIELDS)}")
    if not data.get("flow") or not data.get("to"):
        return _error(400, "flow and to are required")
    wrong = [k for k in ("flow", "to", "from", "state", "machine_detection") if k in data and data[k] is not None
             and not isinstance(data[k], str)]  # fmt: skip
    if wrong:
        return _error(400, f'{", ".join(wrong)} must be text (a number goes in quotes: "+15551234567")')
    if (
        "timeout" in data
        and data["timeout"] is not None
        and (isinstance(data["timeout"], bool) or not isinstance(data["timeout"], int))
    ):
        return _error(400, "timeout must be a whole number of seconds")
    if data.get("vars") is not None and not isinstance(data["vars"], dict):
        return _error(400, "vars must be an object of names to values")
    app = current_app._get_current_object()
    try:
        # The server's own settings, all at once, before its client is made (which names only the credentials).
        check_settings(app.config, data.get("from"), credentials=True)
        result = place_call(
            app.config,
            data["flow"],
            data["to"],
            from_=data.get("from"),
            state=data.get("state"),
            variables=data.get("vars"),
            machine_detection=data.get("machine_detection"),
            timeout=data.get("timeout"),
            client=twilio_client(app),
            store=services(app).store,
            flows=services(app).flows.flows,
        )
    except TwilioCallError as exc:
        return _error(502, str(exc))
    except ConfigError as exc:  # the server's fault, not the client's: no request of theirs can fix it
        log.error("POST /api/calls refused: the server cannot place calls: %s", str(exc).replace("\n", "; "))
        return _error(503, f"the server cannot place calls; its operator must fix its settings: {exc}")
    except IvrError as exc:  # a flow, state, number or variable to fix
        return _error(400, str(exc))
    log.info("CallSid=%s placed into %s for the API", result.sid, result.flow)
    response = jsonify(sid=result.sid, status=result.status, flow=result.flow, state=result.state, to=result.to)
    response.status_code = 201
    return response


def _error(status: int, message: str):
    response = jsonify(error=message)
    response.status_code = status
    return response
