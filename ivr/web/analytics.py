"""The call journal's side of the web app: each webhook hands its rows to the writer and goes on.

    IVR_EVENTS               where the journal is kept (`off`: nowhere)
    IVR_ANALYTICS_KEY        the secret of callers' keyed hashes (development: a key file beside the journal)
    IVR_ANALYTICS_NUMBERS    hash (default) or keep

Nothing here may fail a call: a row that cannot be made is logged and left out.
"""

from __future__ import annotations

import functools
import logging
import time

from flask import Flask, current_app, request

from ivr.analytics import EventWriter, open_events
from ivr.analytics.database import shown_url
from ivr.analytics.privacy import DAY, analytics_key, purge
from ivr.analytics.rows import agent_rows, answer_class, caller_number, ended_rows, keyed_hash
from ivr.core import flow as f
from ivr.core.engine import Step
from ivr.phone.transport import PHONE_HEADER, REPLAY_SOURCE, from_built_in_phone
from ivr.web.security import not_local
from ivr.web.services import services

__all__ = ["init_app", "journal_answer", "journal_error", "journal_lines", "journal_status", "request_source"]

log = logging.getLogger("ivr.analytics")


def init_app(app: Flask) -> None:
    """Open the journal's writer when IVR_EVENTS names a database (the database itself opens on first write)."""
    settings = app.config
    url = settings["IVR_EVENTS"]
    found = services(app)
    if not url:
        return
    found.analytics_key = analytics_key(settings)
    found.numbers = settings["IVR_ANALYTICS_NUMBERS"]
    days = settings["IVR_EVENTS_RETENTION_DAYS"]
    # Tests and replays run on recorded and fixed clocks: their rows are never purged behind their back.
    retention = None if settings["IVR_ENV"] == "test" else (lambda db: _purge(db, days))
    found.events = EventWriter(lambda: open_events(url), housekeeping=retention, every=DAY)


def journal_lines(config, base: str) -> list[str]:
    """What `python app.py` says about the call journal: where it is, and the setting reports depend on."""
    if not config.get("IVR_EVENTS"):
        return ["  call journal: off (IVR_EVENTS=off): no reports"]
    shown = shown_url(config["IVR_EVENTS"])
    return [
        f"  call journal: {shown}; reports: python -m ivr report FLOW, {base.rstrip('/')}/reports",
        "  NOTE: Twilio sends status callbacks for inbound calls only when the number's status callback URL is set",
        f"        to {base.rstrip('/')}/twilio/status; without them every inbound call stays in progress in reports.",
    ]


def _purge(db, days: int) -> None:
    """The journal's daily purge, on the writer's thread: rows older than IVR_EVENTS_RETENTION_DAYS go."""
    gone = purge(db, time.time() - days * DAY)
    if gone.calls or gone.events:
        log.info("call journal: purged %d calls and %d events older than %d days", gone.calls, gone.events, days)


def request_source() -> str:
    """Where this request came from: twilio, phone (the built-in phones) or replay."""
    environ = request.environ
    given = environ.get(REPLAY_SOURCE[0])
    if given:
        return given
    if from_built_in_phone(environ):
        return "phone"
    if request.headers.get(PHONE_HEADER) and current_app.config["IVR_ENV"] == "development" and not not_local():
        return "phone"  # the terminal phone over HTTP, on this machine
    return "twilio"


# A call's every webhook hashes the same number: an HMAC each time was a fifth of the journal's
# share of a webhook (benchmarks/journal_cost.py). Recent callers' hashes are kept in memory, where
# their numbers already are (in the calls' sessions).
_hash = functools.lru_cache(maxsize=4096)(keyed_hash)


def _caller(found, params: dict) -> str | None:
    number = caller_number(params)
    if found.numbers == "drop":
        return None
    if found.numbers == "keep" or number is None:
        return number
    return _hash(found.analytics_key, number)


