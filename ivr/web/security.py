"""Webhook signatures (X-Twilio-Signature) and the no-token rule (DESIGN principle 8)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from urllib.parse import quote, urlsplit

from flask import Flask, abort, current_app, request
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.web.http import Form, form
from ivr.web.logs import shown_url
from ivr.web.loopback import not_local
from ivr.web.services import services

__all__ = ["check_webhook", "expected_signature", "init_app", "not_local", "signed_url"]

log = logging.getLogger("ivr.security")
_SAFE = "/:@!$&'()*+,;=~"  # what a path may hold unquoted (RFC 3986 pchar), besides letters, digits and -._


def init_app(app: Flask) -> None:
    """Set up signature checks (production without a token never gets here: `production_problems`)."""
    token = app.config.get("TWILIO_AUTH_TOKEN")
    env = app.config["IVR_ENV"]
    hops = app.config["IVR_TRUSTED_PROXIES"]
    if hops:
        # Only the proxies we were told about may say which scheme and host Twilio used. Not the
        # path prefix: the TwiML's root-relative URLs could not carry it; IVR_PUBLIC_URL can.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=0)
    if not token and env == "development":  # tests and replays need no warning
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT verified. Only requests from this machine "
            "without X-Forwarded-* headers are served; set TWILIO_AUTH_TOKEN before exposing the app."
        )


def signed_url() -> str:
    """The URL Twilio signed: IVR_PUBLIC_URL + path when set, else the request's (proxy-fixed) URL.

    The path and query as they came on the request line, percent-encoding kept: Twilio signs the URL
    it called, and a decoded path (/voice/m%61in/menu read as /voice/main/menu) is another string.
    """
    environ = request.environ
    target = _request_target(environ)
    public = current_app.config.get("IVR_PUBLIC_URL")
    if public:
        # The public base carries any path prefix; what the app is mounted under is the server's business.
        root = environ.get("SCRIPT_NAME", "")
        if root and target.startswith(root):
            target = target[len(root) :]
        return public.rstrip("/") + target
    # Straight from the environ (ProxyFix has already put the trusted proxy's scheme and host there):
    # werkzeug's host_url parses and checks far more than a signature needs.
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ['wsgi.url_scheme']}://{host}{target}"


def _request_target(environ: dict) -> str:
    """The path (with SCRIPT_NAME) as the client sent it, and the query (never decoded by WSGI)."""
    query = environ.get("QUERY_STRING", "")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn and werkzeug's server set both
    if raw:
        # The query is taken from QUERY_STRING alone: some servers leave it out of the raw URI.
        path = urlsplit(raw).path if not raw.startswith("/") else raw.partition("?")[0]  # absolute form: a proxy's
        path = path or "/"
    else:  # a server that keeps no raw URI: quote the decoded path again (WSGI strings are latin-1 bytes)
        path = quote((environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1"), safe=_SAFE)
    return path + (f"?{query}" if query else "")


def check_webhook() -> None:
    """Abort with 403 unless the request is signed by Twilio (or, without a token, local)."""
    found = services()
    validator: RequestValidator | None = found.validator
    if validator is None:
        why = not_local()
        if why:
            log.warning(
                "refused %s %s from %s: no TWILIO_AUTH_TOKEN is set, so only local requests without proxy "
                "headers are served (%s); set TWILIO_AUTH_TOKEN to accept Twilio's signed requests",
                request.method,
                request.path,
                request.remote_addr,
                why,
            )
            abort(403)
        return
    headers = request.headers
    signature = headers.get(SIGNATURE_HEADER, "")
    algorithm, with_what = HMAC_SHA1, "TWILIO_AUTH_TOKEN"
    settings = headers.get(SIGNATURE_SETTINGS_HEADER)
    if settings is not None:  # signed with a Webhooks SharedKey (a Webhook Rule matched this URL), not the token
        validator, algorithm, with_what = _shared_key(found.shared_keys, settings)
    url = signed_url()
    # The body parsed once. Never request.values: Twilio signs the URL (query included) and the POST body apart.
    params = form()
    # One HMAC for the URL as it came; the validator's port variants only when that does not match.
    expected = expected_signature(validator.token, url, params, algorithm)
    matches = bool(signature) and hmac.compare_digest(expected, signature)
    if not matches and (not signature or not validator.validate(url, params, signature, algorithm)):
        log.warning(
            "refused %s %s: %s X-Twilio-Signature for URL %s (checked with %s). If Twilio calls "
            "another URL, set IVR_PUBLIC_URL to its base, or IVR_TRUSTED_PROXIES to the number of proxies in front.",
            request.method,
            request.path,
            "invalid" if signature else "missing",
            shown_url(url),  # a GET webhook's query holds the caller's input: its values stay out of the log
            with_what,
        )
        abort(403)


def expected_signature(secret: bytes, url: str, params: Form, algorithm: str = HMAC_SHA1) -> str:
    """X-Twilio-Signature for `url` and `params`, as RequestValidator.compute_signature makes it: the URL,
    then each parameter name in sorted order followed by each of its distinct values, sorted; the HMAC of
    that (SHA-1 or SHA-256) with `secret`, in base64. The same rule without the validator's lookups and
    sorting of every single value, about a third of its cost (tests/test_http.py proves the two equal over
    the fuzzing corpus, repeated parameters included); a request it does not match still goes to the
    validator, which decides."""
    parts = [url]
    for name, values in sorted(params.lists()):
        if len(values) == 1:
            parts += (name, values[0])
        else:
            for value in sorted(set(values)):
                parts += (name, value)
    mac = hmac.new(secret, "".join(parts).encode(), _HASHES[algorithm])
    return base64.b64encode(mac.digest()).decode()


def _shared_key(keys: dict[str, RequestValidator], settings: str) -> tuple[RequestValidator, str, str]:
    """The validator, algorithm and setting for a request that names its SharedKey; 403 and a log line
    saying what to set when the key is not configured or the algorithm cannot be checked."""
    fields = dict(part.strip().partition("=")[::2] for part in settings.split(",") if "=" in part)
    key = fields.get("key", "").strip()
    algorithm = get_signature_algorithm(settings).upper()
    if algorithm not in _ALGORITHMS:
        log.warning(
            "refused %s %s: signed with SharedKey %s by algorithm %s (X-Twilio-Webhooks-Signature-Settings), "
            "which this version of the twilio library cannot check; upgrade twilio, or choose %s in the Webhook "
            "Setting",
            request.method,
            request.path,
            key or "(none named)",
            algorithm,
            " or ".join(_ALGORITHMS),
        )
        abort(403)
    validator = keys.get(key)
    if validator is None:
        log.warning(
            "refused %s %s: signed with Webhooks SharedKey %s (%s), which TWILIO_WEBHOOK_SHARED_KEYS does not "
            "hold (it has %s); add %s=<the secret Twilio returned when the key was made>",
            request.method,
            request.path,
            key or "(none named)",
            algorithm,
            ", ".join(sorted(keys)) or "no keys",
            key or "<key id>",
        )
        abort(403)
    return validator, algorithm, f"SharedKey {key}"


_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
_ALGORITHMS = tuple(_HASHES)
