"""SQLite's WAL checkpoints, off the request path: one background thread per process copies what the
webhooks wrote into the database file, and fsyncs it, while requests only append to the WAL.

With `synchronous=NORMAL` a commit in WAL mode does not fsync; a checkpoint does (and copies pages).
SQLite runs one inside whichever commit crosses `wal_autocheckpoint` pages, so every thousandth webhook
or so paid for it. Stores hand their writes to this thread instead (`note_write`), which checkpoints each
store that wrote, every `INTERVAL` seconds or after `WAKE_AFTER` writes, PASSIVE: it never waits for
a reader or a writer.
Request connections keep a far higher `wal_autocheckpoint` (BACKSTOP_PAGES) should this thread fall behind.

gunicorn forks its workers from a master that may have written (flow versions at load): a fork never
happens in the middle of a checkpoint (`os.register_at_fork`), and each child starts its own thread on
its first write.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Protocol

__all__ = ["BACKSTOP_PAGES", "INTERVAL", "WAKE_AFTER", "Checkpointable", "forget", "note_write"]

INTERVAL = 0.5  # seconds between checkpoints of a store that is being written
# Writes after which the thread checkpoints at once (SQLite's own autocheckpoint is at 1,000 pages): a
# long WAL makes every read search a longer index.
WAKE_AFTER = 500
BACKSTOP_PAGES = 20000  # about 80 MB of WAL before a commit checkpoints in the request after all

log = logging.getLogger("ivr.store")


class Checkpointable(Protocol):
    def checkpoint(self) -> None:
        """Copy the WAL into the database file, without waiting for anyone (PASSIVE)."""


_lock = threading.Lock()  # guards the fields below
_busy = threading.Lock()  # held during a checkpoint, and across a fork
_dirty: dict[int, Checkpointable] = {}  # stores written since their last checkpoint, by id
_thread: tuple[int, threading.Thread] | None = None  # (pid, thread)
_wake = threading.Event()
_writes = 0  # writes noted since the last round of checkpoints


def note_write(store: Checkpointable) -> None:
    """A store wrote: checkpoint it soon, from this process's checkpoint thread (started here when needed)."""
    global _thread, _writes
    pid = os.getpid()
    with _lock:
        _dirty[id(store)] = store
        _writes += 1
        if _writes >= WAKE_AFTER:
            _wake.set()
        if _thread is not None and _thread[0] == pid and _thread[1].is_alive():
            return
        # Started under the lock: a thread not yet started is not alive, and another writer seeing
        # it so would start a second one.
        thread = threading.Thread(target=_run, name="ivr-sqlite-checkpoints", daemon=True)
        _thread = (pid, thread)
        thread.start()


def forget(store: Checkpointable) -> None:
    """A closed store: nothing more to checkpoint."""
    with _lock:
        _dirty.pop(id(store), None)


def _run() -> None:
    global _writes
    while True:
        _wake.wait(INTERVAL)
        with _lock:
            _wake.clear()
            _writes = 0
            stores = list(_dirty.values())
            _dirty.clear()
        for store in stores:
            with _busy:
                try:
                    store.checkpoint()
                except Exception as exc:  # the next write notes the store again; a commit's backstop remains
                    log.warning("checkpointing the session store failed: %s; retried after its next write", exc)


def _before_fork() -> None:
    _busy.acquire()


def _after_fork_in_parent() -> None:
    _busy.release()


def _after_fork_in_child() -> None:
    global _thread, _busy, _lock, _wake, _writes
    _busy = threading.Lock()
    _lock = threading.Lock()
    _wake = threading.Event()
    _writes = 0
    _thread = None
    _dirty.clear()  # the parent's stores: the child opens its own connections and notes its own writes


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
