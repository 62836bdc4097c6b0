"""The voice webhooks: a call enters a flow, each waiting verb's result resumes it, and the error guard.

Each webhook: check the signature, load the call's session, let the engine step (running the hooks
it stops at), store the session, answer TwiML. Any failure after the signature check still answers
200 with valid TwiML (the flow's error state, else an apology and a hang-up) and logs it with the
CallSid.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Flask, request
from werkzeug.exceptions import Forbidden, HTTPException, MethodNotAllowed, NotFound

from ivr.core.engine import Engine, Step, new_session
from ivr.core.filler import WAIT_EVENT
from ivr.core.flow import APOLOGY, SCREEN_EVENTS
from ivr.core.language_switch import matching_language
from ivr.core.twiml import Renderer, apology_document
from ivr.errors import StoreError, WebhookError
from ivr.hooks import run_pending
from ivr.store import Read
from ivr.web import metrics, security
from ivr.web.analytics import journal_answer, journal_error
from ivr.web.answers import claim_texts, commit, remember, request_digest, stored_answer
from ivr.web.deadline import error_hooks_deadline, hooks_deadline
from ivr.web.effects import carry_out_later, journal_walk
from ivr.web.http import webhook_params as _params
from ivr.web.http import xml_response as _xml
from ivr.web.services import hook_records, recorded_hooks, services
from ivr.web.waiting import answered, run_hooks, wait_step

__all__ = ["init_app", "voice"]

screened_document = Renderer.screened_document

log = logging.getLogger("ivr.web")
# Attempts at one webhook's step when other webhooks of the call step its session first (a retry
# of the same request stops at the first: it is answered as stored).
_ATTEMPTS = 3


voice = Blueprint("voice", __name__)
voice.before_request(security.check_webhook)


def init_app(app: Flask) -> None:
    """The voice routes."""
    app.register_blueprint(voice)


# -- voice --------------------------------------------------------------------------------------


# merge_slashes=False: werkzeug would answer /voice//menu with a 308 to /voice/menu; Twilio must get TwiML.
@voice.route("/voice/<flow_id>", methods=["GET", "POST"], merge_slashes=False)
def enter(flow_id: str):
    """A call enters a flow, at its start or at ?state=S; in the language ?language=L names, when it offers it."""
    state, language = request.args.get("state"), request.args.get("language")
    if language is not None:
        _check_language(flow_id, language)
    return _answer(flow_id, state, lambda engine, session, params, now: engine.start(session, params, now, state,
                                                                                      language))  # fmt: skip


def _check_language(flow_id: str, language: str) -> None:
    """?language= that the flow does not offer: the call starts in its default language, and the log says why."""
    flow = services().flows.flows.get(flow_id)
    if flow is not None and matching_language(flow.localized, language) is None:
        offered = ", ".join(flow.localized) or "none: it speaks one language"
        log.warning("CallSid=%s flow %s does not offer language %r (it offers %s); the call starts in its default",
                    _params().get("CallSid", "-"), flow_id, language, offered)  # fmt: skip


@voice.route("/voice/<flow_id>/<state>", methods=["GET", "POST"], merge_slashes=False)
def resume(flow_id: str, state: str):
    """The result of a state's waiting verb, or its no-input / no-recording redirect."""
    event = request.args.get("event")
    if event == WAIT_EVENT:  # a filler's Redirect: the slow work's result, or the filler again
        job = request.args.get("job", "")
        return _answer(flow_id, state, lambda engine, session, params, now: wait_step(
            engine, state, job, session, params, now, hooks_deadline()))  # fmt: skip
    return _answer(
        flow_id, state, lambda engine, session, params, now: engine.resume(state, session, params, now, event)
    )


@voice.app_errorhandler(NotFound)
@voice.app_errorhandler(MethodNotAllowed)
def unknown(exc: HTTPException):
    """A URL under /voice/ that names no flow and state (/voice/, /voice//menu): an apology, never HTML."""
    if not request.path.startswith("/voice/"):
        return exc
    try:  # no rule matched, so the blueprint's check did not run: a bad signature still gets 403
        security.check_webhook()
    except Forbidden as refused:
        return refused
    params = _params()
    log.error("CallSid=%s unknown voice URL %s; answered with an apology", params.get("CallSid", "-"), request.path)
    metrics.error_answer(None, "apology")
    return _xml(apology_document())


