"""What a call makes the app do besides answering: a journal for the built-in phones, recordings of
every webhook (IVR_RECORD_DIR), and texts sent after the response."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request

from ivr.web import security
from ivr.core.flow import SCREEN_EVENTS
from ivr.web.http import SESSION_TTL
from ivr.web.http import webhook_params as _params
from ivr.web.services import recorded_hooks, services

__all__ = ["carry_out_later", "init_app", "sends_texts"]

log = logging.getLogger("ivr.web")


def init_app(app: Flask) -> None:
    """Journal each request's hooks (phones and tests) and record every webhook (IVR_RECORD_DIR), when on."""
    found = services(app)
    if found.journal is not None:
        app.after_request(_journal)
    if found.recorder is not None:
        app.after_request(_record)


def _journal(response):
    effects = recorded_hooks()
    if effects:
        params = _params()
        sid = params.get("ParentCallSid") if request.args.get("event") in SCREEN_EVENTS else params.get("CallSid")
        services().journal.add(sid or "-", [{"kind": "hook", **e} for e in effects])
    return response


def _record(response):
    """With IVR_RECORD_DIR set, append each webhook of a call to its recording."""
    if request.blueprint not in ("voice", "twilio") or request.endpoint == "twilio.fallback":
        return response
    if response.status_code == 403:  # a refused request is no part of the call
        return response
    params = _params()
    try:
        found = services()
        flows = found.flows.flows
        view = request.view_args or {}
        flow = flows.get(view.get("flow_id", ""))
        state = flow.states.get(view.get("state", "")) if flow else None
        found.recorder.record(
            call_sid=params.get("CallSid", ""),
            method=request.method,
            url=security.signed_url(),
            params=params,
            status=response.status_code,
            twiml=response.get_data(as_text=True),
            flows={fid: flow.content_hash for fid, flow in flows.items()},
            now=found.clock(),
            sensitive=bool(state and state.sensitive),
            hooks=recorded_hooks(),
        )
    except Exception:  # recording is for developers; the caller must not notice it failing
        log.exception("CallSid=%s could not be recorded", params.get("CallSid", "-"))
    return response


def sends_texts(app) -> bool:
    """Texts go out through a test's fake Twilio, or for real calls outside tests; never for a built-in phone."""
    if services(app).twilio_http is not None:
        return True
    return app.config["IVR_ENV"] != "test" and not request.environ.get("ivr.phone")


def carry_out_later(response, sid: str, effects: list[dict]) -> None:
    """Texts go out after the response is sent, never delaying the caller; each is journaled."""
    if not effects:
        return
    app = current_app._get_current_object()
    journal = services(app).journal
    if journal is not None:
        journal.add(sid, effects)
    # The built-in phones (marked in the WSGI environ, which no HTTP request can set) show texts only.
    sending = sends_texts(app)
    if sending:
        response.call_on_close(lambda: _send_texts(app, sid, effects))


def _send_texts(app, sid: str, effects: list[dict]) -> None:
    from ivr.web.api import twilio_client
    from ivr.outbound.calls import send_sms

    store = services(app).store
    for effect in effects:
        outcome = "sent"
        try:
            send_sms(app.config, effect["to"], effect["body"], from_=effect.get("from"), client=twilio_client(app))
        except Exception as exc:  # a text that fails never breaks the call
            outcome = f"failed: {exc}"
            log.error("CallSid=%s text %s to %s failed: %s", sid, effect["key"], effect["to"], exc)
        try:
            store.update(sid, lambda s, key=effect["key"], o=outcome: _mark(s, key, o), SESSION_TTL)
        except Exception:
            log.exception("CallSid=%s could not note text %s as %s", sid, effect["key"], outcome)


def _mark(session, key: str, outcome: str):
    if session is not None:
        session.setdefault("effects", {})[key] = outcome
    return session
