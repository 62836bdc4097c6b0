"""What every session store offers, and the update rule they share (when a write is needed)."""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from typing import NamedTuple, Self

__all__ = [
    "DEFAULT_TTL",
    "PURGE_EVERY",
    "RENEW_SLACK",
    "Clock",
    "Read",
    "SessionStore",
    "Updater",
    "dumps",
    "plan_update",
]

# Twilio ends a call after 4 hours; one more hour leaves room for late status callbacks.
DEFAULT_TTL = 5 * 3600.0
# An unchanged session gets a new expiry about once a minute at most: a busy call does
# not write a row on every webhook just to push its expiry a few seconds further.
RENEW_SLACK = 60.0
# Often enough to bound a store's size, rarely enough that no request notices the cost.
PURGE_EVERY = 1000

Clock = Callable[[], float]
Updater = Callable[[dict | None], dict | None]


class Read(NamedTuple):
    """A session as `read` found it, with the stored text a later `replace` compares against."""

    value: dict | None  # None when absent or expired
    text: str | None


def dumps(value: dict) -> str:
    """A session as compact, sorted JSON: equal sessions give equal text, so 'unchanged' is exact."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def plan_update(
    fn: Updater, old_text: str | None, old_expires: float, now: float, ttl: float
) -> tuple[dict | None, str | None, bool]:
    """Run fn on a fresh copy of the old value; return (new value, its text, write?)."""
    if not ttl > 0:
        raise ValueError(f"a session's ttl must be positive seconds, not {ttl!r}")
    new = fn(None if old_text is None else json.loads(old_text))
    if new is None:
        return None, None, old_text is not None
    if not isinstance(new, dict):
        raise TypeError(f"a session must be a dict or None, not {type(new).__name__}")
    text = dumps(new)
    # At most half the ttl, so that unchanged updates still renew a short ttl.
    slack = min(RENEW_SLACK, ttl / 2)
    fresh = old_text is not None and old_expires - now > ttl - slack
    return new, text, text != old_text or not fresh


class SessionStore(abc.ABC):
    """What every session store offers: JSON objects keyed by CallSid, each expiring."""

    @abc.abstractmethod
    def get(self, key: str) -> dict | None:
        """Return the session, or None when it is absent or expired."""

    @abc.abstractmethod
    def read(self, key: str) -> Read:
        """The session and its stored text, for a `replace` once the caller is done with it (one read)."""

    @abc.abstractmethod
    def replace(self, key: str, seen: str | None, value: dict, ttl: float) -> bool:
        """Store `value` for ttl seconds if the session is still what `read` saw (`seen`: its text, None when it
        was absent); False, writing nothing, when another writer changed it since. One write, no other read:
        a webhook's whole store cost is one `read` and one `replace`."""

    @abc.abstractmethod
    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomically replace the session with fn(a copy of it); return the new value.

        fn gets None for an absent or expired session; it returns the new value, or None
        to delete it. The value expires ttl seconds from now, but is not written when it
        did not change and the stored expiry is more than ttl - RENEW_SLACK away. When
        fn raises, nothing is written. fn must not call the store.
        """

    def incr(self, key: str, field: str, amount: int = 1, ttl: float = DEFAULT_TTL) -> int:
        """Atomically add amount to an integer field of the session; return the sum."""
        result = 0

        def bump(session: dict | None) -> dict:
            nonlocal result
            session = {} if session is None else session
            current = session.get(field, 0)
            # bool is an int subclass, but a flag that becomes 2 is a bug, not a count.
            if type(current) is not int:
                kind = type(current).__name__
                raise TypeError(f"session field {field!r} holds {kind}, not an int")
            result = session[field] = current + amount
            return session

        self.update(key, bump, ttl)
        return result

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the session; a missing one is not an error."""

    @abc.abstractmethod
    def scan(self, prefix: str) -> list[tuple[str, dict]]:
        """Every live (key, value) whose key starts with `prefix` (messages, not the per-call path)."""

    @abc.abstractmethod
    def purge_expired(self) -> int:
        """Delete every expired session and return how many there were."""

    @abc.abstractmethod
    def ping(self, timeout: float) -> None:
        """Raise StoreError unless the store answers a trivial request within `timeout` seconds (readiness)."""

    def keeps_on_disk(self) -> bool | None:
        """Whether what the store holds survives its own restart; None when it cannot tell."""
        return True

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources; calling it twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
