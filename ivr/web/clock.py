"""The app's clock, and the one way a request may set it: `X-Ivr-Clock`, in development, from this machine.

`python -m ivr phone --url ... --at TIME` sends the header so that a running app takes the same
route at any hour (opening hours, schedules). Production and test never read it: there the clock
is the real one (or the one given to create_app), whatever a request carries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, has_request_context, request

from ivr.web.security import not_local
from ivr.web.services import services

__all__ = ["CLOCK_HEADER", "init_app", "parse_moment", "request_clock"]

CLOCK_HEADER = "X-Ivr-Clock"
log = logging.getLogger("ivr.clock")


def init_app(app: Flask) -> None:
    """In development only, let a local request set the time it is answered at."""
    if app.config["IVR_ENV"] == "development":
        found = services(app)
        found.clock = request_clock(found.clock)


def parse_moment(text: str) -> datetime:
    """An ISO time with its offset (or Z), such as 2026-11-25T10:00-05:00; ValueError saying what is wrong."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO time such as 2026-11-25T10:00-05:00") from None
    if moment.tzinfo is None:
        # A time without its offset would be read in the server's zone, not the flow's: refuse to guess.
        raise ValueError(f"{text!r} needs its offset, e.g. {text}-05:00 or {text}Z")
    return moment


def request_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """`clock`, except in a request from this machine that names its time in X-Ivr-Clock."""

    def now() -> datetime:
        # Work outside a request (the drainer, deliveries) keeps the real time.
        if not has_request_context():
            return clock()
        text = request.headers.get(CLOCK_HEADER)
        # not_local: the same rule as unsigned requests, so no caller through a tunnel or proxy can set it.
        if not text or not_local():
            return clock()
        try:
            return parse_moment(text)
        except ValueError as exc:
            log.warning("ignored %s: %s", CLOCK_HEADER, exc)
            return clock()

    return now
