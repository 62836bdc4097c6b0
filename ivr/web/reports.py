"""The reports page: the call journal's figures for people, at `/reports` (who may read it:
`ivr.web.reports_access`).

    GET /reports                                   the flows and their calls in the window
    GET /reports/<flow>                            the page: heat-mapped graph, waterfall, charts, drill-down
    GET /reports/<flow>/data.json                  the report, exactly `python -m ivr report FLOW --format json`
    GET /reports/<flow>/graph.svg                  the flow's graph, each state coloured by its figures
    GET /reports/<flow>/states/<state>/calls.json  the calls that reached the state most recently
    GET /reports/calls/<CallSid>.json              one call's steps, as `python -m ivr calls SID --json`

Every route takes the report's window as `since`, `until` (an ISO date or time, or a span back from
now such as 24h or 7d) and `source` (twilio by default, phone, replay, import or all), read by
`ivr.analytics.formats.parse_window` as the CLI reads them. The page is HTML, CSS and a small
script from `ivr/web/static/reports/` and `ivr/web/templates/reports/`, nothing fetched from
elsewhere, under a Content-Security-Policy without inline script or style.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from ivr.analytics import EventsDatabase
from ivr.analytics.calls import call_steps, calls_per_flow, recent_calls, state_calls
from ivr.analytics.formats import WINDOW_SOURCES, parse_window, render
from ivr.analytics.report import Window, build_report
from ivr.core import flow as f
from ivr.errors import ConfigError, EventsError, IvrError, ReportsRefused
from ivr.settings import REPORTS_TOKEN_IS_API_TOKEN
from ivr.web import reports_access
from ivr.web.drawing import heat_svg
from ivr.web.services import services

__all__ = ["CSP", "init_app", "reports"]

log = logging.getLogger("ivr.reports")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")  # flow ids, state names and CallSids: nothing else reaches a query
_MAX_CALLS = 500

reports = Blueprint(
    "reports",
    __name__,
    url_prefix="/reports",
    static_folder="static/reports",
    static_url_path="/static",
    template_folder="templates",
)
reports_access.attach(reports)


def init_app(app: Flask) -> None:
    """Serve the reports in development and tests; in production only with IVR_REPORTS_TOKEN (else no route)."""
    settings = app.config
    token = settings.get("IVR_REPORTS_TOKEN")
    if token and token == settings.get("IVR_API_TOKEN"):
        raise ConfigError(REPORTS_TOKEN_IS_API_TOKEN)
    if (settings["IVR_ENV"] == "production" and not token) or "reports" in app.blueprints:
        return
    app.register_blueprint(reports)


@reports.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")  # callers' figures: kept by no cache
    return response


# -- the pages --------------------------------------------------------------------------------------


@reports.route("")
def index():
    """The flows, each with its calls in the window."""
    window = _window()
    registry = services().flows
    registry.refresh()
    problem, counts = None, {}
    try:
        counts = calls_per_flow(_journal(), window)
    except ReportsRefused as exc:
        problem = str(exc)
    ids = sorted(set(registry.flows) | set(counts))
    flows = [
        {"id": fid, "title": registry.flows[fid].title if fid in registry.flows else "(no longer loaded)",
         "calls": counts.get(fid, 0)}
        for fid in ids
    ]  # fmt: skip
    return render_template(
        "reports/index.html", flows=flows, problem=problem, query=_query(), here="reports/", **_form_values()
    )


@reports.route("/<flow_id>")
def page(flow_id: str):
    """The reports page of one flow; its script fetches the figures."""
    flow = _flow(flow_id, _journal())
    title = flow if isinstance(flow, str) else (flow.title or flow.id)
    return render_template("reports/flow.html", flow_id=flow_id, title=title, here="", **_form_values())


def _form_values() -> dict:
    args = request.args
    return {
        "since": args.get("since", ""),
        "until": args.get("until", ""),
        "source": args.get("source") or "twilio",
        "sources": WINDOW_SOURCES,
        "logged_in": reports_access.logged_in(),
    }


def _query() -> str:
    """The window's parameters, for links that keep it."""
    return urlencode({k: v for k in ("since", "until", "source") if (v := request.args.get(k))})


# -- the data ---------------------------------------------------------------------------------------


@reports.route("/<flow_id>/data.json")
def data(flow_id: str):
    """The flow's report for the window: the same JSON as `python -m ivr report FLOW --format json`."""
    window = _window()
    db = _journal()
    report = build_report(db, _flow(flow_id, db), window)
    # Rendered as the CLI renders it: Flask's jsonify would sort the states out of the flow's order.
    return current_app.response_class(render(report, "json") + "\n", mimetype="application/json")


