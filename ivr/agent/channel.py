"""An in-memory connection: the two ends of a ConversationRelay session inside one process.

The built-in phone and tests speak the protocol to a `Conversation` without a socket: each message goes
through JSON on its way (as over the wire), `receive` waits at most `timeout` seconds (None when nothing
came), and once either end closes, the other's `send` and `receive` raise `Closed`.

    phone, server = pair()
    phone.send({"type": "setup", "callSid": "CA...", "from": "+1...", "to": "+1..."})
    phone.receive(5)    # {"type": "text", "token": "Hi", "last": False}
"""

from __future__ import annotations

import json
import queue
import threading

from ivr.agent.conversation import Closed

__all__ = ["Channel", "pair"]

_CLOSE = object()  # put on the other end's inbox when one end closes


class Channel:
    """One end: `send(dict)`, `receive(timeout) -> dict | None`, `close()`."""

    def __init__(self, inbox: queue.Queue, outbox: queue.Queue, closed: threading.Event) -> None:
        self._inbox, self._outbox, self._closed = inbox, outbox, closed

    def send(self, message: dict) -> None:
        """Pass `message` to the other end (as JSON would carry it); Closed when the connection is gone."""
        if self._closed.is_set():
            raise Closed("the connection is closed")
        self._outbox.put(json.loads(json.dumps(message)))

    def receive(self, timeout: float | None = None) -> dict | None:
        """The next message from the other end within `timeout` seconds, else None; Closed once it closed."""
        try:
            message = self._inbox.get_nowait() if timeout is not None and timeout <= 0 else self._inbox.get(
                timeout=timeout)  # fmt: skip
        except queue.Empty:
            if self._closed.is_set():
                raise Closed("the connection is closed") from None
            return None
        if message is _CLOSE:
            self._inbox.put(_CLOSE)  # every later receive sees it too
            raise Closed("the other end closed the connection")
        return message

    def close(self) -> None:
        """Close both ends (a hang-up from the phone, the end of the conversation from the server)."""
        if not self._closed.is_set():
            self._closed.set()
            self._outbox.put(_CLOSE)
            self._inbox.put(_CLOSE)

    @property
    def closed(self) -> bool:
        """Whether either end has closed."""
        return self._closed.is_set()


def pair() -> tuple[Channel, Channel]:
    """Two connected ends: (the caller's side, Twilio's role; the server's side, the conversation's)."""
    a, b, closed = queue.Queue(), queue.Queue(), threading.Event()
    return Channel(a, b, closed), Channel(b, a, closed)
