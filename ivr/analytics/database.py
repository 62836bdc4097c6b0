"""The journal's database: SQLite (a file beside the sessions) or PostgreSQL (many servers), one API.

    db = open_events("sqlite:///instance/ivr-events.sqlite3")   # or postgresql://user@host/db
    db.write(events, answered, ended)    # one transaction: rows appended, call summaries upserted
    db.query("SELECT ... WHERE flow = ?", (flow,))

SQL is written once with `?` placeholders; PostgreSQL's driver (psycopg) gets them as `%s`. Each
thread has its own connection; a process forked after opening makes new ones (neither driver's
connections survive a fork).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ivr.analytics.schema import MIGRATIONS, latest
from ivr.errors import ConfigError, EventsError

__all__ = [
    "ANSWERED",
    "ENDED",
    "EVENT_COLUMNS",
    "EventsDatabase",
    "PostgresEvents",
    "SQLiteEvents",
    "journal_from_settings",
    "open_events",
    "shown_url",
]

EVENT_COLUMNS = (
    "call_sid", "flow", "state", "kind", "detail", "input", "confidence", "seconds", "latency_ms", "at",
    "twilio_at", "seq", "source",
)  # fmt: skip
_INSERT_EVENT = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"


def _newer(column: str, time: str = "last_at") -> str:
    """A call's column takes the new value when the new row is at least as recent (webhooks may arrive late)."""
    return (
        f"{column} = CASE WHEN calls.{time} IS NULL OR excluded.{time} >= calls.{time} "
        f"THEN excluded.{column} ELSE calls.{column} END"
    )


# Every webhook a flow answered: the call's summary moves on. A call belongs to the flow it entered
# first (`flow`); the state it was left in may be another flow's (`waiting_flow`, after a redirect).
# Each column keeps the most recent value by time, not by arrival, so two servers writing out of
# order still agree.
ANSWERED = (
    "INSERT INTO calls (call_sid, flow, source, caller, direction, started_at, last_at, waiting_state, "
    "ended_by_flow, outcome, outcome_at, left_at, waiting_flow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (call_sid) DO UPDATE SET "
    "flow = COALESCE(calls.flow, excluded.flow), "
    "caller = COALESCE(calls.caller, excluded.caller), "
    "direction = COALESCE(calls.direction, excluded.direction), "
    "started_at = CASE WHEN calls.started_at IS NULL OR excluded.started_at < calls.started_at "
    "THEN excluded.started_at ELSE calls.started_at END, "
    f"{_newer('waiting_state')}, {_newer('waiting_flow')}, {_newer('ended_by_flow')}, {_newer('last_at')}, "
    "outcome = CASE WHEN excluded.outcome IS NOT NULL AND (calls.outcome_at IS NULL "
    "OR excluded.outcome_at >= calls.outcome_at) THEN excluded.outcome ELSE calls.outcome END, "
    "outcome_at = CASE WHEN excluded.outcome IS NOT NULL AND (calls.outcome_at IS NULL "
    "OR excluded.outcome_at >= calls.outcome_at) THEN excluded.outcome_at ELSE calls.outcome_at END, "
    "left_at = CASE WHEN calls.left_at IS NULL OR excluded.left_at < calls.left_at "
    "THEN excluded.left_at ELSE calls.left_at END"
)
# A terminal status callback closes the call; a late copy of it changes nothing.
ENDED = (
    "INSERT INTO calls (call_sid, source, direction, ended_at, status, duration) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (call_sid) DO UPDATE SET "
    "direction = COALESCE(calls.direction, excluded.direction), "
    "status = CASE WHEN calls.ended_at IS NULL THEN excluded.status ELSE calls.status END, "
    "duration = CASE WHEN calls.ended_at IS NULL THEN excluded.duration ELSE calls.duration END, "
    "ended_at = COALESCE(calls.ended_at, excluded.ended_at)"
)


def shown_url(url: str) -> str:
    """A journal URL fit for messages and logs: no password, no query (which may carry one)."""
    if url.startswith("sqlite:"):
        return url  # a file's path: nothing secret
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit((parts.scheme, user + netloc[-1], parts.path, "", ""))