@reports.route("/<flow_id>/states/<state>/calls.json")
def calls_of_state(flow_id: str, state: str):
    """The calls that reached `state` most recently in the window, newest first (`limit`, default 50)."""
    window = _window()
    db = _journal()
    flow = _flow(flow_id, db)
    if not isinstance(flow, str) and state not in flow.states:
        raise ReportsRefused(404, f"flow '{flow_id}' has no state '{state}'")
    found = state_calls(db, flow_id, _checked(state, "state"), window, _limit())
    return {"flow": flow_id, "state": state, "calls": [c.as_dict() for c in found]}


@reports.route("/calls/<sid>.json")
def call(sid: str):
    """One call's summary and steps, as `python -m ivr calls SID --json` shows them."""
    summary, steps = call_steps(_journal(), _checked(sid, "CallSid"))
    if summary is None and not steps:
        raise ReportsRefused(404, f"no call {sid} in the journal")
    return {"call": summary.as_dict() if summary else None, "steps": [s.as_dict() for s in steps]}


@reports.route("/<flow_id>/graph.svg")
def graph(flow_id: str):
    """The flow's graph, its states coloured by the report's figures (Graphviz draws it)."""
    window = _window()
    db = _journal()
    flow = _flow(flow_id, db)
    if isinstance(flow, str):
        raise ReportsRefused(404, f"flow '{flow_id}' is no longer loaded: its figures remain, its graph does not")
    report = build_report(db, flow, window)
    try:
        body = heat_svg(flow, report)
    except IvrError as exc:  # no Graphviz, a flow too big to draw, dot too slow: say which, not a 500
        raise ReportsRefused(503, str(exc)) from None
    return current_app.response_class(body, mimetype="image/svg+xml")


# -- requests -------------------------------------------------------------------------------------


def _window() -> Window:
    args = request.args
    try:
        return parse_window(args.get("since") or None, args.get("until") or None, args.get("source") or "twilio")
    except ValueError as exc:
        raise ReportsRefused(400, str(exc)) from None


def _journal() -> EventsDatabase:
    """The journal, with the rows still buffered written first: the page shows the calls just made."""
    writer = services().events
    if writer is None:
        raise ReportsRefused(503, "the call journal is off (IVR_EVENTS=off): there is nothing to report")
    try:
        writer.flush()
        return writer.database
    except EventsError as exc:
        log.warning("reports: %s", exc)
        raise ReportsRefused(503, f"the call journal cannot be read: {exc}") from None


def _flow(flow_id: str, db: EventsDatabase) -> f.Flow | str:
    """The loaded flow (every state has its row), else its id alone when the journal has its calls, else 404."""
    registry = services().flows
    registry.refresh()
    flow = registry.flows.get(_checked(flow_id, "flow"))
    if flow is not None:
        return flow
    try:
        journaled = bool(recent_calls(db, flow_id, Window(source=None), limit=1))
    except EventsError as exc:
        raise ReportsRefused(503, f"the call journal cannot be read: {exc}") from None
    if not journaled:
        raise ReportsRefused(404, f"no flow '{flow_id}' (flows: {', '.join(sorted(registry.flows)) or 'none'})")
    return flow_id


def _checked(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ReportsRefused(404, f"no {what} {name!r}")
    return name


def _limit() -> int:
    text = request.args.get("limit") or "50"
    if not text.isdigit() or not 1 <= int(text) <= _MAX_CALLS:
        raise ReportsRefused(400, f"limit takes a whole number from 1 to {_MAX_CALLS}, not {text!r}")
    return int(text)


# -- errors ---------------------------------------------------------------------------------------


def _refusal(status: int, message: str):
    if request.path.endswith(".json"):
        return {"error": message}, status
    return current_app.response_class(message + "\n", status=status, mimetype="text/plain")


@reports.errorhandler(ReportsRefused)
def _refused(exc: ReportsRefused):
    return _refusal(exc.status, str(exc))


@reports.errorhandler(EventsError)
def _journal_failed(exc: EventsError):
    log.warning("reports: %s", exc)
    return _refusal(503, f"the call journal cannot be read: {exc}")


@reports.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _refusal(exc.code or 500, exc.description or exc.name)


@reports.errorhandler(Exception)
def _failed(exc: Exception):
    log.exception("reports: %s %s failed", request.method, request.path)
    return _refusal(500, f"the server failed ({type(exc).__name__}); its log has the details")
