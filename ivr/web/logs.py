"""What the app's log lines may carry: never caller input, and no phone number in clear with IVR_MASK_NUMBERS.

Log lines are read by more people, and kept longer, than calls: a line names the call (its CallSid)
and what the app did, not what the caller keyed or said. Masking is one `logging.Filter` on every
`ivr` logger rather than a rule at each log call, so a line added later is masked as well.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from flask import Flask, current_app, has_app_context

from ivr.phone.recording import mask_numbers

__all__ = ["MaskNumbers", "init_app", "ivr_loggers", "shown_url"]

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

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record with its numbers masked; never drops a line."""
        masking = current_app.config.get("IVR_MASK_NUMBERS") if has_app_context() else self.outside_requests
        if not masking:
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
