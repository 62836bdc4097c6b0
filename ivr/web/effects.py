"""What a call makes the app do besides answering: a journal for the built-in phones, recordings of
every webhook (IVR_RECORD_DIR), and texts sent after the response."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request

from ivr.core.agent import Agent
from ivr.core.effects import SendText
from ivr.core.flow import SCREEN_EVENTS
from ivr.outbound.calls import send_sms
from ivr.phone.transport import from_built_in_phone
from ivr.web import metrics, security
from ivr.web.http import SESSION_TTL
from ivr.web.http import webhook_params as _params
from ivr.web.services import recorded_hooks, services, twilio_client

__all__ = ["carry_out_later", "init_app", "journal_texts", "journal_walk", "send_text", "sends_texts"]

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
            agent=_conversation(found, params.get("CallSid", ""), state),
        )
    except Exception:  # recording is for developers; the caller must not notice it failing
        log.exception("CallSid=%s could not be recorded", params.get("CallSid", "-"))
    return response


def _conversation(found, sid: str, state) -> dict | None:
    """On an agent state's action request, the conversation that just ended there (its summary in the session)."""
    if state is None or not isinstance(state.action, Agent) or not sid or request.args.get("event"):
        return None
    summary = (found.store.get(sid) or {}).get("agent")
    return summary if isinstance(summary, dict) and summary.get("state") == state.name else None


def sends_texts(app, *, from_phone: bool) -> bool:
    """Texts go out through a test's fake Twilio, or for real calls outside tests; never for a built-in phone."""
    if services(app).twilio_http is not None:
        return True
    return app.config["IVR_ENV"] != "test" and not from_phone


def carry_out_later(response, sid: str, texts: list[SendText]) -> None:
    """Texts go out after the response is sent, never delaying the caller; each is journaled."""
    if not texts:
        return
    app = current_app._get_current_object()
    if journal_texts(app, sid, texts, from_phone=from_built_in_phone(request.environ)):
        response.call_on_close(lambda: _send_texts(app, sid, texts))


def journal_walk(sid: str, flow: str, states: tuple[str, ...], flows: tuple[str, ...] = ()) -> None:
    """Note the states a document for the built-in phone rendered: its page marks them, and where the call ended
    (`flows`: each state's flow, when the document crossed into or out of a subflow)."""
    journal = services().journal
    if journal is not None and states and from_built_in_phone(request.environ):
        journal.walk(sid, flow, states, flows)


def journal_texts(app: Flask, sid: str, texts: list[SendText], *, from_phone: bool) -> bool:
    """Note texts in the journal (the built-in phones show them); whether they are to be sent for real."""
    journal = services(app).journal
    if journal is not None:
        journal.add(sid, [text.as_record() for text in texts])
    return sends_texts(app, from_phone=from_phone)


def send_text(app: Flask, text: SendText) -> str | None:
    """Send one text through the app's Twilio client; the error's message, or None when it went."""
    try:
        send_sms(app.config, text.to, text.body, from_=text.from_, client=twilio_client(app))
    except Exception as exc:  # a text that fails never breaks the call, nor loses what it was about
        log.error("text %s to %s failed: %s", text.key, text.to, exc)
        metrics.text_sent(False)
        return str(exc)
    metrics.text_sent(True)
    return None


def _send_texts(app: Flask, sid: str, texts: list[SendText]) -> None:
    store = services(app).store
    for text in texts:
        error = send_text(app, text)
        outcome = "sent" if error is None else f"failed: {error}"
        try:
            store.update(sid, lambda s, key=text.key, o=outcome: _mark(s, key, o), SESSION_TTL)
        except Exception:
            log.exception("CallSid=%s could not note text %s as %s", sid, text.key, outcome)


def _mark(session, key: str, outcome: str):
    if session is not None:
        session.setdefault("effects", {})[key] = outcome
    return session
