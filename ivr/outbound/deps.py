"""What outbound work runs with: the settings, the REST client, the session store, the flows and the time.

Tests inject them (the commands take an `OutboundDeps` as click's `obj=`); whatever is not injected
comes from the settings, the way the app builds it, so that the app finds what a command stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from twilio.rest import Client

from ivr.settings import load_settings
from ivr.store import SessionStore, store_from_settings

__all__ = ["OutboundDeps"]


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
        store = store_from_settings(settings or self.resolved_settings(), for_the_app=True)
        try:
            yield store
        finally:
            store.close()
