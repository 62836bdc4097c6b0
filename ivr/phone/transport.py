"""How the built-in phone reaches an app: in-process through WSGI, or over HTTP to any URL."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

import simple_websocket
from werkzeug.test import Client

from ivr.core.agent_relay import relay_message
from ivr.errors import RelayClosed, TransportError

__all__ = [
    "BUILT_IN_PHONE",
    "PHONE_HEADER",
    "REPLAY_SOURCE",
    "HttpTransport",
    "Transport",
    "WsgiTransport",
    "from_built_in_phone",
    "url_with_params",
]

# The WSGI environ key that marks a request from the built-in phone in this process: its texts and
# deliveries are shown, never sent. No HTTP request can carry it: only an in-process call sets it.
BUILT_IN_PHONE = "ivr.phone"
# The header the terminal phone sends over HTTP: in development, from this machine, its calls are the
# built-in phone's in the journal (never Twilio's).
PHONE_HEADER = "X-Ivr-Phone"
# The WSGI environ entry replay sends with every request: the journal keeps its calls apart from Twilio's.
# Its value is the journal's source: `replay`, or `import` when recorded calls are loaded into the journal.
REPLAY_SOURCE = ("ivr.source", "replay")
RELAY_EXTENSION = "ivr.relay"  # app.extensions key of the web room's in-process ConversationRelay entry
_RELAY_PATH = re.compile(r"/relay/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/?$")


def from_built_in_phone(environ: dict) -> bool:
    """Whether a WSGI request came from the built-in phone in this process."""
    return bool(environ.get(BUILT_IN_PHONE))


class Transport(Protocol):
    """How the phone reaches the app: one request, its status and body."""

    def request(self, method: str, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """Send `params` (query for GET, form body for POST) and return (status, body)."""


def url_with_params(url: str, params: dict[str, str]) -> str:
    """The URL of a GET request: `params` appended to the query, as Twilio sends and signs it."""
    if not params:
        return url
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + urllib.parse.urlencode(params)


class WsgiTransport:
    """Calls a WSGI app in-process through werkzeug's test client."""

    def __init__(self, app) -> None:
        self.app = app
        self.client = Client(app, use_cookies=False)

    def open_relay(self, url: str, headers: dict[str, str]):
        """The conversation a ConversationRelay `url` (/relay/F/S) names, in-process through the app's relay entry
        (the handshake's signature is the socket's business: nothing crosses a network here)."""
        entry = getattr(self.app, "extensions", {}).get(RELAY_EXTENSION)
        match = _RELAY_PATH.search(urllib.parse.urlsplit(url).path)
        if entry is None or match is None:
            raise TransportError(64102, f"{url}: the app serves no ConversationRelay there")
        try:
            return entry.open(*match.groups())
        except (LookupError, RuntimeError) as exc:  # not an agent state; the worker's cap (IVR_AGENT_SOCKETS)
            raise TransportError(64102, f"{url}: {exc}") from None

    def request(self, method: str, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """Send one request to the app and return (status, body)."""
        parts = urllib.parse.urlsplit(url_with_params(url, params) if method == "GET" else url)
        response = self.client.open(
            parts.path or "/",
            base_url=f"{parts.scheme}://{parts.netloc}",
            method=method,
            query_string=parts.query or None,
            data=None if method == "GET" else params,
            headers=headers,
            # The phone runs on this machine: the app's loopback rule must see it as local.
            environ_base={"REMOTE_ADDR": "127.0.0.1", BUILT_IN_PHONE: True},
        )
        try:
            return response.status_code, response.get_data(as_text=True)
        finally:
            response.close()


class HttpTransport:
    """Calls a running server over HTTP with urllib; no answer in `timeout` seconds is error 11205.

    `headers` go with every request (the terminal phone's X-Ivr-Clock, for one)."""

    def __init__(self, timeout: float = 15.0, *, headers: dict[str, str] | None = None) -> None:
        self.timeout = timeout
        self.headers = dict(headers or {})

    def open_relay(self, url: str, headers: dict[str, str]) -> WebSocketConnection:
        """A real WebSocket to a ConversationRelay `url` (ws:// or wss://), its handshake carrying `headers`."""
        try:
            return WebSocketConnection(_WebSocketClient.connect(url, headers={**self.headers, **headers}))
        except Exception as exc:  # refused (403, 404, 503), unreachable: Twilio's 64102
            raise TransportError(64102, f"{url}: the WebSocket handshake failed ({exc})") from None

    def request(self, method: str, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """Send one request and return (status, body); TransportError(11205) when it fails."""
        # urllib sends a body as application/x-www-form-urlencoded, as Twilio does.
        data = None if method == "GET" else urllib.parse.urlencode(params).encode()
        url = url_with_params(url, params) if method == "GET" else url
        request = urllib.request.Request(url, data=data, headers={**self.headers, **headers}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:  # URLError, a timeout, or a connection reset mid-answer
            reason = getattr(exc, "reason", exc)
            why = f"no answer within {self.timeout:g} s" if isinstance(reason, TimeoutError) else f"failed ({reason})"
            raise TransportError(11205, f"{method} {url}: {why}") from None


class WebSocketConnection:
    """A ConversationRelay WebSocket as the phone uses it: `send(dict)`, `receive(timeout) -> dict | None`
    (RelayClosed once it is gone), `close()`; JSON text frames both ways."""

    def __init__(self, client) -> None:
        self.client = client

    def send(self, message: dict) -> None:
        try:
            self.client.send(json.dumps(message))
        except simple_websocket.ConnectionClosed:
            raise RelayClosed("the socket closed") from None

    def receive(self, timeout: float | None = None) -> dict | None:
        try:
            data = self.client.receive(timeout=timeout)
        except simple_websocket.ConnectionClosed:
            raise RelayClosed("the socket closed") from None
        return None if data is None else relay_message(data)

    def close(self) -> None:
        with contextlib.suppress(simple_websocket.ConnectionClosed):  # the app closed it first (after `end`)
            self.client.close()


class _WebSocketClient(simple_websocket.Client):
    """simple-websocket's client, with a Host header that keeps a port that is not the scheme's (the server builds
    the URL it checks the handshake's signature over from it) and a socket that is closed when the handshake fails."""

    def handshake(self) -> None:
        host = self.host
        try:
            if self.port != (443 if isinstance(self.sock, ssl.SSLSocket) else 80):
                self.host = f"{host}:{self.port}"
            super().handshake()
        except BaseException:
            self.sock.close()
            raise
        finally:
            self.host = host
