"""The app's services, reached through typed accessors rather than string keys.

    store = services().store          # in a request
    services(app).flows.engines       # with an app at hand (the CLI, tests)

One `Services` object per app, built by `init_app` from the settings: the session store, the flows
(with hot reload), the hook runner, the clock, the signature validator, the callback spool and the
background work (set by `ivr.web.drain`), and the journal and recorder when they are on. Tests may
swap a service (`services(app).store = MemoryStore(...)`). What one request collects for later (the
hooks it ran) is reached through `hook_records()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, current_app, g
from twilio.http import HttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from ivr.agent.model import Model
from ivr.analytics import EventWriter
from ivr.core.agent import Agent
from ivr.core.http_step import secret_names
from ivr.core.twiml import Urls
from ivr.hooks import HookRunner, load_hooks, registry
from ivr.outbound.client import make_client
from ivr.outbound.http import HttpSender
from ivr.phone.recording import Recorder
from ivr.store import SessionStore, store_from_settings
from ivr.web.background import Background
from ivr.web.call_recording import RecordingControl
from ivr.web.journal import Journal
from ivr.web.live_calls import LiveCalls
from ivr.web.registry import FlowRegistry
from ivr.web.spool import Spool

__all__ = ["Services", "hook_records", "init_app", "recorded_hooks", "services", "twilio_client"]

_KEY = "ivr"
_HOOKS = "ivr_hooks"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Services:
    """What the routes use; one per app."""

    store: SessionStore
    flows: FlowRegistry
    hooks: HookRunner
    clock: Callable[[], datetime]
    validator: RequestValidator | None = None
    shared_keys: dict[str, RequestValidator] = field(default_factory=dict)  # Webhooks SharedKeys by key id
    journal: Journal | None = None  # for the built-in phones: what each call made the app do
    recorder: Recorder | None = None  # IVR_RECORD_DIR: every webhook of each call
    twilio_http: HttpClient | None = None  # a test's fake Twilio HTTP client
    spool: Spool | None = None  # IVR_SPOOL_DIR: callbacks written before they are answered (`ivr.web.drain`)
    background: Background | None = None  # work outside a request, one executor per process
    live_calls: LiveCalls | None = None  # the browser phone's calls in progress, when it is on
    events: EventWriter | None = None  # IVR_EVENTS: the call journal's writer (`ivr.web.analytics`)
    analytics_key: bytes = b""  # IVR_ANALYTICS_KEY: the secret of callers' keyed hashes
    numbers: str = "hash"  # IVR_ANALYTICS_NUMBERS
    # The journal's clock: the app's own, never the one a development request names (X-Ivr-Clock), so
    # that a call tried "at" another time still measures how long its caller took.
    journal_clock: Callable[[], datetime] = _utc_now
    # An agent state's model (`ivr.web.relay.model_factory` from IVR_AGENT_*, unless a test sets its own).
    agent_model: Callable[[Agent], Model | None] | None = None


def twilio_client(app: Flask) -> Client:
    """The app's REST client: the credentials of its settings, through a test's fake HTTP client when set."""
    return make_client(app.config, http_client=services(app).twilio_http)


def init_app(app: Flask, *, clock: Callable[[], datetime] | None = None) -> Services:
    """Open the store, import the hooks, load the flows (checking the hooks and schedules they name)."""
    settings = app.config
    store = store_from_settings(settings)
    # Before the flows: loading checks that every hook a flow names is registered.
    load_hooks(settings["IVR_HOOKS"], settings["IVR_FLOWS_DIR"])
    flows = FlowRegistry(
        settings["IVR_FLOWS_DIR"],
        Urls(settings["IVR_PUBLIC_URL"], pci_mode=settings["IVR_PCI_MODE"]),
        settings["IVR_TIMEZONE"],
        settings["IVR_SCHEDULES"],
        store,
        hot_reload=settings["IVR_HOT_RELOAD"],
        hook_names=registry.names,
        http_secrets=secret_names(settings["IVR_HTTP_SECRETS"]),
    )
    runner = HookRunner(
        registry,
        settings["IVR_HOOK_TIMEOUT"],
        http=HttpSender(settings["IVR_HTTP_SECRETS"], auth_token=settings.get("TWILIO_AUTH_TOKEN")),
    )
    found = Services(store, flows, runner, clock or _utc_now)
    runner.recordings = RecordingControl(settings, lambda: found.twilio_http)
    found.journal_clock = found.clock
    token = settings.get("TWILIO_AUTH_TOKEN")
    found.validator = RequestValidator(token) if token else None
    shared = settings["TWILIO_WEBHOOK_SHARED_KEYS"]
    found.shared_keys = {key: RequestValidator(secret) for key, secret in shared.items()}
    if settings["IVR_PHONE"] or settings["IVR_ENV"] == "test":
        found.journal = Journal()
    if settings["IVR_RECORD_DIR"]:
        found.recorder = Recorder(
            settings["IVR_RECORD_DIR"], mask=settings["IVR_MASK_NUMBERS"], public_url=settings["IVR_PUBLIC_URL"]
        )
    app.extensions[_KEY] = found
    return found


def services(app: Flask | None = None) -> Services:
    """The services of `app`, else of the app handling the current request."""
    return (app if app is not None else current_app).extensions[_KEY]


def hook_records() -> list[dict]:
    """The hooks this request ran (name, outcome, vars, error, seconds), for the journal and recordings."""
    return g.setdefault(_HOOKS, [])


def recorded_hooks() -> list[dict] | None:
    """The hooks this request ran, or None when it ran none (without creating the list)."""
    return g.get(_HOOKS)
