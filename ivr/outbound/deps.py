"""What outbound work runs with: the settings, the REST client, the session store, the flows and the time.

Tests inject them (the commands take an `OutboundDeps` as click's `obj=`); whatever is not injected
comes from the settings, the way the app builds it, so that the app finds what a command stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from twilio.rest import Client

from ivr.errors import ConfigError
from ivr.settings import load_settings
from ivr.store import SessionStore, open_store

__all__ = ["OutboundDeps", "open_store_from"]


def open_store_from(settings: dict) -> SessionStore:
    """The app's session store (IVR_STORE); memory:// only in tests, as the app could not see it."""
    url = settings.get("IVR_STORE") or "memory://"
    # Stricter than open_store, which allows memory:// in development: there the app is another process.
    if url == "memory://" and settings.get("IVR_ENV") != "test":
        raise ConfigError(
            "IVR_STORE=memory:// keeps an outbound call's variables inside this command, where the app "
            "answering the call cannot read them: set IVR_STORE to the app's store (sqlite:///... or redis://...)"
        )
    # Opened as the app opens it, so the app finds what this command stored.
    extra = {"prefix": settings["IVR_REDIS_PREFIX"]} if settings.get("IVR_REDIS_PREFIX") else {}
    return open_store(url, env=settings.get("IVR_ENV") or "production", **extra)


@dataclass(frozen=True, slots=True)
class OutboundDeps:
    """Services injected into the outbound commands; None means: build it from the settings."""

    settings: dict | None = None
    client: Client | None = None
    store: SessionStore | None = None
    flows: dict | None = None
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None

    def resolved_settings(self) -> dict:
        """The injected settings, else the environment's."""
        return self.settings if self.settings is not None else load_settings()

    @contextmanager
    def opened_store(self, settings: dict | None = None) -> Iterator[SessionStore]:
        """The injected store (left open), else the app's store from the settings (closed afterwards)."""
        if self.store is not None:
            yield self.store
            return
        store = open_store_from(settings or self.resolved_settings())
        try:
            yield store
        finally:
            store.close()
