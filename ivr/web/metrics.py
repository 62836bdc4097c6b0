"""Prometheus metrics at GET /metrics: the one home of every metric; other modules call its small functions.

Under gunicorn the workers count in prometheus_client's multiprocess mode: `ivr.web.gunicorn_conf` sets
PROMETHEUS_MULTIPROC_DIR (a fresh directory) before anything imports prometheus_client, each worker
writes its own files there, and a scrape of any worker merges them. In a single process (tests,
`python app.py`) the default registry holds them.

Labels never carry what a caller sent or a phone number: routes are URL rules (`/voice/<flow_id>/<state>`),
flows are the ids of loaded flows, hooks are the names a flow's YAML gives, the rest are fixed words.
"""

from __future__ import annotations

import functools
import hmac
import os
import time

from flask import Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from ivr.errors import StoreError
from ivr.web.deadline import elapsed
from ivr.web.security import not_local
from ivr.web.services import recorded_hooks, services
from ivr.web.spool import Spool

__all__ = [
    "call_ended",
    "call_started",
    "campaign_calls",
    "delivered",
    "error_answer",
    "hook_called",
    "init_app",
    "store_op",
    "text_sent",
]

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
# Twilio waits 15 s; the app answers by 12 (ivr/web/deadline.py): buckets that show how close it came.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 12.0, 15.0)
_STORE_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
_UNMATCHED = "(unmatched)"  # a request no URL rule matched: its path is the sender's text, never a label

WEBHOOKS = Counter("ivr_webhooks", "Requests answered, by URL rule and HTTP status", ["route", "status"])
WEBHOOK_SECONDS = Histogram("ivr_webhook_seconds", "Time to answer a request, by URL rule", ["route"], buckets=_SECONDS)
ERROR_ANSWERS = Counter(
    "ivr_error_answers", "Calls answered with the flow's error state or the apology", ["flow", "kind"]
)
HOOK_CALLS = Counter(
    "ivr_hook_calls", "Hook calls by hook name and result (ok, error, timeout, busy)", ["hook", "result"]
)
HOOK_SECONDS = Histogram("ivr_hook_seconds", "Time a hook call took, by hook name", ["hook"], buckets=_SECONDS)
STORE_ERRORS = Counter("ivr_store_errors", "Session store operations of the voice webhooks that failed", ["op"])
STORE_SECONDS = Histogram(
    "ivr_store_seconds", "Time of the voice webhooks' session store operations", ["op"], buckets=_STORE_SECONDS
)
TEXTS = Counter("ivr_texts", "Texts (sms:) sent and failed", ["result"])
DELIVERIES = Counter("ivr_deliveries", "Voicemail deliveries (on_message) sent and failed", ["kind", "result"])
CAMPAIGN_CALLS = Counter("ivr_campaign_calls", "Campaign calls placed and failed", ["result"])
# Per process, summed over the live ones: a call counted up in one worker may be counted down in another.
CALLS_IN_PROGRESS = Gauge(
    "ivr_calls_in_progress",
    "Calls from their first voice webhook until their final status",
    multiprocess_mode="livesum",
)


def init_app(app: Flask) -> None:
    """Time and count every request, count the hooks each ran, and serve /metrics."""
    app.after_request(_answered)
    app.add_url_rule("/metrics", "metrics", _metrics)


# -- what other modules call --------------------------------------------------------------------


def error_answer(flow: str | None, kind: str) -> None:
    """A caller got the flow's error state (`error_state`) or the apology (`apology`); `flow` a loaded flow's id."""
    ERROR_ANSWERS.labels(flow or "-", kind).inc()


def hook_called(record: dict) -> None:
    """Count one hook call from the runner's record (name, error, seconds)."""
    error = record.get("error")
    result = "ok" if error is None else error if error in ("timeout", "busy") else "error"
    HOOK_CALLS.labels(record["name"], result).inc()
    HOOK_SECONDS.labels(record["name"]).observe(record.get("seconds") or 0.0)