def _answer(flow_id: str, state: str | None, step_fn):
    params = _params()
    sid = params.get("CallSid", "")
    screening = request.args.get("event") in SCREEN_EVENTS
    if screening:  # a dialled party's leg belongs to the caller's session
        sid = params.get("ParentCallSid", "")
    found = services()
    store = found.store
    now = found.clock()
    engine = None
    try:
        registry = found.flows
        registry.refresh()
        engine = registry.engine(flow_id)  # the error state, should what follows fail
        if not sid:
            raise WebhookError("the request has no CallSid; is this URL configured as a Twilio voice webhook?")
        token = request.headers.get("I-Twilio-Idempotency-Token")
        digest = request_digest() if token else None
        with metrics.store_op("get"):
            seen = store.read(sid)
        existing = seen.value
        session = existing or new_session(flow_id)
        at = found.journal_clock().timestamp()
        for attempt in range(_ATTEMPTS):
            before = (session.get("state"), session.get("at"))  # for the journal: how long the caller was there
            answer = stored_answer(session, token, digest, registry)
            if answer is not None:
                # Twilio retried a webhook already answered: the same answer, nothing redone or sent.
                log.info("CallSid=%s retried webhook answered again, nothing redone", sid)
                return _xml(answer)
            engine, step = _step(registry, flow_id, state, step_fn, session, sid, params, now)
            texts = claim_texts(step)  # each text at most once per call, state and visit: claimed in the write
            step.session["at"] = at
            if token:
                sensitive = state in engine.flow.states and engine.flow.states[state].sensitive
                remember(step, token, digest, engine.flow.content_hash, sensitive=sensitive)
            # Hooks may take seconds: the step ran outside the store's lock, so the write checks that no
            # other attempt stepped this session meanwhile (it keeps what status callbacks stored).
            with metrics.store_op("update"):
                won, seen = commit(store, sid, step.session, seen)
            if won:
                answered()  # a job this step left running may now move the call on (a live update)
                if attempt == 0 and existing is None and not screening:
                    metrics.call_started()  # this webhook made the call's session: its first
                break
            log.info("CallSid=%s another attempt at this webhook stepped first; going on from its session", sid)
            session = seen.value or new_session(flow_id)
        else:
            raise StoreError(f"the session of CallSid {sid} kept changing under {_ATTEMPTS} attempts to step it")
        log.info("CallSid=%s flow=%s %s -> %s", sid, flow_id, state or "(entry)", step.state,
                 extra={"next_state": step.state})  # fmt: skip
        if step.state != state and step.state in (engine.flow.error_state, APOLOGY):  # a failed hook sent it there
            metrics.error_answer(engine.flow.id, "apology" if step.state == APOLOGY else "error_state")
        if not screening:  # the answering party's leg walks no state of the caller's
            journal_walk(sid, step.flow, step.walked, step.walked_flows)
            journal_answer(engine, sid, state, before, step, params, recorded_hooks(), texts, at)
        response = _xml(step.twiml)
        carry_out_later(response, sid, texts)
        return response
    except WebhookError as exc:  # a request that names what does not exist: no traceback needed
        log.error("CallSid=%s flow=%s state=%s: %s; answering with the error state", sid or "-", flow_id,
                  state or "(entry)", exc)  # fmt: skip
    except StoreError as exc:  # down or slow: do not wait on it again for the error state
        log.error("CallSid=%s flow=%s state=%s: %s; answering with the error state without the store",
                  sid or "-", flow_id, state or "(entry)", exc)  # fmt: skip
        sid = ""
    except Exception:
        log.exception("CallSid=%s flow=%s state=%s: webhook failed; answering with the error state", sid or "-",
                      flow_id, state or "(entry)")  # fmt: skip
    if screening:  # the answering party's leg: never the caller's error state; the caller goes on
        return _xml(screened_document(False))
    journal_error(engine.flow.id if engine is not None else flow_id, params.get("CallSid", ""), state,
                  found.journal_clock().timestamp(), "webhook failed")  # fmt: skip
    return _xml(_error_twiml(engine, sid, params, now))


