"""How the built-in phone reaches an app: in-process through WSGI, or over HTTP to any URL."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from werkzeug.test import Client

from ivr.errors import TransportError

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
        self.client = Client(app, use_cookies=False)

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
