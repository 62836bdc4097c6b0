"""The browser phone: `GET /phone`, a keypad page, and the small JSON API its calls run on.

The page (`ivr/web/static/phone/`: plain HTML, CSS and JavaScript, nothing fetched from elsewhere)
picks a flow, calls it, shows and speaks what the caller hears, and sends the caller's actions.
Each call runs here, on the server, on the same interpreter as the terminal phone: an
`ivr.phone.Phone` over `WsgiTransport(app)`, in-process, so hooks run and their effects are listed.

    GET  /phone                     the page
    GET  /phone/flows               {flows: [{id, title, start, states, version}], problems: [text],
                                     queue_results: [result]}
    GET  /phone/flows/<id>/graph    {nodes: [{id, label, kind}], edges: [{source, target, label}], start}
    POST /phone/calls               {flow, from?, to?, state?, language?} -> 201 {id, heard, flow, state, ...}
    GET  /phone/calls/<id>          the call, with everything heard so far
    POST /phone/calls/<id>          {action, value?} -> {heard (new lines), flow, state, visited,
                                    waiting_for, dial_outcomes, ended, end_reason, error, warnings,
                                    effects, whisper, problems}

`flow` and `state` say where the call is, or ended; `visited` lists every state it passed, in order
of first visit ({flow, state}), the states that wait for nothing included: the app notes what each
document rendered (`Step.walked`) in its journal for the built-in phone, as no URL names them.

Actions: press KEYS, say TEXT, wait, dial STATUS, accept KEY (a screened transfer), queue RESULT,
record SECONDS (0: an empty recording), record_nothing, hangup, transcription TEXT, pay
CARD/MMYY/CODE/ZIP (a <Pay>'s card form: what it keys is never answered back). The page offers
the queue results /phone/flows lists, and the outcomes the waiting dial can have (`dial_outcomes` of
the call: `answered` only for a conference), so the server's vocabulary is the only one.
Errors answer JSON `{"error": message}` (400 bad request, 404 unknown flow or call, 409 an action
the call is not waiting for), never a traceback.

These routes are no Twilio webhooks and carry no signature: they are served only when IVR_PHONE
is on (by default in development only, on your own machine), and only to requests from loopback
without X-Forwarded-* or Forwarded headers (the rule of unsigned webhooks, `security.not_local`),
so a tunnel to `python app.py` does not expose them; others get 403. Never turn IVR_PHONE on for a
server others can reach: whoever reaches it can place calls that run your hooks. Requests must be
JSON, which a cross-site form cannot send without the browser asking first.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import urllib.parse

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ivr.core.flow import DIAL_OUTCOMES, ENQUEUE_OUTCOMES, Dial, dial_outcomes
from ivr.core.language_switch import matching_language
from ivr.core.subflow import stack_of
from ivr.errors import IvrError, PhoneRequestRefused
from ivr.phone import Phone, PhoneCall, WsgiTransport
from ivr.web import security
from ivr.web.live_calls import LiveCall, LiveCalls
from ivr.web.services import services

__all__ = ["init_app", "live_calls", "phone"]

log = logging.getLogger("ivr.browser")

# How a queue wait may end, as the page offers it: hanging up is the caller's own action, and
# bridging-in-process is Twilio's passing state, never a result the caller chooses.
QUEUE_RESULTS = tuple(r for r in ENQUEUE_OUTCOMES if r not in ("hangup", "bridging-in-process"))
ACTIONS = (
    "press",
    "say",
    "wait",
    "dial",
    "accept",
    "queue",
    "record",
    "record_nothing",
    "hangup",
    "transcription",
    "pay",
)
_MAX_TEXT = 500  # characters of a phrase, a number or a transcription the page may send

phone = Blueprint("phone", __name__, url_prefix="/phone", static_folder="static/phone", static_url_path="/static")


def init_app(app: Flask) -> None:
    """Serve the browser phone when `IVR_PHONE` is on; otherwise no /phone route exists."""
    if not app.config.get("IVR_PHONE") or "phone" in app.blueprints:
        return
    public = app.config.get("IVR_PUBLIC_URL")
    # The phone signs as Twilio would, for the URL the app checks signatures against.
    the_phone = Phone(
        WsgiTransport(app),
        (public or "http://localhost").rstrip("/"),
        auth_token=app.config.get("TWILIO_AUTH_TOKEN"),
        effects=services(app).journal,
    )
    services(app).live_calls = LiveCalls(the_phone)
    app.register_blueprint(phone)


def live_calls() -> LiveCalls:
    """The browser phone's calls in progress, of the app handling this request."""
    return services().live_calls


@phone.before_request
def _local_only() -> None:
    """Refuse anyone but this machine: whoever reaches the phone calls flows as any caller, hearing hook results."""
    why = security.not_local()
    if why:
        log.warning("refused %s %s from %s: the browser phone serves only this machine without proxy headers (%s)",
                    request.method, request.path, request.remote_addr, why)  # fmt: skip
        raise PhoneRequestRefused(403, "the browser phone answers only requests from this machine, not through a proxy")


