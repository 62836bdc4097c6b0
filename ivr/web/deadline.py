"""Every webhook's own deadline, counted from the moment the request reached the app.

Twilio waits 15 s for a webhook's answer, then plays its application error. Whatever gunicorn's
worker class (under threaded workers its `timeout` bounds no request), the app itself answers in
time: a step's hooks end HOOKS_BY seconds after the request started, the error state's hooks (when
the step failed) by ERROR_HOOKS_BY, which leaves the store's write and the sending of the answer
the rest of ANSWER_BY. A hook that hangs past its deadline is abandoned on its thread, never joined.

These are the numbers; gunicorn's `timeout` (ivr/web/gunicorn_conf.py) is derived from ANSWER_BY.
"""

from __future__ import annotations

import time

from flask import Flask, request

__all__ = ["ANSWER_BY", "ERROR_HOOKS_BY", "HOOKS_BY", "TWILIO_WAITS", "elapsed", "error_hooks_deadline",
           "hooks_deadline", "init_app"]  # fmt: skip

TWILIO_WAITS = 15.0  # seconds Twilio waits for the TwiML before it plays "an application error has occurred"
ANSWER_BY = 12.0  # the answer is on its way by then: 3 s for the network, TLS and Twilio's own queues
HOOKS_BY = 8.0  # a step's hooks end here (each also within IVR_HOOK_TIMEOUT)
ERROR_HOOKS_BY = 10.0  # the error state's hooks end here; the last 2 s are for the store's write and the answer
_STARTED = "ivr.started"  # the environ key of the request's start, in time.monotonic() seconds


def init_app(app: Flask) -> None:
    """Note when each request reaches the app, before Flask reads anything of it."""
    inner = app.wsgi_app

    def started(environ, start_response):
        environ.setdefault(_STARTED, time.monotonic())  # a wrapping middleware may have noted it earlier
        return inner(environ, start_response)

    app.wsgi_app = started


def _started() -> float:
    return request.environ.get(_STARTED) or time.monotonic()


def elapsed() -> float | None:
    """Seconds since this request reached the app (None when it was not noted: an app without init_app)."""
    started = request.environ.get(_STARTED)
    return None if started is None else time.monotonic() - started


def hooks_deadline() -> float:
    """When this request's step must be done with its hooks (time.monotonic() seconds)."""
    return _started() + HOOKS_BY


def error_hooks_deadline() -> float:
    """When the hooks of this request's error state must be done (time.monotonic() seconds)."""
    return _started() + ERROR_HOOKS_BY
