"""Liveness and readiness for load balancers and orchestrators.

`GET /healthz` is cheap liveness: the process answers HTTP. `GET /readyz` says whether this process can
serve calls now: its flows loaded, the session store answers within its budget, the spool is writable
(each check in `CHECKS`); 503 with the part that failed and why otherwise, never a traceback. The call
journal's state is shown beside them (`ADVISORY`) without deciding readiness.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask, jsonify

from ivr.errors import IvrError
from ivr.settings import unwritable
from ivr.web.services import Services, services

__all__ = ["ADVISORY", "CHECKS", "STORE_BUDGET", "init_app", "readiness"]

log = logging.getLogger("ivr.web")

# Seconds the store gets to answer a readiness check: what a webhook's own store calls get (Redis's budget).
STORE_BUDGET = 0.5


def init_app(app: Flask) -> None:
    """GET /healthz and GET /readyz, open to all: they say nothing about calls."""
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/readyz", "readyz", _readyz)


def _healthz():
    return jsonify(status="ok", flows=sorted(services().flows.engines))


def _readyz():
    found = services()
    ready, checks = readiness(found)
    # An edit that did not load leaves its last good version serving: worth seeing, not a reason to
    # take the server out (a bad edit deployed everywhere would take every server out).
    problems = [p.format() for p in found.flows.problems]
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if problems:
        body["flow_problems"] = problems
    return jsonify(body), 200 if ready else 503


def readiness(found: Services) -> tuple[bool, dict[str, dict]]:
    """Run every check: (all passed, {check: {"ok": bool, "seconds": float, "error": why}})."""
    results = {}
    for name, check in {**CHECKS, **ADVISORY}.items():
        started = time.perf_counter()
        try:
            why = check(found)
        except IvrError as exc:  # the store is down, say: the answer says so, no traceback needed
            why = str(exc)
        except Exception as exc:  # a check that breaks says so in its answer, never as a traceback
            log.exception("readiness check %s failed", name)
            why = f"{type(exc).__name__}: {exc}"
        result: dict = {"ok": why is None, "seconds": round(time.perf_counter() - started, 3)}
        if why is not None:
            result["error"] = why
        results[name] = result
    return all(results[name]["ok"] for name in CHECKS), results


def _flows(found: Services) -> str | None:
    registry = found.flows
    if not registry.engines:
        return f"no flow is loaded from {registry.directory}"
    return None


def _store(found: Services) -> str | None:
    started = time.perf_counter()
    found.store.ping(STORE_BUDGET)  # StoreError names the store and what failed
    seconds = time.perf_counter() - started
    if seconds > STORE_BUDGET:
        return f"the session store answered in {seconds:.2f} s, over its {STORE_BUDGET} s budget"
    return None


def _spool(found: Services) -> str | None:
    if found.spool is None:
        return "no spool is set up"
    why = unwritable(found.spool.directory)
    return None if why is None else f"the spool {found.spool.directory} is not writable: {why}"


def _journal(found: Services) -> str | None:
    writer = found.events
    if writer is None:
        return None
    if writer.failing:
        return f"the call journal is not taking rows ({writer.pending()} waiting, {writer.dropped} dropped)"
    return None


CHECKS: dict[str, Callable[[Services], str | None]] = {"flows": _flows, "store": _store, "spool": _spool}
# Shown with the checks, but never taking the server out: calls go on while the journal's database is down
# (its rows wait in the writer), and a journal outage must not stop every server at once.
ADVISORY: dict[str, Callable[[Services], str | None]] = {"journal": _journal}