# -- the page and the flows ---------------------------------------------------------------------


@phone.route("")
def page():
    """The browser phone."""
    with phone.open_resource("static/phone/index.html") as page_file:  # small; read whole, never left open
        body = page_file.read()
    return current_app.response_class(body, mimetype="text/html", headers={"Cache-Control": "no-cache"})


@phone.route("/flows")
def flows():
    """The flows one can call, and why the newest edit of a flow is not being served."""
    registry = services().flows
    registry.refresh()
    listed = [
        {
            "id": fid,
            "title": flow.title or fid,
            "start": flow.start,
            "states": len(flow.states),
            "version": flow.content_hash,
            "languages": list(flow.localized),  # the default first; [] for a flow in one language
        }
        for fid, flow in sorted(registry.flows.items())
    ]
    return jsonify(flows=listed, problems=_problems(), queue_results=QUEUE_RESULTS)


@phone.route("/flows/<flow_id>/graph")
def graph(flow_id: str):
    """The flow as nodes and labelled edges, for the page to draw."""
    try:
        from ivr.core.graph import graph_data
    except ImportError:
        raise PhoneRequestRefused(503, "the flow graph is not available (ivr.core.graph is missing)") from None
    flow = _flow(flow_id)
    graphs = live_calls().graphs
    key = (flow.id, flow.content_hash)
    if key not in graphs:  # drawing builds a machine: once per version of a flow
        if len(graphs) >= 100:
            graphs.clear()
        graphs[key] = graph_data(flow)
    data = graphs[key]
    return jsonify(nodes=data["nodes"], edges=data["edges"], start=flow.start, flow=flow.id)


# -- calls --------------------------------------------------------------------------------------


@phone.route("/calls", methods=["POST"])
def place():
    """Call a flow; answers the call as it waits for the caller (or ended)."""
    body = _body()
    flow_id = _text(body, "flow")
    if not flow_id:
        raise PhoneRequestRefused(400, 'give the flow to call: {"flow": "main"}')
    flow = _flow(flow_id)
    state = _text(body, "state")
    if state and state not in flow.states:
        raise PhoneRequestRefused(404, f"flow '{flow_id}' has no state '{state}'")
    language = _text(body, "language")
    language = (language and matching_language(flow.localized, language)) or language  # es, es-mx: es-MX
    if language and language not in flow.localized:
        offered = ", ".join(flow.localized) or "none: it speaks one language"
        raise PhoneRequestRefused(400, f"flow '{flow_id}' does not offer '{language}' (languages: {offered})")
    calls = live_calls()
    query = urllib.parse.urlencode({k: v for k, v in (("state", state), ("language", language)) if v})
    target = f"/voice/{flow_id}" + (f"?{query}" if query else "")
    from_, to = _text(body, "from") or "+15551230000", _text(body, "to") or "+15559870000"
    # A fresh CallSid per call: the session store may outlive the process (SQLite).
    sid = "CA" + secrets.token_hex(16)
    call = _isolated(calls.phone.dial, target, from_=from_, to=to, call_sid=sid)
    live = calls.add(call)
    log.info("CallSid=%s browser phone called %s from %s", sid, flow_id, from_)
    with live.lock:
        return jsonify(_view(live)), 201


@phone.route("/calls/<call_id>")
def show(call_id: str):
    """The call, with everything heard so far."""
    live = _live(call_id)
    with live.lock:
        return jsonify(_view(live, everything=True))


