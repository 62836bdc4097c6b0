"""create_app: settings (code defaults, then the environment, then the dict given), then each part
of the app set up by its own init_app."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from ivr.errors import ConfigError
from ivr.phone.replay import ReplayTarget
from ivr.settings import load_settings, production_problems
from ivr.web import (
    analytics,
    api,
    browser,
    callbacks,
    deadline,
    drain,
    effects,
    health,
    logs,
    metrics,
    pay,
    relay,
    reports,
    security,
    services,
    texts,
    voice,
)
from ivr.web import clock as web_clock  # the name `clock` is create_app's argument

__all__ = ["create_app", "replay_target"]


def create_app(config: dict | None = None, *, clock: Callable[[], datetime] | None = None) -> Flask:
    """Build the app: settings (code, environment, `config`), services, security, routes."""
    settings = load_settings(config)
    if settings["IVR_ENV"] == "production":
        problems = production_problems(settings)
        if problems:  # all of them at once: a deploy should not fail one setting at a time
            raise ConfigError("\n".join(problems))
    app = Flask("ivr", static_folder=None)  # the browser phone serves its own files, only when it is on
    app.config.update(settings)
    # transitions logs every callback at INFO; an IVR's log is about calls.
    if logging.getLogger("transitions").level == logging.NOTSET:
        logging.getLogger("transitions").setLevel(logging.WARNING)
    logs.init_app(app)
    services.init_app(app, clock=clock)
    analytics.init_app(app)
    web_clock.init_app(app)  # development only: a local request may name its time (X-Ivr-Clock)
    drain.init_app(app)
    metrics.init_app(app)  # before the routes' own before_request functions: a request's time counts from here
    security.init_app(app)
    effects.init_app(app)
    voice.init_app(app)
    texts.init_app(app)
    api.init_app(app)
    browser.init_app(app)
    reports.init_app(app)
    callbacks.init_app(app)
    pay.init_app(app)
    relay.init_app(app)  # agent states' WebSocket (ConversationRelay)
    health.init_app(app)
    deadline.init_app(app)  # last, so outermost: a request's time counts from its arrival
    return app


def replay_target(config: dict, *, clock: Callable[[], datetime] | None = None) -> ReplayTarget:
    """An app for `ivr.phone.replay.replay` to re-send a recorded call to, with what replay reads of it."""
    app = create_app(config, clock=clock)
    found = services.services(app)
    hashes = {fid: flow.content_hash for fid, flow in found.flows.flows.items()}
    return ReplayTarget(app, hashes, found.hooks, functools.partial(relay.replay_conversation, app))
