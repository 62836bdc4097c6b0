"""What the app's log lines may carry: never caller input, and no phone number in clear with IVR_MASK_NUMBERS.

Log lines are read by more people, and kept longer, than calls: a line names the call (its CallSid)
and what the app did, not what the caller keyed or said. Masking is one `logging.Filter` on every
`ivr` logger rather than a rule at each log call, so a line added later is masked as well.

With IVR_LOG_FORMAT=json, gunicorn's config (ivr/web/gunicorn_conf.py) formats every line with
`JsonFormatter`: one JSON object per line, whose fields about the call come from the request being
served (its URL and CallSid, never its other parameters) or from a log call's `extra=`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from flask import Flask, current_app, has_app_context, has_request_context, request

from ivr.phone.recording import mask_numbers
from ivr.web.deadline import elapsed
from ivr.web.http import form

__all__ = ["CALL_FIELDS", "JsonFormatter", "MaskNumbers", "init_app", "ivr_loggers", "json_line", "shown_url"]

# The query parameters the app itself writes into its URLs (core.twiml.Urls): no caller input.
_OWN_PARAMS = frozenset({"state", "event", "flow", "job"})
_HIDDEN = "*"


class MaskNumbers(logging.Filter):
    """Masks phone numbers in a record's message and traceback when the app has IVR_MASK_NUMBERS on."""

    def __init__(self) -> None:
        super().__init__()
        # Outside a request (texts sent after the response, start-up) no app is current: the last one
        # created decides, which is the only one in a server process.
        self.outside_requests = False

    def masking(self) -> bool:
        """Whether numbers are masked now: the current app's IVR_MASK_NUMBERS, else the last app's."""
        return bool(current_app.config.get("IVR_MASK_NUMBERS")) if has_app_context() else self.outside_requests

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record with its numbers masked; never drops a line."""
        if not self.masking():
            return True
        message = record.getMessage()
        masked = mask_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatted here, as every handler's formatter would, so that its text can be masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        return True


_FILTER = MaskNumbers()


def init_app(app: Flask) -> None:
    """Put the masking filter on every `ivr` logger (a logger's filter does not see its children's lines)."""
    _FILTER.outside_requests = bool(app.config.get("IVR_MASK_NUMBERS"))
    for logger in ivr_loggers():
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def ivr_loggers() -> list[logging.Logger]:
    """The `ivr` logger and every logger under it created so far (each module makes its own at import)."""
    names = [n for n in logging.root.manager.loggerDict if n == "ivr" or n.startswith("ivr.")]
    return [logging.getLogger(name) for name in ["ivr", *names]]


def shown_url(url: str) -> str:
    """A URL fit for a log line: the values of its query hidden, except the app's own (state, event...).

    A GET webhook carries the caller's input (Digits, SpeechResult) and numbers in its query.
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    shown = "&".join(
        f"{name}={value if name in _OWN_PARAMS else _HIDDEN}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(query=shown))


# -- JSON lines ---------------------------------------------------------------------------------

# The fields about the call a JSON line may carry, each kept only when its value has the shape the
# app writes (a Twilio SID; a flow, state or event name; seconds), so caller input cannot pass as one.
CALL_FIELDS = ("CallSid", "flow", "state", "event", "next_state", "duration")
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}\Z")
_NAME = re.compile(r"[A-Za-z0-9_~-]{1,100}\Z")  # flow ids and state names, ~goodbye and ~apology included


def json_line(created: float, level: str, logger: str, message: str, fields: Mapping | None = None) -> str:
    """One log line as a JSON object: time (ISO 8601, UTC), level, logger, message, then `fields`, masked."""
    line: dict = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": logger,
        "message": message,
    }
    for name, value in (fields or {}).items():
        if value is None or (name in CALL_FIELDS and not _fits(name, value)):
            continue
        line[name] = round(value, 3) if name == "duration" else value
    if _FILTER.masking():
        line = {name: mask_numbers(value) if isinstance(value, str) else value for name, value in line.items()}
    return json.dumps(line)


def _fits(name: str, value) -> bool:
    if name == "duration":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str) and (_SID if name == "CallSid" else _NAME).match(value) is not None


class JsonFormatter(logging.Formatter):
    """Formats a record as `json_line`: the request's call fields, overridden by the log call's `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, its traceback (if any) under "exception"."""
        fields = _request_fields() if has_request_context() else {}
        fields.update({name: getattr(record, name) for name in CALL_FIELDS if getattr(record, name, None) is not None})
        fields["pid"] = record.process
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        fields["exception"] = "\n".join(filter(None, (record.exc_text, record.stack_info))) or None
        return json_line(record.created, record.levelname, record.name, record.getMessage(), fields)


def _request_fields() -> dict:
    """The call fields of the request being served: flow, state and event from its URL, its CallSid, its time so far."""
    args = request.args
    view_args = request.view_args or {}
    try:  # a log line must not fail on a body Flask cannot parse
        sid = form().get("CallSid") if request.method == "POST" else args.get("CallSid")
    except Exception:
        sid = None
    return {
        "CallSid": sid,
        "flow": view_args.get("flow_id") or args.get("flow"),
        "state": view_args.get("state") or args.get("state"),
        "event": args.get("event"),
        "duration": elapsed(),
    }
