"""Dry runs: the exact request a call or text would send, built by the real REST client, stopped at the wire."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from twilio.http import HttpClient
from twilio.rest import Client

from ivr.errors import DryRunCaptured
from ivr.outbound.client import make_client

__all__ = ["NO_ACCOUNT", "DryRequest", "capture_request"]

log = logging.getLogger(__name__)

NO_ACCOUNT = "{AccountSid}"  # shown in a dry run's URL when no credentials are set


@dataclass(frozen=True, slots=True)
class DryRequest:
    """The request a dry run would have sent: method, absolute URL and form fields in order."""

    method: str
    url: str
    form: tuple[tuple[str, str], ...]

    def show(self) -> str:
        """The request as a few lines: `POST url`, then one `Name=value` per form field."""
        return "\n".join([f"{self.method} {self.url}", *(f"  {name}={value}" for name, value in self.form)])


class _Recorder(HttpClient):
    """Stops the REST client at the wire and hands back what it would have sent."""

    def __init__(self) -> None:
        super().__init__(logger=log, is_async=False)

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, **_):
        form = []
        for name, value in (data or {}).items():
            for item in value if isinstance(value, list | tuple) else [value]:
                form.append((name, str(item)))
        raise DryRunCaptured(DryRequest(method.upper(), url, tuple(form)))


def capture_request(settings: dict, client: Client | None, send: Callable[[Client], object]) -> DryRequest:
    """The request `send` would make, built by the real client; nothing leaves the process."""
    recorder = _Recorder()
    if client is not None:
        dry = Client(
            client.username,
            client.password,
            account_sid=client.account_sid,
            region=client.region,
            edge=client.edge,
            http_client=recorder,
            environment={},
        )
    elif any(settings.get(name) for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY")):
        dry = make_client(settings, http_client=recorder)  # wrong credentials show up in a dry run too
    else:
        dry = Client(NO_ACCOUNT, "dry-run", account_sid=NO_ACCOUNT, http_client=recorder, environment={})
    try:
        send(dry)
    except DryRunCaptured as captured:
        return captured.request
    raise AssertionError("the REST client sent nothing")  # pragma: no cover
