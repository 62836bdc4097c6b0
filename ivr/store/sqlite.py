"""The SQLite store, the default: one file that survives restarts (WAL, synchronous=NORMAL, a busy
timeout, no write when a session did not change)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
from contextlib import suppress
from pathlib import Path

from ivr.errors import StoreError
from ivr.store import checkpoints
from ivr.store.base import PURGE_EVERY, Clock, Read, SessionStore, Updater, dumps, plan_update

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteStore", "restore"]

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
# A compare-and-set each, one statement in its own transaction: the write lock is taken with the read
# (never a read then an upgrade), and the row is changed only if it is still what the caller read.
_REPLACE = "UPDATE sessions SET value = ?, expires_at = ? WHERE key = ? AND value = ? AND expires_at > ?"
_CREATE = (
    "INSERT INTO sessions (key, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
    "WHERE sessions.expires_at <= ?"
)


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
        # held by a checkpoint and by close(): closing the checkpoint thread's connection while its PRAGMA
        # runs crashes the process (sqlite3 frees a statement in use), as a test run once did
        self._checkpointing = threading.Lock()
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

    def _errors(self, doing: str) -> _Errors:
        """sqlite3's errors raised as StoreError naming the file and what was being done."""
        return _Errors(self.path, doing)

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
            # Checkpoints run on a thread of their own (ivr/store/checkpoints.py); this one only if it falls behind.
            conn.execute(f"PRAGMA wal_autocheckpoint={checkpoints.BACKSTOP_PAGES}")
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

    def read(self, key: str) -> Read:
        """The session and its stored text."""
        with self._errors(f"reading session {key!r}"):
            row = self._connection().execute(_SELECT, (key, self._clock())).fetchone()
        return Read(None, None) if row is None else Read(json.loads(row[0]), row[0])

    def replace(self, key: str, seen: str | None, value: dict, ttl: float) -> bool:
        """Store `value` if the session is still the text `read` saw (None: still absent, or expired)."""
        text = dumps(value)
        now = self._clock()
        with self._errors(f"updating session {key!r}"):
            if seen is None:
                changed = self._connection().execute(_CREATE, (key, text, now + ttl, now)).rowcount
            else:
                changed = self._connection().execute(_REPLACE, (text, now + ttl, key, seen, now)).rowcount
        if changed:
            self._wrote()
        return changed == 1

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
        if write:
            self._wrote()
        return new

    def _wrote(self) -> None:
        checkpoints.note_write(self)
        if next(self._writes) % self._purge_every == 0:
            self.purge_expired()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file without waiting for readers or writers (the checkpoint thread's)."""
        with self._checkpointing:
            if self._closed:
                return
            with self._errors("checkpointing"):
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def delete(self, key: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._errors(f"deleting session {key!r}"):
            self._connection().execute("DELETE FROM sessions WHERE key = ?", (key,))
        checkpoints.note_write(self)

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

    def backup_to(self, target: str | os.PathLike[str]) -> Path:
        """Copy the store as it is at one moment into `target` (replaced atomically), while the app goes on writing."""
        target = Path(target)
        if target.exists() and target.samefile(self.path):
            raise StoreError(f"session store {self.path}: a backup must go to another file, not the store itself")
        with self._errors(f"backing up to {target}"):
            source = self._open()
            try:
                # In one step: the copy reads one snapshot, and WAL lets webhooks write meanwhile (a copy
                # in several steps starts again after each write of theirs, and may never end).
                _copy_into(source, target)
            finally:
                source.close()
        return target

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
        checkpoints.forget(self)
        with self._checkpointing, self._conns_lock:  # a checkpoint under way ends first
            self._closed = True
            for _, conn in self._conns:
                conn.close()
            self._conns = []


class _Errors:
    """A context manager (a class: a webhook's read and write pass through it) that raises sqlite3's
    errors as StoreError naming the store's file and what was being done."""

    __slots__ = ("doing", "path")

    def __init__(self, path: Path, doing: str) -> None:
        self.path, self.doing = path, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None and issubclass(kind, sqlite3.Error):
            raise StoreError(f"session store {self.path}: {self.doing} failed: {error}") from error


def restore(backup: str | os.PathLike[str], into: str | os.PathLike[str], *, force: bool = False) -> None:
    """Put `backup` (made by `backup_to`) in place of the store file `into`, atomically; refused while it is open.

    An existing store is replaced only with `force`: what was written since the backup is lost.
    """
    backup, into = Path(backup), Path(into)
    try:
        source = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{backup}: cannot open the backup: {exc}") from None
    try:
        _check_backup(source, backup)
        held = _hold_unused(into, force) if into.exists() else None
        try:
            _copy_into(source, into)
            for leftover in ("-wal", "-shm"):  # the old store's: they would be read as the new one's
                with suppress(FileNotFoundError):
                    os.remove(f"{into}{leftover}")
        finally:
            if held is not None:
                held.close()
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"restoring {backup} into {into} failed: {exc}") from exc
    finally:
        source.close()


def _check_backup(conn: sqlite3.Connection, path: Path) -> None:
    try:
        fine = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a backup of the session store: {exc}") from None
    if not fine or "sessions" not in tables:
        raise StoreError(f"{path} is not a backup of the session store: {'no sessions table' if fine else 'damaged'}")


def _hold_unused(path: Path, force: bool) -> sqlite3.Connection:
    """An exclusive lock on the store at `path`, held until the restore is done; refused when a process has it open."""
    if not force:
        raise StoreError(
            f"session store {path} exists: restoring replaces it, and every session written since the backup is "
            "lost; stop the app, then restore with --force"
        )
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        # Leaving WAL needs every other connection closed: the one check that sees other processes'.
        if conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] != "delete":
            raise sqlite3.OperationalError("database is locked")
        conn.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError:
        conn.close()
        raise StoreError(
            f"session store {path} is open in another process (the app, a command): stop it, then restore"
        ) from None
    return conn


def _copy_into(source: sqlite3.Connection, target: Path) -> None:
    """Copy `source` through SQLite's backup API into a file beside `target`, synced, then renamed over it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        dest = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dest.close()
        with open(partial, "rb") as copied:
            os.fsync(copied.fileno())
        os.replace(partial, target)
    finally:
        with suppress(FileNotFoundError):
            os.remove(partial)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
