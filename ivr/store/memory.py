"""The memory store: sessions in a dict, for tests and single-process development only."""

from __future__ import annotations

import itertools
import json
import threading
import time

from ivr.store.base import PURGE_EVERY, Clock, Read, SessionStore, Updater, dumps, plan_update

__all__ = ["MemoryStore"]


class MemoryStore(SessionStore):
    """Sessions in a dict: for tests and single-process development only."""

    def __init__(self, *, clock: Clock = time.time, purge_every: int = PURGE_EVERY) -> None:
        self._clock = clock
        self._purge_every = purge_every
        self._lock = threading.Lock()
        # key -> (JSON text, expires_at). Text, as in SQLite, so that values SQLite
        # cannot hold (a set, a datetime) fail in tests too.
        self._data: dict[str, tuple[str, float]] = {}
        self._writes = itertools.count(1)

    def _live(self, key: str, now: float) -> tuple[str | None, float]:
        # Called with the lock held; expired entries go when met, the rest in a purge.
        text, expires_at = self._data.get(key, (None, 0.0))
        if text is not None and expires_at <= now:
            del self._data[key]
            return None, 0.0
        return text, expires_at

    def _purge(self, now: float) -> int:
        expired = [k for k, (_, expires_at) in self._data.items() if expires_at <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    def get(self, key: str) -> dict | None:
        """Return the session, or None when it is absent or expired."""
        with self._lock:
            text, _ = self._live(key, self._clock())
        return None if text is None else json.loads(text)

    def read(self, key: str) -> Read:
        """The session and its stored text."""
        with self._lock:
            text, _ = self._live(key, self._clock())
        return Read(None if text is None else json.loads(text), text)

    def replace(self, key: str, seen: str | None, value: dict, ttl: float) -> bool:
        """Store `value` if the session is still the text `read` saw (None: still absent)."""
        text = dumps(value)
        with self._lock:
            now = self._clock()
            if self._live(key, now)[0] != seen:
                return False
            self._data[key] = (text, now + ttl)
            if next(self._writes) % self._purge_every == 0:
                self._purge(now)
        return True

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomically replace the session with fn(a copy of it); return the new one."""
        with self._lock:
            now = self._clock()
            old_text, old_expires = self._live(key, now)
            new, text, write = plan_update(fn, old_text, old_expires, now, ttl)
            if write and text is None:
                del self._data[key]
            elif write:
                self._data[key] = (text, now + ttl)
            if write and next(self._writes) % self._purge_every == 0:
                self._purge(now)
        return new

    def delete(self, key: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._lock:
            self._data.pop(key, None)

    def scan(self, prefix: str) -> list[tuple[str, dict]]:
        """Every live (key, value) whose key starts with `prefix`."""
        with self._lock:
            now = self._clock()
            items = [(k, t) for k, (t, exp) in self._data.items() if k.startswith(prefix) and exp > now]
        return [(k, json.loads(t)) for k, t in items]

    def purge_expired(self) -> int:
        """Delete every expired session and return how many there were."""
        with self._lock:
            return self._purge(self._clock())

    def ping(self, timeout: float) -> None:
        """Always answers: the sessions are in this process."""

    def keeps_on_disk(self) -> bool:
        """Never: a memory store is gone with its process."""
        return False

    def close(self) -> None:
        """Forget every session."""
        with self._lock:
            self._data.clear()