class store_op:  # lower case: used as a function, `with metrics.store_op("get"):`
    """Time a session store operation (`get`, `update`) and count it when the store fails."""

    __slots__ = ("_op", "_started")

    def __init__(self, op: str) -> None:
        self._op = op

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None and issubclass(kind, StoreError):
            _store_errors(self._op).inc()
        _store_seconds(self._op).observe(time.perf_counter() - self._started)


# Each label set's child, looked up once: prometheus_client checks the labels and takes a lock on every
# `labels()` call. The sets are few (operations, URL rules, statuses); multiprocess values follow a fork.
@functools.cache
def _store_seconds(op: str):
    return STORE_SECONDS.labels(op)


@functools.cache
def _store_errors(op: str):
    return STORE_ERRORS.labels(op)


@functools.cache
def _webhooks(route: str, status: int):
    return WEBHOOKS.labels(route, str(status))


@functools.cache
def _webhook_seconds(route: str):
    return WEBHOOK_SECONDS.labels(route)


def text_sent(ok: bool) -> None:
    """Count a text handed to Twilio (`sent`) or refused (`failed`)."""
    TEXTS.labels("sent" if ok else "failed").inc()


def delivered(kind: str, ok: bool) -> None:
    """Count a voicemail delivery (`recording` or `transcription`) that went (`sent`) or failed."""
    DELIVERIES.labels(kind, "sent" if ok else "failed").inc()


def campaign_calls(placed: int, failed: int) -> None:
    """Count what a campaign run placed and what failed."""
    if placed:
        CAMPAIGN_CALLS.labels("placed").inc(placed)
    if failed:
        CAMPAIGN_CALLS.labels("failed").inc(failed)


def call_started() -> None:
    """A call's first voice webhook made its session."""
    CALLS_IN_PROGRESS.inc()


def call_ended() -> None:
    """A call's final status was kept."""
    CALLS_IN_PROGRESS.dec()


# -- every request -------------------------------------------------------------------------------


def _answered(response):
    rule = request.url_rule
    route = rule.rule if rule is not None else _UNMATCHED
    _webhooks(route, response.status_code).inc()
    seconds = elapsed()  # from the request's arrival, as its deadline counts (ivr/web/deadline.py)
    if seconds is not None:
        _webhook_seconds(route).observe(seconds)
    for record in recorded_hooks() or ():
        hook_called(record)
    return response


# -- GET /metrics --------------------------------------------------------------------------------


def _metrics():
    if not _allowed():
        abort(403)
    return Response(scrape(services().spool), content_type=CONTENT_TYPE_LATEST)


def _allowed() -> bool:
    """This machine without proxy headers (the `not_local` rule), or the bearer IVR_METRICS_TOKEN."""
    token = current_app.config.get("IVR_METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        return hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode())
    return not_local() is None


def scrape(spool: Spool | None) -> bytes:
    """Every metric in Prometheus' text format: all workers' when in multiprocess mode, with the spool's gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    if spool is not None:
        registry.register(_SpoolGauges(spool))
    return generate_latest(registry)


class _Default:
    """This process's own metrics (no multiprocess directory)."""

    def collect(self):
        """What the default registry holds."""
        yield from REGISTRY.collect()


class _SpoolGauges:
    """The spool's depth and the age of its oldest entry, read from disk at scrape time: one truth for all workers."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def collect(self):
        """ivr_spool_depth and ivr_spool_oldest_seconds (none when the spool cannot be read: /readyz says why)."""
        try:
            depth, oldest = self.spool.pending(), self.spool.oldest_age()
        except OSError:
            return
        yield GaugeMetricFamily("ivr_spool_depth", "Callbacks waiting in the spool for the store", depth)
        yield GaugeMetricFamily("ivr_spool_oldest_seconds", "Seconds the oldest waiting callback has waited", oldest)
