"""Who may read the reports page (`ivr.web.reports`): this machine in development, else whoever logged
in with IVR_REPORTS_TOKEN and holds the signed cookie it was exchanged for.

    development, test   requests from loopback without X-Forwarded-* or Forwarded headers (the rule of
                        the browser phone, `security.not_local`); with IVR_REPORTS_TOKEN, a login too
    production          only with IVR_REPORTS_TOKEN; without it no /reports route exists (404)

    GET  /reports/login     a small form
    POST /reports/login     token=<IVR_REPORTS_TOKEN>: compared in constant time; a cookie, then /reports
    POST /reports/logout    the cookie cleared

The cookie (`ivr-reports`: HttpOnly, SameSite=Strict, Path=/reports, Secure over https or when
IVR_PUBLIC_URL is https, 12 hours) holds an expiry, a nonce and their HMAC keyed by a hash of the
token: never the token itself, and worthless once the token changes. A token in a query string is
refused with 400 and never accepted: URLs end up in logs, browser histories and Referer headers.
IVR_API_TOKEN, which places calls, opens nothing here (the app refuses to start when the two are
the same: `ivr.settings.REPORTS_TOKEN_IS_API_TOKEN`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request

from ivr.errors import ReportsRefused
from ivr.web import security

__all__ = ["COOKIE", "SESSION_SECONDS", "attach", "base_path", "logged_in", "session_value"]

log = logging.getLogger("ivr.reports")

COOKIE = "ivr-reports"
SESSION_SECONDS = 12 * 3600
# Query parameters that look like a credential: refused whatever their value.
_CREDENTIAL_NAMES = ("token", "access_token", "reports_token", "ivr_reports_token", "api_token", "key", "auth")
_OPEN = ("reports.login_form", "reports.login", "reports.logout", "reports.static")
_PAGES = ("reports.index", "reports.page")


def attach(blueprint: Blueprint) -> None:
    """Guard every route of `blueprint` and add the login and logout routes to it."""
    blueprint.before_request(_guard)
    blueprint.add_url_rule("/login", "login_form", _login_form, methods=["GET"])
    blueprint.add_url_rule("/login", "login", _login, methods=["POST"])
    blueprint.add_url_rule("/logout", "logout", _logout, methods=["POST"])


def _token() -> str:
    return current_app.config.get("IVR_REPORTS_TOKEN") or ""


def _now() -> float:
    return time.time()  # the wall clock, not the app's: a test's fake clock must not keep sessions alive


def _not_loopback_host() -> str | None:
    """Why the Host header names no loopback name: a page elsewhere may rebind its own name to 127.0.0.1
    (DNS rebinding) and read the reports through the developer's browser; its Host still names it."""
    host = (request.host or "").lower()
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]", 1)[0] + "]"
    return None if name in ("localhost", "127.0.0.1", "[::1]") else f"Host {host!r} is not this machine"


def _guard() -> Response | None:
    """Refuse a token in the URL; let in the login routes, a valid cookie, or (development) this machine."""
    _refuse_credentials_in_query()
    if request.endpoint in _OPEN:
        return None
    if logged_in():
        return None
    local = current_app.config["IVR_ENV"] != "production"
    why = (security.not_local() or _not_loopback_host()) if local else "production"
    if why is None:
        return None
    if not _token():  # development or test without a token: this machine only
        log.warning("refused %s %s from %s: the reports page serves only this machine (%s)",
                    request.method, request.path, request.remote_addr, why)  # fmt: skip
        raise ReportsRefused(
            403,
            "the reports page answers only requests from this machine, not through a proxy; "
            "set IVR_REPORTS_TOKEN to log in from elsewhere",
        )
    if request.method == "GET" and request.endpoint in _PAGES:
        return redirect(base_path() + "/login", 303)
    raise ReportsRefused(401, f"log in first: {base_path()}/login")


def _refuse_credentials_in_query() -> None:
    """400 for a query string that carries a credential, by its name or by its value; the token stays unused."""
    secrets_here = [t for t in (_token(), current_app.config.get("IVR_API_TOKEN") or "") if t]
    for name, value in request.args.items(multi=True):
        named = name.strip().lower() in _CREDENTIAL_NAMES
        if named or any(hmac.compare_digest(value.encode(), s.encode()) for s in secrets_here):
            log.warning("refused %s %s: a token in the query string (%s=...)", request.method, request.path, name)
            raise ReportsRefused(
                400,
                "never put a token in a URL (it ends up in logs and browser histories): "
                f"log in at {base_path()}/login, which sets a cookie",
            )


def base_path() -> str:
    """The path the browser sees the reports under: IVR_PUBLIC_URL's path prefix (or the app's root) + /reports."""
    public = current_app.config.get("IVR_PUBLIC_URL")
    prefix = urlsplit(public).path.rstrip("/") if public else request.script_root
    return prefix + "/reports"


# -- the session cookie ---------------------------------------------------------------------------


def _key(token: str) -> bytes:
    return hashlib.sha256(b"ivr reports session\0" + token.encode()).digest()


def _mac(token: str, expires: int, nonce: str) -> str:
    return hmac.new(_key(token), f"{expires}.{nonce}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, expires: int) -> str:
    """A cookie value good until `expires` (Unix seconds) for as long as `token` is the reports token."""
    nonce = secrets.token_urlsafe(12)
    return f"{expires}.{nonce}.{_mac(token, expires, nonce)}"


def logged_in() -> bool:
    """Whether the request carries a cookie signed for the current token that has not expired."""
    token, value = _token(), request.cookies.get(COOKIE, "")
    if not token or not value:
        return False
    expires, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not expires.isdigit() or not nonce or not mac:
        return False
    now = _now()
    if not now < int(expires) <= now + SESSION_SECONDS + 60:  # expired, or longer than any session we give
        return False
    return hmac.compare_digest(mac, _mac(token, int(expires), nonce))


def _secure() -> bool:
    return request.is_secure or (current_app.config.get("IVR_PUBLIC_URL") or "").startswith("https://")


# -- the routes -------------------------------------------------------------------------------------


def _form(message: str = "", status: int = 200) -> tuple[str, int]:
    if not _token():
        raise ReportsRefused(404, "no IVR_REPORTS_TOKEN is set: open the reports page from this machine")
    return render_template("reports/login.html", message=message, here="", logged_in=False), status


def _login_form():
    """The form that asks for the reports token."""
    return _form()


def _login():
    """The token, sent in the body, exchanged for the session cookie."""
    token = _token()
    given = (request.form.get("token") or "").strip()
    # IVR_API_TOKEN never matches: the app does not start when it is the reports token.
    if not token or not given or not hmac.compare_digest(given.encode(), token.encode()):
        log.warning("refused a reports login from %s: wrong token", request.remote_addr)
        return _form("That is not the reports token (IVR_REPORTS_TOKEN).", 403)
    expires = int(_now()) + SESSION_SECONDS
    response = redirect(base_path(), 303)
    response.set_cookie(
        COOKIE,
        session_value(token, expires),
        max_age=SESSION_SECONDS,
        expires=expires,
        path=base_path(),
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )
    log.info("reports login from %s, for %d hours", request.remote_addr, SESSION_SECONDS // 3600)
    return response


def _logout():
    """The cookie cleared."""
    response = redirect(base_path() + ("/login" if _token() else ""), 303)
    response.delete_cookie(COOKIE, path=base_path(), secure=_secure(), httponly=True, samesite="Strict")
    return response
