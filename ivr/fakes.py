"""A stand-in for Twilio's REST API: hand `FakeTwilioHttp` to the real `twilio.rest.Client`.

    http = FakeTwilioHttp().respond("GET", r"/Calls/CA\\w+/Events\\.json$", file="call_events.json")
    client = make_client(settings, http_client=http)
    ...
    assert http.requests[0].url == "https://api.twilio.com/2010-04-01/Accounts/AC.../Calls/CA.../Events.json"

Every request is recorded; each is answered by the first rule that matches it, and a request that no
rule matches fails the test with an AssertionError naming it, so nothing succeeds by accident.
"""

from __future__ import annotations

import json as _json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from twilio.http import HttpClient
from twilio.http.response import Response

__all__ = ["FakeTwilioHttp", "RecordedRequest", "error_body"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the REST client made: method, URL without query, query params, form data, auth user."""

    method: str
    url: str
    params: dict
    data: dict
    auth: str | None


@dataclass(frozen=True, slots=True)
class _Rule:
    method: str
    pattern: re.Pattern
    status: int
    body: str


def error_body(code: int, message: str, status: int = 400) -> dict:
    """The JSON body Twilio sends with an error, e.g. `error_body(21211, "The 'To' number ... is not valid")`."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilioHttp(HttpClient):
    """Records every request in `.requests` and answers from rules added with `.respond(...)`."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False)
        self.requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []

    def respond(
        self,
        method: str,
        url_regex: str,
        status: int = 200,
        *,
        json: object = None,
        file: str | Path | None = None,
    ) -> FakeTwilioHttp:
        """Answer `method` requests whose URL `re.search`-matches `url_regex` with `status` and a JSON body."""
        if json is not None and file is not None:
            raise ValueError("give the body as json= or as file=, not both")
        body = "" if json is None else _json.dumps(json)
        if file is not None:
            body = Path(file).read_text(encoding="utf-8")
        self._rules.append(_Rule(method.upper(), re.compile(url_regex), status, body))
        return self

    def request(
        self,
        method: str,
        url: str,
        params: dict | None = None,
        data: dict | None = None,
        headers: dict | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Record the request and answer it from the first matching rule; AssertionError when none matches."""
        method = method.upper()
        recorded = RecordedRequest(method, url, dict(params or {}), dict(data or {}), auth[0] if auth else None)
        self.requests.append(recorded)
        for rule in self._rules:
            if rule.method == method and rule.pattern.search(url):
                return Response(rule.status, rule.body, {"Content-Type": "application/json"})
        raise AssertionError(
            f"unexpected Twilio request {method} {url} params={recorded.params} data={recorded.data}: "
            f"no rule matches; add one with .respond({method!r}, r'<url regex>', json=...)"
        )
