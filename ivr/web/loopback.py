"""Whether a request comes from this machine, not through a proxy: the rule for whatever is served unverified
(unsigned webhooks without a token, the browser and terminal phones in development). Kept apart from
ivr.web.security so that the services' parts may use it without importing the services."""

from __future__ import annotations

import ipaddress

from flask import request

__all__ = ["FORWARDED", "is_loopback", "not_local"]

FORWARDED = (
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "Forwarded",
)


def not_local() -> str | None:
    """Why this request may not be one from this machine (a proxy header, or not loopback), else None.

    The rule for whatever is served unverified: unsigned webhooks without a token, the browser phone.
    A tunnel or proxy on this machine connects from loopback, so any forwarding header disqualifies.
    """
    forwarded = [h for h in FORWARDED if h in request.headers]
    if forwarded:
        return ", ".join(forwarded)
    if not is_loopback(request.remote_addr):
        return "not loopback"
    return None


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False
