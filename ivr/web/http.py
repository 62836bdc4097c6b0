"""What the web modules share: webhook parameters, TwiML responses, session lifetimes."""

from __future__ import annotations

from flask import current_app, request

__all__ = ["SESSION_GRACE", "SESSION_TTL", "webhook_params", "xml_response"]

SESSION_GRACE = 30 * 60  # seconds a session is kept after the call ended, for late callbacks
SESSION_TTL = 4 * 3600 + SESSION_GRACE  # a call lasts at most 4 hours
_XML = "text/xml; charset=utf-8"


def webhook_params() -> dict:
    """Twilio's parameters: the form of a POST, the query of a GET."""
    return request.form.to_dict() if request.method == "POST" else request.args.to_dict()


def xml_response(body: str, status: int = 200):
    """A TwiML response."""
    return current_app.response_class(body, status=status, mimetype=None, content_type=_XML)
