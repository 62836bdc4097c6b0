"""The SQLite store, the default: one file that survives restarts (WAL, synchronous=NORMAL, a busy
timeout, no write when a session did not change)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ivr.errors import StoreError
from ivr.store.base import PURGE_EVERY, Clock, SessionStore, Updater, plan_update

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteStore"]

# How long a write waits for another process's lock. A webhook's hooks end 8 s after it arrived
# (ivr/web/deadline.py) and its answer must be on its way by 12 s: the store gets 2 s of that; a
# write that waits longer gives the caller the error state rather than dead air.
BUSY_TIMEOUT_MS = 2000

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
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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
                new, text, write = plan_update(fn, old_text, old_expires, now, ttl)
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

    def ping(self, timeout: float) -> None:
        """Read the table within `timeout` seconds: the file opens, its schema reads, a lock is waited on no longer."""
        with self._errors("answering a readiness check"):
            conn = self._connection()
            conn.execute(f"PRAGMA busy_timeout={max(1, round(timeout * 1000))}")
            try:
                conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        with self._conns_lock:
            self._closed = True
            for _, conn in self._conns:
                conn.close()
            self._conns = []
