"""A stand-in for Twilio's REST API: hand `FakeTwilioHttp` to the real `twilio.rest.Client`.

    http = FakeTwilioHttp().respond("GET", r"/Calls/CA\\w+/Events\\.json$", file="call_events.json")
    client = make_client(settings, http_client=http)
    ...
    assert http.requests[0].url == "https://api.twilio.com/2010-04-01/Accounts/AC.../Calls/CA.../Events.json"

Every request is recorded; each is answered by the first rule that matches it, and a request that no
rule matches fails the test with an AssertionError naming it, so nothing succeeds by accident.
A rule may answer a limited number of `times` (then the next matching rule answers), or compute its
answer from the request (`respond_with`), which is how a test gives each call its own CallSid,
answers one number with an error, or simulates a crash by raising:

    http = FakeTwilioHttp().respond("POST", r"/Calls\\.json$", 429, json=error_body(20429, "Too Many"), times=1)
    http.respond_with("POST", r"/Calls\\.json$", lambda request: (201, call_json(request)))
    ...
    assert http.requests[0].form == [("To", "+14155550143"), ("From", ...), ...]
"""

from __future__ import annotations

import itertools
import json as _json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from twilio.http import HttpClient
from twilio.http.response import Response

__all__ = ["FakeTwilioHttp", "RecordedRequest", "call_json", "error_body", "message_json"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the REST client made: method, URL without query, query params, form data, auth user."""

    method: str
    url: str
    params: dict
    data: dict
    auth: str | None

    @property
    def form(self) -> list[tuple[str, str]]:
        """The form fields in the order sent, a list value repeated as its name, as requests encodes them."""
        pairs = []
        for name, value in self.data.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                pairs.append((name, str(item)))
        return pairs

    @property
    def body(self) -> str:
        """The urlencoded request body, exactly as it goes over the wire."""
        return urlencode(self.form)


Handler = Callable[[RecordedRequest], tuple[int, object]]


@dataclass(slots=True)
class _Rule:
    method: str
    pattern: re.Pattern
    status: int
    body: str
    times: int | None = None  # None: every time
    handler: Handler | None = None
    used: int = field(default=0)


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
        times: int | None = None,
    ) -> FakeTwilioHttp:
        """Answer `method` requests whose URL `re.search`-matches `url_regex` with `status` and a JSON body.

        With `times`, the rule answers that many requests and then steps aside for the next matching rule.
        """
        if json is not None and file is not None:
            raise ValueError("give the body as json= or as file=, not both")
        body = "" if json is None else _json.dumps(json)
        if file is not None:
            body = Path(file).read_text(encoding="utf-8")
        self._rules.append(_Rule(method.upper(), re.compile(url_regex), status, body, times))
        return self

    def respond_with(
        self, method: str, url_regex: str, handler: Handler, *, times: int | None = None
    ) -> FakeTwilioHttp:
        """Answer matching requests with `handler(request) -> (status, json body)`; the handler may raise."""
        self._rules.append(_Rule(method.upper(), re.compile(url_regex), 0, "", times, handler))
        return self

    def sent(self, method: str, url_regex: str) -> list[RecordedRequest]:
        """The recorded requests of `method` whose URL matches `url_regex`, in order."""
        pattern = re.compile(url_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.url)]

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
            if rule.method != method or not rule.pattern.search(url):
                continue
            if rule.times is not None and rule.used >= rule.times:
                continue
            rule.used += 1
            status, body = rule.status, rule.body
            if rule.handler is not None:
                status, answer = rule.handler(recorded)
                body = "" if answer is None else _json.dumps(answer)
            return Response(status, body, {"Content-Type": "application/json"})
        raise AssertionError(
            f"unexpected Twilio request {method} {url} params={recorded.params} data={recorded.data}: "
            f"no rule matches; add one with .respond({method!r}, r'<url regex>', json=...)"
        )


_SIDS = itertools.count(1)


def _sid(prefix: str) -> str:
    return f"{prefix}{next(_SIDS):032x}"


def _account(request: RecordedRequest) -> str:
    match = re.search(r"/Accounts/(AC\w+)/", request.url)
    return match.group(1) if match else "AC" + "0" * 32


def call_json(request: RecordedRequest, sid: str | None = None) -> dict:
    """The JSON Twilio answers a Calls.json create with (201, status queued), echoing the request."""
    sid = sid or _sid("CA")
    account = _account(request)
    uri = f"/2010-04-01/Accounts/{account}/Calls/{sid}"
    return {
        "account_sid": account,
        "annotation": None,
        "answered_by": None,
        "api_version": "2010-04-01",
        "caller_name": None,
        "date_created": None,
        "date_updated": None,
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": request.data.get("From"),
        "from_formatted": request.data.get("From"),
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": None,
        "status": "queued",
        "subresource_uris": {
            "notifications": f"{uri}/Notifications.json",
            "recordings": f"{uri}/Recordings.json",
            "payments": f"{uri}/Payments.json",
            "events": f"{uri}/Events.json",
            "siprec": f"{uri}/Siprec.json",
            "streams": f"{uri}/Streams.json",
            "transcriptions": f"{uri}/Transcriptions.json",
            "user_defined_message_subscriptions": f"{uri}/UserDefinedMessageSubscriptions.json",
            "user_defined_messages": f"{uri}/UserDefinedMessages.json",
        },
        "to": request.data.get("To"),
        "to_formatted": request.data.get("To"),
        "trunk_sid": None,
        "uri": f"{uri}.json",
    }


def message_json(request: RecordedRequest, sid: str | None = None) -> dict:
    """The JSON Twilio answers a Messages.json create with (201, status queued), echoing the request."""
    sid = sid or _sid("SM")
    account = _account(request)
    uri = f"/2010-04-01/Accounts/{account}/Messages/{sid}"
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": request.data.get("Body"),
        "date_created": "Thu, 26 Nov 2026 15:00:00 +0000",
        "date_sent": None,
        "date_updated": "Thu, 26 Nov 2026 15:00:00 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": request.data.get("From"),
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": request.data.get("To"),
        "uri": f"{uri}.json",
    }
