"""The app's one HTTP client (httpx, pooled), and the sender of HTTP steps' requests.

`HttpSender.send(call, timeout)` carries out an `HttpCall` (ivr.core.http_step) and answers with a
HookResult, never an exception: outcome the status code ("404"), "timeout" or "error"; vars the
status and what `save` names. The HookRunner (ivr.hooks) calls it on the host's own bulkhead and
within the webhook's budget, as it calls hooks; later steps that talk to APIs (the agent) reuse
`http_client`.

Secrets: the call carries markers; only here are they replaced, from the environment, and only for
names IVR_HTTP_SECRETS allows. Nothing logged or recorded holds a request's headers, query or body:
log lines name the state, the method and the scheme://host only, and errors are exception types.
Redirects are not followed (a 3xx routes as 3xx): a request goes only to the host the flow names.

`sign: twilio` adds X-Twilio-Signature as Twilio computes it for its own requests (a Protected Twilio
Function checks it): HMAC-SHA1 of the final URL, query included, and the form's keys and values, keyed
with TWILIO_AUTH_TOKEN (twilio's RequestValidator). The token itself never leaves this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Collection, Mapping

import httpx
from twilio.request_validator import RequestValidator

from ivr.core.effects import HookResult
from ivr.core.http_step import HttpCall, resolve_secrets, saved_vars, secret_names

__all__ = ["MAX_ANSWER", "HttpSender", "http_client"]

log = logging.getLogger("ivr.http")

MAX_ANSWER = 1_000_000  # bytes of an answer read at most: a JSON answer for a phone call is small
POOL = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30)
# httpx logs each request's URL, query included, at INFO: a secret or a caller's data in a query would
# reach the logs. Its own lines are kept to warnings; ours name the state, the method and the host only.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def http_client(limits: httpx.Limits = POOL) -> httpx.Client:
    """A pooled client: no redirects followed, no proxies or .netrc taken from the environment."""
    return httpx.Client(limits=limits, follow_redirects=False, trust_env=False, headers={"User-Agent": "ivr"})


class HttpSender:
    """Sends HTTP steps' requests over one pooled client, with the allowed secrets."""

    def __init__(
        self,
        allowed: Collection[str] | str | None,
        environ: Mapping[str, str] | None = None,
        *,
        client=None,
        auth_token: str | None = None,
    ) -> None:
        names = secret_names(allowed) if allowed is None or isinstance(allowed, str) else frozenset(allowed)
        environ = os.environ if environ is None else environ
        self.secrets = {name: environ[name] for name in names if name in environ}
        self._client = client
        self._signer = RequestValidator(auth_token) if auth_token else None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The pooled client, made on the first request (making one costs tens of milliseconds: its TLS context)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = http_client()
        return self._client

    def send(self, call: HttpCall, timeout: float) -> HookResult:
        """Send the request within `timeout` seconds; the answer as a HookResult."""
        sid = call.context.get("call_sid") or "-"
        where = f"CallSid={sid} state '{call.state}': {call.method} {call.origin}"
        try:
            headers = resolve_secrets(dict(call.headers), self.secrets)
            params = resolve_secrets(list(call.query), self.secrets)
            body = resolve_secrets(call.json, self.secrets)
            form = resolve_secrets(dict(call.form), self.secrets) if call.form is not None else None
        except KeyError as exc:
            log.error("%s not sent: secret %s is not set in the environment", where, exc)
            return HookResult("error", error="secret not set")
        request = self.client.build_request(
            call.method,
            call.url,
            params=params or None,
            headers=headers,
            json=body if call.json is not None else None,
            data=form,
            timeout=httpx.Timeout(max(timeout, 0.001)),
        )
        if call.sign:
            if self._signer is None:
                log.error("%s not sent: sign: twilio needs TWILIO_AUTH_TOKEN", where)
                return HookResult("error", error="no TWILIO_AUTH_TOKEN to sign with")
            request.headers["X-Twilio-Signature"] = self._signer.compute_signature(str(request.url), form or {})
        try:
            response = self.client.send(request, stream=True)
            try:
                content = _read(response)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            log.error("%s timed out after %.1fs (%s)", where, timeout, type(exc).__name__)
            return HookResult("timeout", error="timeout")
        except (httpx.HTTPError, ValueError) as exc:
            log.error("%s failed: %s", where, type(exc).__name__)
            return HookResult("error", error=type(exc).__name__)
        status = response.status_code
        document, parsed = None, False
        if call.save and 200 <= status < 300:
            with contextlib.suppress(ValueError):  # not JSON: saved_vars says so
                document, parsed = json.loads(content), True
        text = content.decode(response.encoding or "utf-8", errors="replace") if call.answer else None
        variables, problem = saved_vars(call, status, document, parsed=parsed, text=text)
        if problem is not None:
            log.error("%s answered %d: %s; taking its error route", where, status, problem)
        return HookResult(str(status), variables, problem)


def _read(response: httpx.Response) -> bytes:
    """The answer's body, refusing one over MAX_ANSWER bytes."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER:
            raise ValueError("answer too large")
        chunks.append(chunk)
    return b"".join(chunks)
