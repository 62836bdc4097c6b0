"""The journal: what each call made the app do besides answering (hooks run, texts, deliveries) and
the states its documents walked, newest calls kept in memory, for the built-in phones and tests."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["Journal"]


class Journal:
    """Effects and walked states per CallSid, newest calls kept, for the built-in phones."""

    def __init__(self, calls: int = 500) -> None:
        self._calls: OrderedDict[str, list[dict]] = OrderedDict()
        self._walks: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self._size = calls
        self._lock = threading.Lock()

    def add(self, sid: str, effects: list[dict]) -> None:
        with self._lock:
            _append(self._calls, sid, effects, self._size)

    def __call__(self, sid: str) -> list[dict]:
        with self._lock:
            return list(self._calls.get(sid, ()))

    def walk(self, sid: str, flow: str, states: tuple[str, ...], flows: tuple[str, ...] = ()) -> None:
        """Note the states one document of the call rendered: a state that waits for nothing leaves no URL behind.
        `flows`: each state's flow, when the document crossed into or out of a subflow."""
        with self._lock:
            _append(self._walks, sid, list(zip(flows or (flow,) * len(states), states, strict=True)), self._size)

    def walked(self, sid: str) -> list[tuple[str, str]]:
        """Every (flow, state) the call's documents rendered, in order."""
        with self._lock:
            return list(self._walks.get(sid, ()))


def _append(calls: OrderedDict, sid: str, items: list, size: int) -> None:
    calls.setdefault(sid, []).extend(items)
    calls.move_to_end(sid)
    while len(calls) > size:
        calls.popitem(last=False)
