"""Fillers on the web: slow work goes on in the background while the caller hears the state's filler.

A webhook whose walk stops at a `run:`/`http:` state with a `filler:` starts the work on a job thread
(a pool per process) and waits for it `after` seconds. Done by then, the answer is the same as without a filler.
Not done, the webhook answers at once with the walk so far, the filler and a Redirect to the state's
wait URL (`?event=wait&job=ID`), and keeps a record of the job in the shared store (`job:<id>`: its
state, the deadline, then the result). Each wait request looks for the result in the store (whichever
server the Redirect reaches) for up to `after` seconds (half a second at least), and goes on with it
(`Engine.finish_hook`), or answers the filler again; past the job's deadline (the work timed out, or
its server died) the state takes its error route. A wait never starts the work again: the job's id is
its visit's key.

With REST credentials and IVR_PUBLIC_URL set, the worker moves the call on as soon as the result is
stored: Twilio's live call update (`calls(sid).update(url=WAIT_URL, method="POST")`).

Replay feeds recorded results: a request that answered the filler recorded none, so a replay answers the
filler there too; the wait request that picked the result up carries it in its recording line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from flask import Flask, current_app, g

from ivr.core.effects import HookResult
from ivr.core.engine import Engine, Step
from ivr.core.filler import WAIT_EVENT, Filler, filler_document, overdue, wait_url
from ivr.errors import WebhookError
from ivr.hooks import HookRunner
from ivr.web.services import hook_records, services, twilio_client

__all__ = ["JOB_TTL", "answered", "run_hooks", "wait_step"]

log = logging.getLogger("ivr.web")

JOB_TTL = 3600.0  # a job's record outlives any deadline (at most ivr.core.filler.MAX_DEADLINE)
_POLL = 0.05  # seconds between a wait request's looks at the store
_LOOK = 0.5  # a wait request looks for the result at least this long before it plays the filler again
_GRACE = 2.0  # past a job's deadline its own worker has given up: later than this, its server is gone
_ANSWERED_WITHIN = 10.0  # the live update waits this long for the filler's answer to be stored
_JOBS = "ivr_jobs"  # g: the jobs this request started


class _Job:
    """Work running in this process: its result once done, and whether the filler was answered meanwhile."""

    __slots__ = ("answered", "done", "id", "lock", "published", "record", "result")

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.answered = threading.Event()  # set once the session that waits for it is stored
        self.published = False
        self.result: HookResult | None = None
        self.record: dict | None = None


def job_id(hook) -> str:
    """The job of one visit of a state by one call: a retried webhook finds it instead of starting another."""
    return hashlib.sha256(hook.context.get("key", "").encode()).hexdigest()[:24]


def run_hooks(engine: Engine, step: Step, deadline: float, *, redact: bool = False) -> Step:
    """Carry out the hooks a step stops at, as ivr.hooks.run_pending does; one with a filler that is not done
    `after` seconds in answers the filler (`redact`: the request's input leaves the session then)."""
    found = services()
    runner, records = found.hooks, hook_records()
    while step.pending is not None:
        pending = step.pending
        filler: Filler | None = pending.filler
        if filler is None or (runner.replaying and pending.waiting is not None):
            result, record = runner.run(pending.hook, deadline=deadline)
        else:
            jid = job_id(pending.hook)
            if runner.replaying is not None or found.store.get(f"job:{jid}") is not None:
                return _filler_step(engine, step, jid, redact)  # recorded as slow, or already running
            job = _start(found, runner, engine, pending.hook, filler, jid)
            job.done.wait(max(0.0, min(filler.after, deadline - time.monotonic())))
            with job.lock:  # the worker stores its result only once the job is published
                if job.result is None:
                    job.published = True
                    _save(found.store, jid, {"status": "running", "flow": engine.flow.id, "state": step.state,
                                             "deadline": time.time() + filler.deadline})  # fmt: skip
                    g.setdefault(_JOBS, []).append(job)
                    return _filler_step(engine, step, jid, redact)
            result, record = job.result, job.record
        records.append(record)
        step = pending.resume(result)
    return step


def answered() -> None:
    """The session that waits for this request's jobs is stored: their live updates may go."""
    for job in g.pop(_JOBS, ()):
        job.answered.set()


def _filler_step(engine: Engine, step: Step, jid: str, redact: bool) -> Step:
    twiml, walked = step.pending.waiting(wait_url(engine.renderer, engine.flow.id, step.state, jid))
    step.session["waiting"] = jid
    if redact:
        step.session["input"] = {"digits": "", "speech": "", "confidence": None, "redacted": True}
    return replace(step, twiml=twiml, pending=None, walked=walked, document=None)


def _save(store, jid: str, fields: dict) -> None:
    store.update(f"job:{jid}", lambda old: {**(old or {}), **fields}, JOB_TTL)


def _start(found, runner: HookRunner, engine: Engine, hook, filler: Filler, jid: str) -> _Job:
    """Start the work on a thread of its own (its hook still runs within its bulkhead)."""
    job = _Job(jid)
    store = found.store
    url = wait_url(engine.renderer, engine.flow.id, hook.state, jid)
    app = current_app._get_current_object()
    sid = hook.context.get("call_sid", "")

    def work() -> None:
        result, record = runner.run(hook, budget=filler.deadline)
        with job.lock:
            job.result, job.record = result, record
            if job.published:
                answer = [result.outcome, result.vars, result.error, result.language]
                _save(store, jid, {"status": "done", "result": answer, "record": record})
        job.done.set()
        if not job.published:  # answered in time: no filler, nothing to move on (and no REST client made)
            return
        client = _live_client(app, url)
        if client is None or not job.answered.wait(_ANSWERED_WITHIN):
            return
        if (store.get(f"job:{jid}") or {}).get("status") != "done":  # a wait request took it meanwhile
            return
        try:
            client.calls(sid).update(url=url, method="POST")
        except Exception as exc:  # the call ended, or Twilio refused: the filler's own Redirect still comes
            log.warning("CallSid=%s live call update to %s's result failed (%s); the filler's Redirect picks it "
                        "up", sid, hook.state, exc)  # fmt: skip
        else:
            log.info("CallSid=%s moved on to %s's result with a live call update", sid, hook.state)

    def guarded() -> None:
        try:
            work()
        except Exception:
            log.exception("CallSid=%s job %s of state %s failed", sid, jid, hook.state)
            job.done.set()

    _workers().submit(guarded)
    return job


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()
# Jobs waiting at once, per process: each waits on its hook's bulkhead at most its deadline (120 s).
_WORKERS = 64


def _workers() -> ThreadPoolExecutor:
    """This process's job threads, made on first use (a forked worker makes its own): a thread per job
    costs more than the whole of a fast hook's wait."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_WORKERS, thread_name_prefix="ivr-job"))
        return _pool[1]


def _live_client(app: Flask, url: str):
    """The REST client that moves a call on, when credentials and an absolute wait URL allow it; else None."""
    config = app.config
    if not config.get("TWILIO_ACCOUNT_SID") or not url.startswith("http"):
        return None
    if not (config.get("TWILIO_AUTH_TOKEN") or config.get("TWILIO_API_KEY")):
        return None
    try:
        return twilio_client(app)
    except Exception as exc:  # a setting that does not make a client: the filler's Redirect still comes
        log.warning("no live call updates for fillers: %s", exc)
        return None


def wait_step(engine: Engine, state: str, jid: str, session: dict, params: dict, now, deadline: float) -> Step:
    """A filler's Redirect: go on with the job's result when it is there, else the filler again; past the
    job's deadline (or with its record gone), the state's error route."""
    current = engine.flow.states.get(state)
    if current is None or current.filler is None or not jid:
        raise WebhookError(f"state '{state}' of flow '{engine.flow.id}' has no slow work to wait for")
    if session.get("waiting") != jid:
        waited = session.get("waited") or {}
        if waited.get("job") == jid:  # a second wait for a result already picked up: the same answer
            return Step(waited["twiml"], engine.flow.id, session.get("state", state), session, outcome=WAIT_EVENT)
        raise WebhookError(f"the call is not waiting for job {jid} at state '{state}'")
    found = services()
    runner, key = found.hooks, f"job:{jid}"
    name = getattr(current.action, "name", "http")
    if runner.replaying is not None:
        if not runner.replaying:  # the recorded call heard the filler again here
            return _again(engine, current, session, jid)
        recorded = runner.replaying.pop(0)
        result = HookResult(recorded.get("outcome"), dict(recorded.get("vars") or {}), recorded.get("error"),
                            recorded.get("language"))  # fmt: skip
        record = {**recorded, "state": state}
    else:
        look = max(current.filler.after, _LOOK)  # never a tight loop of Redirects, whatever `after` says
        until = time.monotonic() + min(look, max(0.0, deadline - time.monotonic()))
        while True:
            job = found.store.get(key)
            if job is not None and job.get("status") in ("done", "taken") and job.get("result"):
                outcome, variables, error, *language = job["result"]  # (jobs stored before languages: three)
                result = HookResult(outcome, variables, error, language[0] if language else None)
                record = job.get("record") or {}
                break
            if job is None or time.time() > job.get("deadline", 0) + _GRACE:
                log.error("CallSid=%s state %s: job %s %s; taking its error route", params.get("CallSid", "-"),
                          state, jid, "is gone" if job is None else "is past its deadline")  # fmt: skip
                result = overdue(current.action)
                record = {"name": name, "state": state, "outcome": result.outcome, "vars": {}, "error": "timeout"}
                break
            if time.monotonic() >= until:
                return _again(engine, current, session, jid)
            time.sleep(_POLL)
        _save(found.store, jid, {"status": "taken"})
    hook_records().append(record)
    session.pop("waiting", None)
    step = run_hooks(engine, engine.finish_hook(state, session, params, now, result), deadline)
    step.session["waited"] = {"job": jid, "twiml": step.twiml}
    return step


def _again(engine: Engine, state, session: dict, jid: str) -> Step:
    url = wait_url(engine.renderer, engine.flow.id, state.name, jid)
    renderer = engine.renderer_for(session)  # the filler of the call's language
    twiml = filler_document(renderer, renderer.flow.states[state.name].filler, url)
    return Step(twiml, engine.flow.id, state.name, session, outcome=WAIT_EVENT)
