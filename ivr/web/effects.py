"""What a call makes the app do besides answering: a journal for the built-in phones, recordings of
every webhook (IVR_RECORD_DIR), and texts sent after the response."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from flask import Flask, current_app, g, request

from ivr.web import security
from ivr.core.flow import SCREEN_EVENTS
from ivr.web.http import SESSION_TTL
from ivr.web.http import webhook_params as _params
from ivr.phone.recording import Recorder

__all__ = ["Journal", "init_app"]

log = logging.getLogger("ivr.web")


def init_app(app: Flask) -> None:
    """The journal (phones and tests) and the recorder (IVR_RECORD_DIR), each when it is wanted."""
    settings = app.config
    if settings["IVR_PHONE"] or settings["IVR_ENV"] == "test":
        # For the built-in phones: what each call made the app do besides answering.
        app.extensions["ivr.journal"] = Journal()
        app.after_request(_journal)
    if settings["IVR_RECORD_DIR"]:
        app.extensions["ivr.recorder"] = Recorder(
            settings["IVR_RECORD_DIR"], mask=settings["IVR_MASK_NUMBERS"], public_url=settings["IVR_PUBLIC_URL"]
        )
        app.after_request(_record)


class Journal:
    """Effects per CallSid (hooks run, deliveries), newest calls kept, for the built-in phones."""

    def __init__(self, calls: int = 500) -> None:
        self._calls: OrderedDict[str, list[dict]] = OrderedDict()
        self._size = calls
        self._lock = threading.Lock()

    def add(self, sid: str, effects: list[dict]) -> None:
        with self._lock:
            self._calls.setdefault(sid, []).extend(effects)
            self._calls.move_to_end(sid)
            while len(self._calls) > self._size:
                self._calls.popitem(last=False)

    def __call__(self, sid: str) -> list[dict]:
        with self._lock:
            return list(self._calls.get(sid, ()))


def _journal(response):
    effects = g.get("ivr_hooks")
    if effects:
        params = _params()
        sid = params.get("ParentCallSid") if request.args.get("event") in SCREEN_EVENTS else params.get("CallSid")
        current_app.extensions["ivr.journal"].add(sid or "-", [{"kind": "hook", **e} for e in effects])
    return response


def _record(response):
    """With IVR_RECORD_DIR set, append each webhook of a call to its recording."""
    if request.blueprint not in ("voice", "twilio") or request.endpoint == "twilio.fallback":
        return response
    if response.status_code == 403:  # a refused request is no part of the call
        return response
    params = _params()
    try:
        flows = current_app.extensions["ivr.flows"].flows
        view = request.view_args or {}
        flow = flows.get(view.get("flow_id", ""))
        state = flow.states.get(view.get("state", "")) if flow else None
        current_app.extensions["ivr.recorder"].record(
            call_sid=params.get("CallSid", ""),
            method=request.method,
            url=security.signed_url(),
            params=params,
            status=response.status_code,
            twiml=response.get_data(as_text=True),
            flows={fid: flow.content_hash for fid, flow in flows.items()},
            now=current_app.extensions["ivr.clock"](),
            sensitive=bool(state and state.sensitive),
            hooks=g.get("ivr_hooks"),
        )
    except Exception:  # recording is for developers; the caller must not notice it failing
        log.exception("CallSid=%s could not be recorded", params.get("CallSid", "-"))
    return response


def sends_texts(app) -> bool:
    """Texts go out through a test's fake Twilio, or for real calls outside tests; never for a built-in phone."""
    if "ivr.twilio_http" in app.extensions:
        return True
    return app.config["IVR_ENV"] != "test" and not request.environ.get("ivr.phone")


def carry_out_later(response, sid: str, effects: list[dict]) -> None:
    """Texts go out after the response is sent, never delaying the caller; each is journaled."""
    if not effects:
        return
    app = current_app._get_current_object()
    journal = app.extensions.get("ivr.journal")
    if journal is not None:
        journal.add(sid, effects)
    # The built-in phones (marked in the WSGI environ, which no HTTP request can set) show texts only.
    # The built-in phones (marked in the WSGI environ, which no HTTP request can set) show texts only.
    sending = sends_texts(app)
    if sending:
        response.call_on_close(lambda: _send_texts(app, sid, effects))


def _send_texts(app, sid: str, effects: list[dict]) -> None:
    from ivr.web.api import twilio_client
    from ivr.outbound.calls import send_sms

    store = app.extensions["ivr.store"]
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
