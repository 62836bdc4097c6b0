"""The one exception tree of ivr.

IvrError
├── ConfigError         a setting is missing or wrong; the message names it
├── FlowError           one problem in a flow file, with file:line:col and the key's path
├── FlowLoadError       a flow (or several) failed to load; carries every FlowError found
├── TemplateProblem     a template that does not compile or is unsafe; the loader places it as a FlowError
├── CallRequestError    an outbound call or text cannot be sent as asked; nothing was sent
├── CampaignStopped     a campaign run stops before its last row (the run catches it and reports why)
├── StoreError          the session store failed (down, corrupt, timed out)
├── SpoolError          a callback could not be written to the spool (IVR_SPOOL_DIR): it is not acknowledged
├── EventsError         the call journal's database (IVR_EVENTS) failed or is newer than this code
├── WebhookError        a webhook request cannot be understood (unknown flow or state, bad event)
│   └── FlowRuntimeError  a template or condition failed for a call; says file:line:col
├── TwilioCallError     a REST call to Twilio failed
│   └── CallOutcomeUnknown  no answer came back from a create request: the call may exist
├── PhoneError          a built-in phone's caller action that does not fit the call, or a target it cannot dial
├── TransportError      the built-in phone could not fetch a webhook; carries Twilio's error code (11205)
├── PhoneRequestRefused the browser phone's JSON API refuses a request; carries the HTTP status
├── ReportsRefused      the reports page refuses a request (no access, a token in a URL, unknown flow); the status
├── ModelError          an agent's language model could not answer (HTTP error, bad stream, refused request)
├── RelayClosed         an agent's ConversationRelay connection is gone (the caller hung up, the socket dropped)
├── ToolRefused         a model's arguments break its tool's parameters; the message (for the model) says why
└── StudioError         a Studio Flow Definition cannot be read or fetched (not JSON, not a definition, API refused)
    └── LiquidUnsupported  a piece of Studio's Liquid has no equivalent (the importer reports it and goes on)

Exception
├── DryRunCaptured      not an error: carries a dry run's request out of the REST client
└── ConversationEnded   not an error: carries an agent conversation's end out of the reply in progress

AssertionError
└── ReplayMismatch      the pytest plugin's failure: the flows answer a recorded call differently now
"""

from __future__ import annotations

__all__ = [
    "CallOutcomeUnknown",
    "CallRequestError",
    "CampaignStopped",
    "ConfigError",
    "ConversationEnded",
    "DryRunCaptured",
    "EventsError",
    "FlowError",
    "FlowLoadError",
    "FlowRuntimeError",
    "IvrError",
    "LiquidUnsupported",
    "ModelError",
    "PhoneError",
    "PhoneRequestRefused",
    "RelayClosed",
    "ReplayMismatch",
    "ReportsRefused",
    "SpoolError",
    "StoreError",
    "StudioError",
    "TemplateProblem",
    "ToolRefused",
    "TransportError",
    "TwilioCallError",
    "WebhookError",
]


class IvrError(Exception):
    """Base of every error ivr raises on purpose."""


class ConfigError(IvrError):
    """A setting is missing or has a bad value."""


class FlowError(IvrError):
    """One problem in a flow file, located as file:line:col and a dotted key path."""

    def __init__(
        self,
        file: str,
        line: int,
        column: int,
        path: str,
        message: str,
        severity: str = "error",
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
        self.severity = severity
        super().__init__(self.format())

    def format(self) -> str:
        """Render as `file:line:col: error: path: message`, the format of the loader and `check`."""
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {where}{self.message}"

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.path, self.message)


class FlowLoadError(IvrError):
    """One or more flow files failed to load; `errors` lists every problem found."""

    def __init__(self, errors: list[FlowError]) -> None:
        self.errors = sorted(errors, key=FlowError.sort_key)
        count = len(self.errors)
        lines = [e.format() for e in self.errors]
        lines.append(f"{count} error{'s' if count != 1 else ''} in flow files")
        super().__init__("\n".join(lines))


class TemplateProblem(IvrError, ValueError):
    """A template that does not compile or reaches for Python internals; the loader reports where."""


class StoreError(IvrError):
    """The session store could not read or write a session."""


class SpoolError(IvrError):
    """A callback could not be written to the spool (IVR_SPOOL_DIR); Twilio gets a 5xx and may retry."""


class EventsError(IvrError):
    """The call journal's database (IVR_EVENTS) failed, or its schema is newer than this code knows."""


class WebhookError(IvrError):
    """A webhook request names an unknown flow or state, or carries an event that does not fit."""


class FlowRuntimeError(WebhookError):
    """A template or `when:` condition failed while a call ran it; the message starts with file:line:col."""


class TwilioCallError(IvrError):
    """A call to Twilio's REST API failed; the message says what to fix."""


class CallOutcomeUnknown(TwilioCallError):
    """The create request may have reached Twilio but no answer came back: the call may exist."""


class CallRequestError(IvrError):
    """A call or text cannot be sent as asked (unknown flow or state, bad number or variable); nothing was sent."""


class CampaignStopped(IvrError):
    """Ends a campaign run early; the message says why."""


class DryRunCaptured(Exception):  # not an IvrError: a signal that never leaves ivr.outbound.dry_run
    """Carries a dry run's request (`request`) out of the REST client, which would otherwise send it."""

    def __init__(self, request: object) -> None:
        self.request = request


class PhoneError(IvrError):
    """A caller action that does not fit the call (keys pressed while a dial rings), or a bad target."""


class TransportError(IvrError):
    """A webhook could not be fetched; `code` is Twilio's error code for it (11205)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class PhoneRequestRefused(IvrError):
    """A request the browser phone's API answers with `status` and the message, as JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ReportsRefused(IvrError):
    """A request the reports page answers with `status` and the message (JSON or plain text, as asked)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ModelError(IvrError):
    """An agent's language model could not answer (HTTP error, bad stream, refused request); the message says why."""


class RelayClosed(IvrError):
    """An agent's ConversationRelay connection is gone: the caller hung up, or the socket dropped."""


class ToolRefused(IvrError, ValueError):
    """A model's arguments break its tool's parameters; the message, for the model, says which and why."""


class StudioError(IvrError):
    """A Twilio Studio Flow Definition cannot be read (not JSON, not a definition) or fetched."""


class LiquidUnsupported(StudioError):
    """A piece of Studio's Liquid (a variable, filter or tag) has no equivalent in the flow language."""


class ConversationEnded(Exception):  # not an IvrError: a signal that never leaves ivr.agent.conversation
    """An agent conversation ends on `outcome` with `values`, after `say` is spoken (when given)."""

    def __init__(self, outcome: str, values: dict | None = None, say: str | None = None) -> None:
        super().__init__(outcome)
        self.outcome, self.values, self.say = outcome, values or {}, say


class ReplayMismatch(AssertionError):
    """The current flows answer a recorded call differently; `result` is the ivr.phone.replay.ReplayResult."""

    def __init__(self, result) -> None:
        self.result = result
        super().__init__(result.report())
