"""The journal: what each call made the app do besides answering (hooks run, texts, deliveries),
newest calls kept in memory, for the built-in phones and tests."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["Journal"]


class Journal:
    """Effects per CallSid (hooks run, deliveries), newest calls kept, for the built-in phones."""

    def __init__(self, calls: int = 500) -> None:
        self._calls: OrderedDict[str, list[dict]] = OrderedDict()
        self._size = calls
        self._lock = threading.Lock()

    def add(self, sid: str, effects: list[dict]) -> None:
        with self._lock:
            self._calls.setdefault(sid, []).extend(effects)
            self._calls.move_to_end(sid)
            while len(self._calls) > self._size:
                self._calls.popitem(last=False)

    def __call__(self, sid: str) -> list[dict]:
        with self._lock:
            return list(self._calls.get(sid, ()))
