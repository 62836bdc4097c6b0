"""The journal's writer: webhooks hand it rows and go on; a background thread writes them in batches.

A webhook's share of the work is appending to a list under a lock (a microsecond or two): the
database is never on the request path. The thread writes every `interval` seconds, or sooner when
`batch` rows wait. When the database fails, the rows stay buffered and are tried again; past
`limit` buffered rows the oldest are dropped, with a log line saying how many (the calls go on
whatever happens to their journal). `flush()` writes what is buffered now, for tests, commands
and shutdown. The same thread does the journal's `housekeeping` (the app's retention purge) as soon
as it starts and then every `every` seconds: once a day per process, never on a request's path.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from ivr.analytics.database import EventsDatabase
from ivr.errors import EventsError

__all__ = ["EventWriter"]

log = logging.getLogger("ivr.analytics")

_writers: weakref.WeakSet[EventWriter] = weakref.WeakSet()


class EventWriter:
    """Buffered, batched writes of journal rows, off the request path."""

    def __init__(
        self,
        opener: Callable[[], EventsDatabase],
        *,
        interval: float = 0.5,
        batch: int = 2000,
        limit: int = 200_000,
        background: bool = True,
        housekeeping: Callable[[EventsDatabase], object] | None = None,
        every: float = 86400.0,
    ) -> None:
        self._opener = opener
        self._database: EventsDatabase | None = None
        self.interval = interval
        self.batch = batch
        self.limit = limit
        self.background = background
        self.housekeeping = housekeeping
        self.every = every
        self._housekeeping_at = time.monotonic()  # due at once: a restart does not put the purge off a day
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time: rows keep their order
        self._wake = threading.Event()
        self._events: list[tuple] = []
        self._answered: list[tuple] = []
        self._ended: list[tuple] = []
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._failing = False
        self._in_flight = 0  # rows taken from the buffer and not yet written
        self._drop_said = -60.0
        self.dropped = 0
        self.written = 0
        _writers.add(self)

    @property
    def database(self) -> EventsDatabase:
        """The database, opened (and migrated) on first use, once whichever thread asks first."""
        if self._database is None:
            with self._open_lock:
                if self._database is None:
                    self._database = self._opener()
        return self._database

    def add(self, events: list[tuple], answered: tuple | None = None, ended: tuple | None = None) -> None:
        """Buffer one webhook's rows; the thread writes them soon."""
        with self._lock:
            self._events.extend(events)
            if answered is not None:
                self._answered.append(answered)
            if ended is not None:
                self._ended.append(ended)
            waiting = len(self._events) + len(self._answered) + len(self._ended)
            if waiting > self.limit:
                self._drop(waiting - self.limit)
        if not self.background:
            return
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if waiting >= self.batch:
            self._wake.set()

    @property
    def failing(self) -> bool:
        """Whether the last write failed (the rows wait to be tried again)."""
        return self._failing

    def start(self) -> None:
        """Start this process's thread now (a worker's start), rather than at the first webhook."""
        if self.background and (self._thread is None or self._pid != os.getpid()):
            self._start()

    def pending(self) -> int:
        """Rows waiting to be written."""
        with self._lock:
            return len(self._events) + len(self._answered) + len(self._ended) + self._in_flight

    def flush(self) -> None:
        """Write everything buffered now; EventsError when the database refuses (the rows stay buffered)."""
        with self._write_lock:
            with self._lock:
                events, answered, ended = self._events, self._answered, self._ended
                self._events, self._answered, self._ended = [], [], []
                self._in_flight = len(events) + len(answered) + len(ended)
            if not self._in_flight:
                return
            try:
                self.database.write(events, answered, ended)
            except Exception:
                with self._lock:  # back in front of what came meanwhile, to be tried again
                    self._events[:0] = events
                    self._answered[:0] = answered
                    self._ended[:0] = ended
                    self._in_flight = 0
                raise
            with self._lock:
                self._in_flight = 0
            self.written += len(events)

    def close(self) -> None:
        """Write what is left (logging a failure) and stop the thread."""
        thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=5)
        self._flush_logged()
        if self._database is not None:
            self._database.close()

    # -- the thread ---------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread and connection stayed behind
                self._pid = os.getpid()
                self._thread = None
                self._database = None
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="ivr-journal", daemon=True)
            self._thread = thread
        thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        while self._thread is me:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._flush_logged()
            if self._failing:
                time.sleep(self.interval)  # a database that is down is not asked again at once
            elif self.housekeeping is not None and time.monotonic() >= self._housekeeping_at:
                self._housekeep()
        # This thread's connection closes as the thread ends (the database keeps each thread's in a holder
        # that goes with the thread).

    def _housekeep(self) -> None:
        """Run the housekeeping once; a failure is logged and tried again in an hour."""
        try:
            self.housekeeping(self.database)
        except Exception as exc:
            log.error("call journal: housekeeping failed (%s); trying again in an hour", exc)
            self._housekeeping_at = time.monotonic() + min(self.every, 3600.0)
        else:
            self._housekeeping_at = time.monotonic() + self.every

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except (EventsError, Exception) as exc:
            if not self._failing:
                log.error("call journal: %s; %d rows kept to write later", exc, self.pending())
            self._failing = True
        else:
            if self._failing:
                log.warning("call journal: writing again")
            self._failing = False

    def _drop(self, count: int) -> None:
        """The oldest rows go, events first (a call's summary says more than any one of its events)."""
        dropped = min(count, len(self._events))
        del self._events[:dropped]
        for summaries in (self._answered, self._ended):
            extra = min(count - dropped, len(summaries))
            del summaries[:extra]
            dropped += extra
        self.dropped += dropped
        now = time.monotonic()
        if now - self._drop_said >= 60:  # one line a minute, not one per webhook, through an outage
            self._drop_said = now
            log.error(
                "call journal: rows dropped (%d so far): the database has not taken them and more than %d are "
                "waiting", self.dropped, self.limit,
            )  # fmt: skip


@atexit.register
def _flush_all() -> None:
    """At exit, what every writer still holds goes to its database."""
    for writer in list(_writers):
        if writer.pending():
            writer._flush_logged()
