"""The browser phone's calls in progress, kept per app (a service of `ivr.web.services`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from ivr.phone import Phone, PhoneCall

__all__ = ["LiveCall", "LiveCalls"]


@dataclass(slots=True)
class LiveCall:
    """A browser call in progress and what the page has been shown of it."""

    call: PhoneCall
    touched: float
    shown: int = 0  # transcript lines already sent to the page
    whispered: int = 0  # whisper lines already sent
    lock: threading.Lock = field(default_factory=threading.Lock)


class LiveCalls:
    """The browser's calls in progress, newest kept: at most `size`, none idle over `idle` seconds."""

    def __init__(self, the_phone: Phone, *, size: int = 50, idle: float = 3600.0, clock=time.monotonic) -> None:
        self.phone = the_phone
        self.size, self.idle, self.clock = size, idle, clock
        self._calls: OrderedDict[str, LiveCall] = OrderedDict()
        self.graphs: dict[tuple[str, str], dict] = {}  # (flow id, version) -> graph_data
        self._lock = threading.Lock()

    def add(self, call: PhoneCall) -> LiveCall:
        """Keep `call`; the oldest calls beyond the bound are forgotten."""
        live = LiveCall(call, self.clock())
        with self._lock:
            self._expire()
            self._calls[call.sid] = live
            while len(self._calls) > self.size:
                self._calls.popitem(last=False)
        return live

    def get(self, call_id: str) -> LiveCall | None:
        """The call with this id, unless it was forgotten; using it renews it."""
        with self._lock:
            self._expire()
            live = self._calls.get(call_id)
            if live is not None:
                live.touched = self.clock()
                self._calls.move_to_end(call_id)
            return live

    def __len__(self) -> int:
        return len(self._calls)

    def _expire(self) -> None:
        limit = self.clock() - self.idle
        for call_id in [k for k, live in self._calls.items() if live.touched < limit]:
            del self._calls[call_id]