def _step(registry, flow_id: str, state: str | None, step_fn, session: dict, sid: str, params: dict,
          now: datetime) -> tuple[Engine, Step]:  # fmt: skip
    """One attempt at the webhook's step from `session`, its hooks run: (the engine it ran on, the step)."""
    if request.endpoint == "voice.enter" and request.args.get("ctx"):
        _bring_context(services().store, request.args["ctx"], flow_id, session, sid)
    # A call finishes on the version of the flow it started with, when it can still be had.
    engine = registry.engine(flow_id, session.get("versions", {}).get(flow_id))
    gone = state is not None and state not in engine.flow.states and session.get("state") == state
    if gone and request.args.get("event") is None:  # the call was there; an edit removed the state
        log.warning("CallSid=%s flow=%s has no state %s any more; the call starts the flow again", sid, flow_id,
                    state)  # fmt: skip
        step_fn = _restart
    sensitive = state in engine.flow.states and engine.flow.states[state].sensitive
    return engine, run_hooks(engine, step_fn(engine, session, params, now), hooks_deadline(), redact=sensitive)


def _bring_context(store, ctx_id: str, flow_id: str, session: dict, sid: str) -> None:
    """An outbound call's variables, kept server-side under an opaque id until its first webhook."""
    ctx = store.get(f"ctx:{ctx_id}")
    if ctx is None:
        ctx = session.get("outbound")  # a retried first webhook: already moved into the session
        if ctx is None:
            log.warning("CallSid=%s entered %s with an unknown or expired ctx; no variables", sid, flow_id)
        return
    if ctx.get("flow") not in (None, flow_id):
        log.warning("CallSid=%s ctx was made for flow %s, not %s; ignored", sid, ctx.get("flow"), flow_id)
        return
    session["vars"].update(ctx.get("vars") or {})
    if isinstance(session["vars"].get("language"), str):  # an outbound call's `language` variable: the call's
        session["language"] = session["vars"]["language"]
    session["outbound"] = {"campaign": ctx.get("campaign"), "row": ctx.get("row")}
    store.delete(f"ctx:{ctx_id}")  # re-keyed to the CallSid: the session holds it now


def _restart(engine: Engine, session: dict, params: dict, now: datetime) -> Step:
    """A state that is gone (an edit removed it): a safe place, the flow's start."""
    return engine.start(session, params, now)


def _run_hooks(step: Step, deadline: float) -> Step:
    """Carry out the hooks a step stops at, by `deadline`; their records go with the request (journal, recording)."""
    return run_pending(step, services().hooks, hook_records(), deadline=deadline)


def _error_twiml(engine: Engine | None, sid: str, params: dict, now: datetime) -> str:
    """The flow's error state if it has one and it renders, else the apology. Its hooks run outside
    the store's lock, as a webhook's do; without a CallSid (or a store) nothing is stored."""
    if engine is not None and engine.flow.error_state is not None:
        store = services().store
        seen = Read(None, None)
        try:
            with metrics.store_op("get"):
                seen = store.read(sid) if sid else seen
        except Exception:
            sid = ""
        existing = seen.value
        session = existing or new_session(engine.flow.id)
        try:
            step = _run_hooks(engine.error_step(session, params, now), error_hooks_deadline())
        except Exception:
            log.exception("CallSid=%s flow=%s: the error state failed too; apologising", sid or "-", engine.flow.id)
        else:
            if sid:
                try:  # an attempt that stepped meanwhile keeps its session: the caller hears this one anyway
                    with metrics.store_op("update"):
                        won, _ = commit(store, sid, step.session, seen)
                    if won and existing is None:
                        metrics.call_started()  # a call whose first webhook failed is still a call
                except Exception:
                    log.exception("CallSid=%s flow=%s: storing the error state failed", sid, engine.flow.id)
            metrics.error_answer(engine.flow.id, "error_state")
            journal_walk(params.get("CallSid", ""), step.flow, step.walked, step.walked_flows)
            journal_answer(engine, params.get("CallSid", ""), None, (None, None), step, params, recorded_hooks(), [],
                           services().journal_clock().timestamp(), error=True)  # fmt: skip
            return step.twiml
    metrics.error_answer(engine.flow.id if engine is not None else None, "apology")
    defaults = engine.flow.defaults if engine is not None else None
    return apology_document(defaults.voice if defaults else None, defaults.language if defaults else None)
