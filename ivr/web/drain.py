"""Draining the callback spool into the store: in the background after each callback, at each worker's
start, by `python -m ivr drain`, and synchronously in tests (`drain_now`)."""

from __future__ import annotations

import logging

from flask import Flask

from ivr.core.flow import Record
from ivr.errors import IvrError
from ivr.outbound.recordings import RecordingFound
from ivr.web.background import Background
from ivr.web.delivery import apply_entry, redeliver_stale
from ivr.web.messages import MessageBox
from ivr.web.services import services
from ivr.web.spool import DrainResult, Spool

__all__ = ["drain_now", "drain_soon", "init_app", "reconcile", "start_background", "warn_if_volatile"]

log = logging.getLogger("ivr.web")

RETRY_SECONDS = 5.0  # while entries wait for the store (or for another process's drain)


def init_app(app: Flask) -> None:
    """The spool (IVR_SPOOL_DIR) and this app's background work; tests drain synchronously."""
    found = services(app)
    found.spool = Spool(app.config["IVR_SPOOL_DIR"])
    found.background = Background(synchronous=app.config["IVR_ENV"] == "test", on_start=lambda: _at_start(app))
    if app.config["IVR_ENV"] == "production":
        warn_if_volatile(app)


def drain_now(app: Flask) -> DrainResult | None:
    """Apply every spooled callback to the store, in this thread; None when another process is draining."""
    result = services(app).spool.drain(lambda entry: apply_entry(app, entry))
    if result is not None and (result.applied or result.rejected or result.left):
        log.info("spool drained: %d applied, %d rejected, %d left", result.applied, result.rejected, result.left)
    return result


def drain_soon(app: Flask) -> None:
    """Ask this process's background thread to drain (right away, in tests)."""
    services(app).background.soon("drain", lambda: _drain_and_retry(app))


def _drain_and_retry(app: Flask) -> None:
    result = drain_now(app)
    if result is None or result.left:  # the store is down, or another process drains: look again soon
        services(app).background.later("drain", RETRY_SECONDS, lambda: _drain_and_retry(app))


def start_background(app) -> None:
    """Start this process's background thread for an ivr app (gunicorn's post_worker_init); others are left alone."""
    if isinstance(app, Flask) and "ivr" in app.extensions:  # not another Flask app served with this config
        services(app).background.start()
        if services(app).events is not None:  # the journal's thread: its daily purge runs from the start
            services(app).events.start()


def _at_start(app: Flask) -> None:
    """What an earlier process left: spooled callbacks, and deliveries whose deliverer died."""
    _drain_and_retry(app)
    redeliver_stale(app)


def warn_if_volatile(app: Flask) -> None:
    """Warn when the store is a Redis that keeps nothing on disk (no AOF, no snapshots) while it holds messages."""
    store = services(app).store
    try:
        if store.keeps_on_disk() is not False or not store.scan("message:"):
            return
    except IvrError as exc:  # a store that is down says so on the first call; this is only a warning
        log.info("could not tell whether the store keeps voicemail on disk: %s", exc)
        return
    log.warning(
        'the store %r holds voicemail messages but writes nothing to disk (appendonly no, save ""): a restart '
        "of Redis loses them; set appendonly yes (docs/reliability.md)",
        store,
    )


def reconcile(app: Flask, recordings: list[RecordingFound], *, flow: str | None = None,
              state: str | None = None) -> list[str]:  # fmt: skip
    """Store and deliver the completed recordings the message box lacks; their RecordingSids, in order.

    The flow is the call's (from its session while that lasts), else `flow`; the state is `state`,
    else the flow's one Record state. Without either the message is stored and listed, not delivered.
    """
    store = services(app).store
    box = MessageBox(store)
    stored = []
    for found in recordings:
        if found.status != "completed" or box.get(found.sid) is not None:
            continue
        if found.source and found.source != "RecordVerb":  # a whole-call (or dial) recording is no voicemail
            continue
        flow_id = (store.get(found.call_sid) or {}).get("flow") or flow or ""
        engine = services(app).flows.engines.get(flow_id)
        records = [s.name for s in engine.flow.states.values() if isinstance(s.action, Record)] if engine else []
        state_name = state or (records[0] if len(records) == 1 else "")
        log.warning("CallSid=%s recording %s was never stored: storing it (flow=%s state=%s)",
                    found.call_sid, found.sid, flow_id or "-", state_name or "-")  # fmt: skip
        apply_entry(app, {"kind": "recording", "params": found.callback_params(), "flow": flow_id, "state": state_name})
        stored.append(found.sid)
    return stored
