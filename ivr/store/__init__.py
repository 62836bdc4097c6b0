"""Per-call session stores keyed by CallSid: memory (tests), SQLite (the default)."""

from __future__ import annotations

import abc
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Self

from ivr.errors import ConfigError, StoreError

__all__ = [
    "DEFAULT_TTL",
    "RENEW_SLACK",
    "MemoryStore",
    "SQLiteStore",
    "SessionStore",
    "open_store",
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

# WITHOUT ROWID: the row lives in the key's b-tree, so a write touches one tree, not a table and an
# index (half the WAL per webhook).
_SCHEMA = """CREATE TABLE IF NOT EXISTS sessions
    (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID"""
_SELECT = "SELECT value, expires_at FROM sessions WHERE key = ? AND expires_at > ?"
# Update in place rather than INSERT OR REPLACE's delete-and-insert.
_UPSERT = (
    "INSERT INTO sessions (key, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
_PURGE = "DELETE FROM sessions WHERE expires_at <= ?"


def _dumps(value: dict) -> str:
    # Compact and sorted: equal sessions give equal text, so "unchanged" is exact.
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _plan(
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
    text = _dumps(new)
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
    def close(self) -> None:
        """Release the store's resources; calling it twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomically replace the session with fn(a copy of it); return the new one."""
        with self._lock:
            now = self._clock()
            old_text, old_expires = self._live(key, now)
            new, text, write = _plan(fn, old_text, old_expires, now, ttl)
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

    def close(self) -> None:
        """Forget every session."""
        with self._lock:
            self._data.clear()


class SQLiteStore(SessionStore):
    """Sessions in one SQLite file: they survive restarts; processes share them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        purge_every: int = PURGE_EVERY,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._purge_every = purge_every
        self._writes = itertools.count(1)  # next() is atomic under the GIL
        self._local = threading.local()
        self._conns_lock = threading.Lock()
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._closed = False
        # Its own connection, closed at once: worker processes forked later must not
        # inherit a connection (SQLite forbids it).
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._open()
            try:
                conn.execute(_SCHEMA)
                conn.execute(_PURGE, (self._clock(),))
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"session store {self.path}: cannot open: {exc}") from exc

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            msg = f"session store {self.path}: {doing} failed: {exc}"
            raise StoreError(msg) from exc

    def _open(self) -> sqlite3.Connection:
        # Autocommit, so transactions are only our BEGIN IMMEDIATEs. check_same_thread
        # is off only so that close() can close other threads' connections.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            # When two processes make the file at once, one's switch to WAL fails with
            # "database is locked" without waiting for the busy timeout: wait here.
            for _ in range(100):
                with suppress(sqlite3.OperationalError):
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                time.sleep(0.05)
            else:
                conn.execute("PRAGMA journal_mode=WAL")  # 5 s later: fail if it fails
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        if self._closed:
            raise StoreError(f"session store {self.path} is closed")
        local = self._local
        # The pid check gives a forked child its own connection instead of its parent's.
        if getattr(local, "pid", None) == os.getpid():
            return local.conn
        conn = self._open()
        local.conn, local.pid = conn, os.getpid()
        with self._conns_lock:
            # A development server starts a thread per request: close the connections of
            # threads that have ended, or they would pile up until close().
            for thread, old in self._conns:
                if not thread.is_alive():
                    old.close()
            self._conns = [(t, c) for t, c in self._conns if t.is_alive()]
            self._conns.append((threading.current_thread(), conn))
        return conn

    def get(self, key: str) -> dict | None:
        """Return the session, or None when it is absent or expired."""
        with self._errors(f"reading session {key!r}"):
            row = self._connection().execute(_SELECT, (key, self._clock())).fetchone()
        return None if row is None else json.loads(row[0])

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomically replace the session with fn(a copy of it); return the new one."""
        with self._errors(f"updating session {key!r}"):
            conn = self._connection()
            # IMMEDIATE takes the write lock before the read, so that two writers cannot
            # both read the old value and one of them lose its update.
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                row = conn.execute(_SELECT, (key, now)).fetchone()
                old_text, old_expires = row if row is not None else (None, 0.0)
                new, text, write = _plan(fn, old_text, old_expires, now, ttl)
                if write and text is None:
                    conn.execute("DELETE FROM sessions WHERE key = ?", (key,))
                elif write:
                    conn.execute(_UPSERT, (key, text, now + ttl))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
        if write and next(self._writes) % self._purge_every == 0:
            self.purge_expired()
        return new

    def delete(self, key: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._errors(f"deleting session {key!r}"):
            self._connection().execute("DELETE FROM sessions WHERE key = ?", (key,))

    def scan(self, prefix: str) -> list[tuple[str, dict]]:
        """Every live (key, value) whose key starts with `prefix`."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # a range scan on the primary key, not LIKE
        with self._errors(f"listing {prefix!r}"):
            rows = (
                self._connection()
                .execute(
                    "SELECT key, value FROM sessions WHERE key >= ? AND key < ? AND expires_at > ?",
                    (prefix, upper, self._clock()),
                )
                .fetchall()
            )
        return [(key, json.loads(value)) for key, value in rows]

    def purge_expired(self) -> int:
        """Delete every expired session and return how many there were."""
        with self._errors("purging expired sessions"):
            return self._connection().execute(_PURGE, (self._clock(),)).rowcount

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        with self._conns_lock:
            self._closed = True
            for _, conn in self._conns:
                conn.close()
            self._conns = []


def open_store(url: str, *, env: str, clock: Clock = time.time, prefix: str = "ivr:") -> SessionStore:
    """Open the session store that an IVR_STORE URL names; `prefix` (IVR_REDIS_PREFIX) is Redis's key prefix.

    Redis keeps time by its own clock: `clock` is for the memory and SQLite stores.
    """
    if url == "memory://":
        if env not in ("test", "development"):
            raise ConfigError(
                f"IVR_STORE=memory:// is for tests and single-process development only "
                f"(IVR_ENV is {env!r}): its sessions are lost on restart and not "
                f"shared between processes; set IVR_STORE=sqlite:///... or redis://..."
            )
        return MemoryStore(clock=clock)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        # ":memory:" would give every thread a database of its own.
        if not path or path == ":memory:":
            raise ConfigError(f"IVR_STORE={url} names no file; use sqlite:///relative/path or sqlite:////absolute/path")
        return SQLiteStore(path, clock=clock)
    if url.startswith(("redis://", "rediss://")):
        from ivr.store.redis import RedisStore  # here: it imports this module

        return RedisStore(url, prefix=prefix)
    shown = url.split("://", 1)[0] + "://..." if "://" in url else repr(url)
    raise ConfigError(
        f"IVR_STORE={shown} is not a session store URL; use sqlite:///relative/path, "
        f"sqlite:////absolute/path, redis://host:port/db or memory:// (tests and "
        f"development only)"
    )
