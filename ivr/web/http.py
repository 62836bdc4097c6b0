"""What the web modules share: webhook parameters, TwiML responses, session lifetimes."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

import werkzeug.urls  # noqa: F401 - registers the "werkzeug.url_quote" decoding error handler used below
from flask import current_app, request

__all__ = ["SESSION_GRACE", "SESSION_TTL", "Form", "form", "webhook_params", "xml_response"]

SESSION_GRACE = 30 * 60  # seconds a session is kept after the call ended, for late callbacks
SESSION_TTL = 4 * 3600 + SESSION_GRACE  # a call lasts at most 4 hours
_XML = "text/xml; charset=utf-8"
_FORM = "ivr.form"  # the environ key of the request's parsed body
_URLENCODED = "application/x-www-form-urlencoded"
_REQUOTE = "werkzeug.url_quote"  # bytes that are not UTF-8 are percent-encoded again, as werkzeug does


class Form(dict):
    """A POST body's parameters: each name's first value, as werkzeug's `request.form.to_dict()`, and every
    value of a name in the order sent through `getall`, which `RequestValidator` asks for first (it walks a
    werkzeug MultiDict by failing a method lookup on every field)."""

    __slots__ = ("_lists",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        lists: dict[str, list[str]] = {}
        for name, value in pairs:
            values = lists.get(name)
            if values is None:
                lists[name] = [value]
                self[name] = value
            else:
                values.append(value)
        self._lists = lists

    @classmethod
    def parse(cls, text: str) -> Form:
        """A urlencoded body, decoded as `urllib.parse.parse_qsl(text, keep_blank_values=True,
        errors="werkzeug.url_quote")` decodes it (what werkzeug does), in one pass that skips the decoding of
        the names and values that need none."""
        pairs = []
        for pair in text.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            if "+" in name:
                name = name.replace("+", " ")
            if "%" in name:
                name = _decoded(name)
            if "+" in value:
                value = value.replace("+", " ")
            if "%" in value:
                value = _decoded(value)
            pairs.append((name, value))
        return cls(pairs)

    def lists(self) -> Iterable[tuple[str, list[str]]]:
        """(name, every value sent for it) for each name, in the order first sent."""
        return self._lists.items()

    def getall(self, name: str) -> list[str]:
        """Every value sent for `name`, in order (KeyError when none was)."""
        return self._lists[name]


_EMPTY = Form()
# Percent-decoded texts by their encoded form: Twilio sends the same numbers, places and SIDs (%2B...) in
# every webhook of a call, and the same account's in every call. Bounded: emptied when full.
_DECODED: dict[str, str] = {}
_DECODED_MAX = 4096


def _decoded(text: str) -> str:
    value = _DECODED.get(text)
    if value is None:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        value = _DECODED[text] = unquote(text, errors=_REQUOTE)
    return value


def form() -> Form:
    """The request's form body, parsed once per request exactly as werkzeug parses `request.form` (its
    decoding rules, its silence on a body that is not UTF-8); empty for other content types."""
    environ = request.environ
    parsed = environ.get(_FORM)
    if parsed is None:
        parsed = environ[_FORM] = _parse()
    return parsed


def _parse() -> Form:
    if request.mimetype != _URLENCODED:  # whatever the method, as werkzeug: the signature covers what it parses
        return _EMPTY
    # cache=True: request.form, should anything still ask for it, parses the same bytes again.
    body = request.get_data(cache=True)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return _EMPTY  # werkzeug's form parser is silent about it too: an empty form
    return Form.parse(text)


def webhook_params() -> dict:
    """Twilio's parameters: the form of a POST, the query of a GET (a copy: the caller's to change)."""
    return dict(form()) if request.method == "POST" else request.args.to_dict()


def xml_response(body: str, status: int = 200):
    """A TwiML response."""
    return current_app.response_class(body, status=status, mimetype=None, content_type=_XML)