@phone.route("/calls/<call_id>", methods=["POST"])
def act(call_id: str):
    """Do what a caller does: {"action": "press", "value": "3"}; answers what follows."""
    live = _live(call_id)
    body = _body()
    action = _text(body, "action")
    if action not in ACTIONS:
        raise PhoneRequestRefused(400, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    value = _text(body, "value")
    with live.lock:
        try:
            _isolated(_do, live.call, action, value, _dial_outcomes(live.call))
        except PhoneRequestRefused:
            raise  # a bad value, refused with its own status
        except IvrError as exc:  # PhoneError: not what the call waits for, or a bad value
            raise PhoneRequestRefused(409, str(exc)) from None
        return jsonify(_view(live))


def _do(call: PhoneCall, action: str, value: str, dial_outcomes: tuple[str, ...]) -> None:
    if action == "press":
        call.press(value)
    elif action == "say":
        call.say(value)
    elif action == "wait":
        call.wait()
    elif action == "dial":
        if value not in DIAL_OUTCOMES:
            raise PhoneRequestRefused(400, f"unknown dial outcome {value!r}; one of {', '.join(DIAL_OUTCOMES)}")
        if call.waiting_for == "dial" and value not in dial_outcomes:
            raise PhoneRequestRefused(400, f"this dial cannot end {value!r}; it ends {', '.join(dial_outcomes)}")
        call.dial_result(value)
    elif action == "accept":  # a screened transfer: the answering party presses a key
        call.dial_result("completed", screen=value or "1")
    elif action == "queue":
        if value not in QUEUE_RESULTS:
            raise PhoneRequestRefused(400, f"unknown queue result {value!r}; one of {', '.join(QUEUE_RESULTS)}")
        call.queue_result(value)
    elif action == "record":
        seconds = _seconds(value)
        call.record_nothing() if seconds == 0 else call.record(seconds)
    elif action == "record_nothing":
        call.record_nothing()
    elif action == "hangup":
        call.hangup()
    elif action == "pay":  # CARD/MMYY/CODE/ZIP from the card form; never answered back, never logged
        call.pay(*(part or None for part in value.split("/")[:4]))
    else:
        call.transcription(value)


def _isolated(function, *args, **kwargs):
    """Run the phone outside this request's context.

    The phone's webhooks are requests to this same app: inside our context they would share its
    `g`, and each webhook's hooks would be journaled again with the next.
    """
    return contextvars.Context().run(function, *args, **kwargs)


def _where(call: PhoneCall) -> tuple[str | None, str | None, list[dict]]:
    """Where the call is (or ended) and every state it passed: the last document's walk knows the states
    after the URL it was asked for (a `say` then `hangup` after a recording), the phone only that URL."""
    journal = services().journal
    walked = journal.walked(call.sid) if journal is not None else []
    flow, state = walked[-1] if walked else (call.flow, call.state)
    visited = [{"flow": f, "state": s} for f, s in dict.fromkeys(walked)]
    return flow, state, visited


def _stack(call: PhoneCall) -> list[dict]:
    """The calling states of the subflows the call is in, outermost first ([] outside subflows)."""
    session = services().store.get(call.sid) or {}
    return [{"flow": frame["flow"], "state": frame["state"]} for frame in stack_of(session)]


def _dial_outcomes(call: PhoneCall) -> tuple[str, ...]:
    """How the dial the call waits on can end (none when it waits for no dial)."""
    if call.waiting_for != "dial":
        return ()
    flow = services().flows.flows.get(call.flow or "")
    state = flow.states.get(call.state or "") if flow is not None else None
    return dial_outcomes(state.action if state is not None and isinstance(state.action, Dial) else None)


def _view(live: LiveCall, *, everything: bool = False) -> dict:
    """What the page needs after each step; `heard` and `whisper` hold the lines not sent yet."""
    call = live.call
    flow, state, visited = _where(call)
    start_heard = 0 if everything else live.shown
    start_whisper = 0 if everything else live.whispered
    live.shown, live.whispered = len(call.transcript), len(call.whisper)
    return {
        "id": call.sid,
        "from": call.from_,
        "to": call.to,
        "heard": [
            {
                "kind": h.kind,
                "text": h.text,
                "voice": h.voice,
                "language": h.language,
                "loop": h.loop,
                "flow": h.flow,
                "state": h.state,
            }
            for h in call.transcript[start_heard:]
        ],
        "whisper": call.whisper[start_whisper:],
        "flow": flow,
        "state": state,
        "visited": visited,
        "stack": _stack(call),
        "waiting_for": call.waiting_for,
        "dial_outcomes": _dial_outcomes(call),
        "ended": call.ended,
        "end_reason": call.end_reason,
        "reject_reason": call.reject_reason,
        "error": _error(call.error),
        "warnings": [_error(w) for w in call.warnings],
        "effects": call.effects,
        "problems": _problems(),
    }


def _error(error) -> dict | None:
    return None if error is None else {"code": error.code, "message": error.message}


# -- requests and errors ------------------------------------------------------------------------


def _problems() -> list[str]:
    return [p.format() for p in services().flows.problems]


def _flow(flow_id: str):
    registry = services().flows
    flow = registry.flows.get(flow_id)
    if flow is None:
        raise PhoneRequestRefused(404, f"no flow '{flow_id}' (flows: {', '.join(sorted(registry.flows)) or 'none'})")
    return flow


def _live(call_id: str) -> LiveCall:
    live = live_calls().get(call_id)
    if live is None:
        raise PhoneRequestRefused(
            404, f"no call '{call_id}' (calls idle for an hour, or from before a restart, are forgotten)"
        )
    return live


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise PhoneRequestRefused(400, "send a JSON object (Content-Type: application/json)")
    return body


def _text(body: dict, key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PhoneRequestRefused(400, f"'{key}' must be text")
    text = str(value).strip()
    if len(text) > _MAX_TEXT:
        raise PhoneRequestRefused(400, f"'{key}' is longer than {_MAX_TEXT} characters")
    return text


def _seconds(value: str) -> int:
    if not value.isdigit() or int(value) > 3600:
        raise PhoneRequestRefused(400, f"record takes whole seconds from 0 to 3600, not {value!r}")
    return int(value)


@phone.errorhandler(PhoneRequestRefused)
def _refused(exc: PhoneRequestRefused):
    return jsonify(error=str(exc)), exc.status


@phone.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


@phone.errorhandler(Exception)
def _failed(exc: Exception):
    log.exception("browser phone: %s %s failed", request.method, request.path)
    return jsonify(error=f"the server failed ({type(exc).__name__}); its log has the details"), 500
