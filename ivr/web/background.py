"""Work outside a request, in one home: an executor per worker process.

gunicorn loads the app in its master (`preload_app`) and forks the workers: a thread started in
`create_app` would stay in the master. So the executor is made lazily, for the process that first
asks for it (a new PID gets a new one), and gunicorn's `post_worker_init` starts it at once in each
worker (`ivr.web.gunicorn_conf`), which also runs the start-up work (a drain of what an earlier
process left). Tests run it synchronously: the work runs at once, in a thread of its own (so that
nothing in it can lean on a request context), and is waited for.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["Background"]

log = logging.getLogger("ivr.web")


class Background:
    """One worker thread per process for work after the response: `soon(name, fn)` coalesces repeats."""

    def __init__(self, *, synchronous: bool = False, on_start: Callable[[], None] | None = None) -> None:
        self.synchronous = synchronous
        self._on_start = on_start
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queued: set[str] = set()

    def start(self) -> None:
        """Make this process's executor now (after a fork), running the start-up work first."""
        if self.synchronous:
            if self._on_start is not None:
                self._run(self._on_start)
            return
        self._executor_here()

    def soon(self, name: str, fn: Callable[[], None]) -> None:
        """Run `fn` in the background; a `name` already waiting to run is not queued twice."""
        if self.synchronous:
            self._run(fn)
            return
        with self._lock:
            if name in self._queued:
                return
            self._queued.add(name)
        self._executor_here().submit(self._guarded, name, fn)

    def later(self, name: str, seconds: float, fn: Callable[[], None]) -> None:
        """Run `fn` in the background in `seconds` (a retry); tests, running synchronously, retry by hand."""
        if self.synchronous:
            return
        timer = threading.Timer(seconds, self.soon, (name, fn))
        timer.daemon = True  # a retry never holds up a worker's exit: the spool keeps what it was for
        timer.start()

    def _guarded(self, name: str, fn: Callable[[], None]) -> None:
        with self._lock:
            self._queued.discard(name)  # before it runs: work that arrives meanwhile queues another run
        try:
            fn()
        except Exception:
            log.exception("background work %r failed", name)

    def _executor_here(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pid == os.getpid() and self._executor is not None:
                return self._executor
            # A new process (or the first call): the parent's thread did not come along with the fork.
            self._pid, self._queued = os.getpid(), set()
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-background")
            executor = self._executor
        if self._on_start is not None:
            executor.submit(self._guarded, "start", self._on_start)
        return executor

    def _run(self, fn: Callable[[], None]) -> None:
        """Synchronously, in a thread of its own: no request context comes along."""
        failed: list[BaseException] = []

        def target() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised in the caller: a test must see it fail
                failed.append(exc)

        thread = threading.Thread(target=target, name="ivr-background-sync")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]

    def shutdown(self) -> None:
        """Wait for queued work and stop this process's thread (tests, orderly exits)."""
        with self._lock:
            executor = self._executor if self._pid == os.getpid() else None
            self._executor, self._pid = None, None
        if executor is not None:
            executor.shutdown(wait=True)

    def wait(self) -> Future | None:
        """A future done once the work queued so far has run (tests of the threaded mode)."""
        with self._lock:
            executor = self._executor if self._pid == os.getpid() else None
        return None if executor is None else executor.submit(lambda: None)