def open_events(url: str) -> EventsDatabase:
    """The journal database an IVR_EVENTS URL names, migrated to this code's schema."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path.endswith("/"):
            raise ConfigError(f"IVR_EVENTS={url!r} names no file; use sqlite:///instance/ivr-events.sqlite3")
        database: EventsDatabase = SQLiteEvents(Path(path))
    elif url.startswith(("postgresql://", "postgres://")):
        database = PostgresEvents(url)
    else:
        shown = url.split("://", 1)[0] + "://..." if "://" in url else repr(url)
        raise ConfigError(
            f"IVR_EVENTS={shown} is not a journal URL; use sqlite:///relative/path, sqlite:////absolute/path, "
            "postgresql://user@host:port/database, or off"
        )
    try:
        database.migrate()
    except BaseException:
        database.close()
        raise
    return database


class _Held:
    """One thread's connection: closed with close(), or when its thread ends and drops the holder."""

    __slots__ = ("__weakref__", "conn", "errors")

    def __init__(self, conn, errors: tuple) -> None:
        self.conn, self.errors = conn, errors

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with suppress(self.errors):
                conn.close()

    def __del__(self) -> None:
        self.close()


class EventsDatabase:
    """What both databases offer: migrate, write a batch, query, delete."""

    name = "database"
    shown = ""  # the URL without its password, for messages
    distinct_in_subquery = False  # count distinct pairs as SELECT DISTINCT in a subquery (faster on PostgreSQL)

    def __init__(self) -> None:
        self._local = threading.local()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # Every thread's connection, so that close() closes them all; a thread that ends closes its own
        # (its thread-local holder goes, and with it the connection: request threads come and go).
        self._connections: weakref.WeakSet[_Held] = weakref.WeakSet()

    def __enter__(self) -> EventsDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- what each database provides -------------------------------------------------------------

    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _errors(self) -> tuple[type[BaseException], ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _lock_for_migration(self, cursor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _migration_statements(self, migration) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------

    def tenths(self, expression: str) -> str:
        """SQL of a non-negative number of seconds in whole tenths, halves up (the same on both databases:
        ROUND differs, SQLite rounding halves away from zero and PostgreSQL to even)."""
        return f"CAST(CASE WHEN {expression} < 0 THEN 0 ELSE ({expression}) * 10 + 0.5 END AS INTEGER)"

    def _connection(self):
        if self._pid != os.getpid():  # forked: the parent's connections are not ours to use (nor to close)
            self._local = threading.local()
            self._pid = os.getpid()
            self._connections = weakref.WeakSet()
        held = getattr(self._local, "held", None)
        if held is None:
            try:
                conn = self._connect()
            except self._errors() as exc:
                raise EventsError(f"call journal {self.shown}: cannot connect: {exc}") from exc
            held = self._local.held = _Held(conn, self._errors())
            with self._lock:
                self._connections.add(held)
        return held.conn

    @contextmanager
    def transaction(self):
        """A cursor inside one transaction, committed at the end, rolled back on error."""
        conn = self._connection()
        try:
            cursor = conn.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            conn.commit()
        except self._errors() as exc:
            self._rollback(conn)
            raise EventsError(f"call journal {self.shown}: {exc}") from exc
        except BaseException:
            self._rollback(conn)
            raise

    def _rollback(self, conn) -> None:
        try:
            conn.rollback()
        except self._errors():  # the connection is gone: the next use opens a new one
            held = getattr(self._local, "held", None)
            self._local.held = None
            if held is not None:
                held.close()

    def version(self) -> int:
        """The schema version the database is at (0: empty)."""
        with self.transaction() as cursor:
            return self._read_version(cursor)

    def _read_version(self, cursor) -> int:
        cursor.execute(self._sql("SELECT version FROM journal_schema"))
        row = cursor.fetchone()
        return row[0] if row else 0

    def migrate(self) -> int:
        """Apply the steps the database lacks, once, whoever else starts at the same time; its version."""
        with self.transaction() as cursor:
            self._lock_for_migration(cursor)
            cursor.execute("CREATE TABLE IF NOT EXISTS journal_schema (version INTEGER NOT NULL)")
            current = self._read_version(cursor)
            if current > latest():
                raise EventsError(
                    f"call journal {self.shown} is at schema version {current}, newer than this ivr knows "
                    f"({latest()}): upgrade ivr, or point IVR_EVENTS at another database"
                )
            for migration in MIGRATIONS:
                if migration.version > current:
                    for statement in self._migration_statements(migration):
                        cursor.execute(statement)
            if current == 0:
                cursor.execute(self._sql("INSERT INTO journal_schema (version) VALUES (?)"), (latest(),))
            elif current < latest():
                cursor.execute(self._sql("UPDATE journal_schema SET version = ?"), (latest(),))
        return latest()

    def write(self, events: Sequence[tuple], answered: Sequence[tuple] = (), ended: Sequence[tuple] = ()) -> None:
        """Append `events` and move the calls' summaries on, in one transaction."""
        with self.transaction() as cursor:
            if events:
                cursor.executemany(self._sql(_INSERT_EVENT), events)
            if answered:
                cursor.executemany(self._sql(ANSWERED), answered)
            if ended:
                cursor.executemany(self._sql(ENDED), ended)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Rows of one read-only statement."""
        with self.transaction() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.fetchall()

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement that changes rows; how many it changed."""
        with self.transaction() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.rowcount

    def close(self) -> None:
        """Close every thread's connection; a thread that uses the database again opens a new one."""
        with self._lock:
            held, self._connections = list(self._connections), weakref.WeakSet()
        self._local = threading.local()
        for one in held:
            one.close()


class SQLiteEvents(EventsDatabase):
    """The journal in one SQLite file (WAL: readers never wait for the writer)."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.shown = f"sqlite:///{path}"
        self.timeout = 10.0  # seconds a write waits for another process's lock (the writer's thread waits, no caller)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EventsError(f"call journal {self.shown}: cannot make its folder: {exc}") from exc

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level="DEFERRED", check_same_thread=False)
        for attempt in range(50):  # a new file switched to WAL by several workers at once: one waits for another
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    conn.close()
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _errors(self):
        return (sqlite3.Error,)

    def _lock_for_migration(self, cursor) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done

    def _migration_statements(self, migration) -> tuple[str, ...]:
        return migration.sqlite


class PostgresEvents(EventsDatabase):
    """The journal in PostgreSQL, through psycopg: one database for every server."""

    name = "postgresql"
    distinct_in_subquery = True

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg  # here: only a PostgreSQL journal needs the driver
        except ImportError:  # pragma: no cover - it is in requirements.txt
            raise ConfigError(
                "IVR_EVENTS names PostgreSQL, but psycopg is not installed: pip install psycopg"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self.shown = shown_url(url)

    def _connect(self):
        return self._psycopg.connect(self.url, connect_timeout=5)

    def _errors(self):
        return (self._psycopg.Error,)

    def _sql(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _lock_for_migration(self, cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(73147001)")  # a fixed key: the journal's migrations

    def _migration_statements(self, migration) -> tuple[str, ...]:
        return migration.postgresql

    def tenths(self, expression: str) -> str:
        return f"CAST(FLOOR(CASE WHEN {expression} < 0 THEN 0 ELSE ({expression}) * 10 + 0.5 END) AS INTEGER)"


def journal_from_settings(settings, *, existing: bool = False) -> EventsDatabase:
    """The journal the settings name (IVR_EVENTS), for commands; ConfigError when it is off. With `existing`
    (commands that only read), a SQLite file that is not there is an error, never a new empty journal."""
    url = settings.get("IVR_EVENTS")
    if not url:
        raise ConfigError(
            "IVR_EVENTS is off: no call journal is kept. Set IVR_EVENTS to the app's journal, such as "
            "sqlite:///instance/ivr-events.sqlite3 or postgresql://user@host/database"
        )
    if existing and url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise ConfigError(
            f"no call journal at {url[len('sqlite:///') :]} (IVR_EVENTS={url}): the app makes it with the first call "
            "it answers; run this command where the app runs, or set IVR_EVENTS to the app's journal"
        )
    return open_events(url)