def journal_answer(engine, sid: str, state: str | None, before: tuple, step: Step, params: dict,
                   hooks: list[dict] | None, texts: list, at: float, *, error: bool = False) -> None:  # fmt: skip
    """One voice webhook's rows: what the caller did in `state`, the hooks, each state entered, the summary.
    With `error`, the step is the flow's error state answering a failed webhook: no caller's event of its own."""
    found = services()
    writer = found.events
    if writer is None:
        return
    try:
        flow = engine.flow
        source = request_source()
        fid = flow.id
        rows = []
        states = flow.states
        kind = None
        # When the caller was left in this request's state (None: unknown, or another state).
        since = before[1] if state is not None and before[0] == state else None
        if state is None and not error:
            rows.append((sid, fid, None, "call", params.get("Direction") or None, None, None, None, None, at, None,
                         None, source))  # fmt: skip
        elif state is not None:
            current = states.get(state)
            action = type(current.action).__name__ if current is not None and current.action is not None else None
            kind = answer_class(action, step.outcome, params, step.reached_max)
            sensitive = current is not None and current.sensitive
            said = params.get("SpeechResult")
            asked = kind in ("key", "speech", "no_match")  # what the caller said or pressed, nothing else
            given = None if sensitive or not asked else (said or params.get("Digits") or None)
            confidence = _float(params.get("Confidence")) if said and not sensitive else None
            waited = None if since is None else round(at - since, 3)
            rows.append((sid, fid, state, kind, step.outcome, given, confidence, waited, None, at, None, None, source))
            if kind == "agent":  # the conversation's turns, model latency and tool calls, from its summary
                rows += agent_rows(sid, fid, state, step.session.get("agent"), at, source)
        # A hook of a document that crossed into or out of a subflow: under the flow of the state it ran in.
        hook_flows = dict(zip(step.walked, step.walked_flows, strict=False)) if hooks else {}
        for record in hooks or ():
            latency = record.get("seconds")
            ms = round(latency * 1000, 1) if latency is not None else None
            where = record.get("state")
            ran = hook_flows.get(where, fid)
            rows.append((sid, ran, where, "hook", record.get("outcome") or ("error" if record.get("error") else None),
                         record.get("name"), None, None, ms, at, None, None, source))  # fmt: skip
            if record.get("error"):
                rows.append((sid, ran, where, "error", f"hook {record.get('name')}", None, None, None, None, at, None,
                             None, source))  # fmt: skip
        left = None  # when the caller left the IVR for a person: the Dial or queue that connected was served
        if state is not None and (step.outcome in ("completed", "answered", "bridged")) and kind in ("dial", "queue"):
            left = at if since is None else since
        mark = marked_at = None
        walked = step.walked
        if (
            state is not None
            and walked
            and walked[0] == state
            and step.outcome in f.RETRY_EVENTS
            and not (step.reached_max)
        ):
            walked = walked[1:]  # the state asks again: a retry, not another entry
        # A document that crossed into or out of a subflow: each state under its own flow's id.
        flows = step.walked_flows[len(step.walked_flows) - len(walked) :] if step.walked_flows else (fid,) * len(walked)
        for name, where in zip(walked, flows, strict=True):
            rows.append((sid, where, name, "entered", None, None, None, None, None, at, None, None, source))
            reached = (states if where == fid else _states(found, where)).get(name)
            if reached is not None and reached.report is not None:
                mark, marked_at = reached.report, at
        for split, variant in step.splits:
            rows.append((sid, fid, split, "split", variant, None, None, None, None, at, None, None, source))
        for text in texts:  # each key is CallSid:flow/state:visit
            sender = text.key.rsplit(":", 2)[-2].rsplit("/", 1)[-1] if text.key.count(":") >= 2 else None
            rows.append((sid, fid, sender, "text", None, None, None, None, None, at, None, None, source))
        waiting = (states if step.flow == fid else _states(found, step.flow)).get(step.state)
        ends = 1 if (waiting is not None and waiting.ends) or step.state in f.BUILT_IN else 0
        answered = (sid, fid, source, _caller(found, params), params.get("Direction") or None, at, at, step.state,
                    ends, mark, marked_at, left, step.flow)  # fmt: skip
        writer.add(rows, answered)
    except Exception:  # the journal is for reports: the caller must not notice it failing
        log.exception("CallSid=%s: the journal could not note this webhook", sid or "-")


def _states(found, flow_id: str) -> dict:
    """The states of another flow a document walked (a subflow, or the flow it returned to)."""
    try:
        return found.flows.engine(flow_id).flow.states
    except Exception:
        return {}


def journal_error(flow_id: str | None, sid: str, state: str | None, at: float, why: str) -> None:
    """A webhook answered with the error state or an apology: an error row against the state it was in."""
    writer = services().events
    if writer is None or not sid:
        return
    try:
        writer.add([(sid, flow_id, state, "error", why, None, None, None, None, at, None, None, request_source())])
    except Exception:
        log.exception("CallSid=%s: the journal could not note an error", sid)


def journal_status(app: Flask, params: dict, source: str) -> None:
    """A status callback, as the drainer stores it: a row, and for the final status the call's end."""
    writer = services(app).events
    if writer is None:
        return
    event, ended = ended_rows(params, services(app).clock().timestamp(), source)
    writer.add([event], ended=ended)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
