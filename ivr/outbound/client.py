"""The one way ivr builds Twilio's REST client, and the one way it reports Twilio's errors.

Credentials come from the settings (keys named like the environment variables): an API key and
secret (`TWILIO_API_KEY`, `TWILIO_API_SECRET`, with `TWILIO_ACCOUNT_SID` naming the account) when
set, else the account's `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`. Nothing is read from the
process environment behind the settings' back.
"""

from __future__ import annotations

import json

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.rest import Client

from ivr.errors import ConfigError, TwilioCallError

__all__ = ["make_client", "twilio_error"]

_BOTH = "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)"
# What to check when Twilio answers with one of these codes.
_HINTS = {
    20003: "check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY with TWILIO_API_SECRET",
    20404: "the resource does not exist in this account (or is not visible yet)",
}


def make_client(settings: dict, *, http_client: HttpClient | None = None) -> Client:
    """A `twilio.rest.Client` for the credentials in `settings`; ConfigError names what to set."""
    account, key, secret, token = (
        (settings.get(name) or "").strip()
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_AUTH_TOKEN")
    )
    if key or secret:
        missing = [
            name
            for name, value in (("TWILIO_ACCOUNT_SID", account), ("TWILIO_API_KEY", key), ("TWILIO_API_SECRET", secret))
            if not value
        ]
        if missing:
            raise ConfigError(
                f"set {' and '.join(missing)}: REST calls with an API key need TWILIO_ACCOUNT_SID, TWILIO_API_KEY "
                "and TWILIO_API_SECRET (or unset TWILIO_API_KEY and TWILIO_API_SECRET to use TWILIO_AUTH_TOKEN)"
            )
        _check_account(account)
        if not key.startswith("SK"):
            raise ConfigError(
                f"TWILIO_API_KEY={key!r} is not an API key SID (those start with SK): copy the key's SID "
                "from the Twilio Console, API keys & tokens"
            )
        username, password = key, secret
    else:
        missing = [name for name, value in (("TWILIO_ACCOUNT_SID", account), ("TWILIO_AUTH_TOKEN", token)) if not value]
        if len(missing) == 2:
            raise ConfigError(f"Twilio credentials are not set: set {_BOTH}")
        if missing:
            raise ConfigError(
                f"set {missing[0]}: REST calls need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                "(or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)"
            )
        _check_account(account)
        username, password = account, token
    # `environment` is where the client looks up TWILIO_EDGE and TWILIO_REGION; the settings are
    # ivr's environment, so the process environment cannot reroute requests behind their back.
    return Client(username, password, account_sid=account, http_client=http_client, environment=settings)


def _check_account(account: str) -> None:
    if account.startswith("AC"):
        return
    hint = " (that is an API key SID: put it in TWILIO_API_KEY)" if account.startswith("SK") else ""
    raise ConfigError(
        f"TWILIO_ACCOUNT_SID={account!r} is not an account SID (those start with AC){hint}: copy the Account SID "
        "from the Twilio Console's Account Info"
    )


def twilio_error(exc: TwilioException) -> TwilioCallError:
    """Turn any twilio library error into a TwilioCallError saying what Twilio said (`.code`, `.status` kept)."""
    if isinstance(exc, TwilioServiceException):
        detail = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
        return _call_error(exc.code, exc.status, detail, exc.method, exc.uri)
    if isinstance(exc, TwilioRestException):
        return _call_error(exc.code, exc.status, exc.msg, exc.method, exc.uri)
    # A failed list page raises a bare TwilioException("Unable to fetch page", response).
    response = exc.args[1] if len(exc.args) > 1 else None
    if response is not None and hasattr(response, "status_code"):
        try:
            body = json.loads(response.text)
        except (TypeError, ValueError):
            body = None
        body = body if isinstance(body, dict) else {}
        message = f"{exc.args[0]}: {body['message']}" if body.get("message") else str(exc.args[0])
        return _call_error(body.get("code"), response.status_code, message, None, None)
    return _call_error(None, None, str(exc) or type(exc).__name__, None, None)


def _call_error(code: object, status: int | None, message: str, method: str | None, uri: str | None) -> TwilioCallError:
    # Without a code in the body the library puts the HTTP status in `code`; Twilio's codes have 5 digits.
    if isinstance(code, int) and code >= 10000:
        hint = f"; {_HINTS[code]}" if code in _HINTS else ""
        text = f"Twilio error {code}: {message}{hint} (https://www.twilio.com/docs/errors/{code})"
    elif status is not None:
        where = f" ({method} {uri})" if method and uri else ""
        text = f"Twilio HTTP {status} error: {message}{where}"
        code = None
    else:
        text = f"Twilio error: {message}"
        code = None
    error = TwilioCallError(text)
    error.code = code
    error.status = status
    return error
