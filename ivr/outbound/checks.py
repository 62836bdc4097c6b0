"""What an outbound call or text must satisfy before anything is sent: numbers, flow and state, variables,
the caller ID, the public URL and the credentials. Each check raises with the fix in its message;
`check_settings` reports every missing setting at once."""

from __future__ import annotations

import re

from ivr.core.flow import E164, variable_name_problem
from ivr.core.hints import did_you_mean
from ivr.errors import CallRequestError, ConfigError
from ivr.outbound.client import make_client

__all__ = [
    "caller_id",
    "check_number",
    "check_settings",
    "check_target",
    "check_variables",
    "normalise_number",
    "public_url",
]


_NUMBER_HELP = "write it as + country code and number, digits only, e.g. +15551234567"


def check_number(value: str | None, where: str) -> str:
    """Return `value` when it is an E.164 number; else CallRequestError naming `where` and the value."""
    text = (value or "").strip()
    if not E164.match(text):
        raise CallRequestError(f"{where} {value!r} is not an E.164 phone number: {_NUMBER_HELP}")
    return text


def normalise_number(text: str | None) -> str | None:
    """The number in E.164 with spaces, dots, dashes and brackets removed (00 becomes +); None when invalid."""
    cleaned = re.sub(r"[\s().\-]", "", text or "")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned if E164.match(cleaned) else None


def check_target(settings: dict, flows: dict, flow: str, state: str | None) -> None:
    """CallRequestError unless `flow` is a local flow and `state` (when given) one of its states."""
    where = settings.get("IVR_FLOWS_DIR") or "flows"
    if flow not in flows:
        known = ", ".join(sorted(flows)) or "none"
        raise CallRequestError(f"no flow '{flow}' in {where}{did_you_mean(flow, flows)} (flows: {known})")
    if flows[flow].returns:
        raise CallRequestError(f"flow '{flow}' is a subflow: a call enters it only from a state that runs it")
    if state is not None and state not in flows[flow].states:
        states = flows[flow].states
        raise CallRequestError(
            f"flow '{flow}' has no state '{state}'{did_you_mean(state, states)} (states: {', '.join(sorted(states))})"
        )


def check_variables(variables: dict | None) -> dict:
    """A copy of `variables`; CallRequestError when a name is not usable in a template."""
    variables = dict(variables or {})
    for name in variables:
        problem = variable_name_problem(name)
        if problem is not None:
            raise CallRequestError(f"variable name {name!r} is not usable in templates: {problem}")
    return variables


def caller_id(settings: dict, from_: str | None) -> str:
    """The caller ID: `from_`, else TWILIO_FROM_NUMBER; checked as E.164; ConfigError when neither is set."""
    if from_:
        return check_number(from_, "--from")
    configured = settings.get("TWILIO_FROM_NUMBER")
    if not configured:
        raise ConfigError(
            "no caller ID: pass --from or set TWILIO_FROM_NUMBER to a Twilio number of the account "
            "(or a verified caller ID), e.g. +15017122661"
        )
    return check_number(configured, "TWILIO_FROM_NUMBER")


def public_url(settings: dict) -> str:
    """IVR_PUBLIC_URL without its trailing slash; ConfigError naming it when unset."""
    base = (settings.get("IVR_PUBLIC_URL") or "").strip().rstrip("/")
    if not base:
        raise ConfigError(
            "IVR_PUBLIC_URL is not set: outbound calls need the app's public base URL (e.g. "
            "https://ivr.example.com) so that Twilio can fetch the flow and post the call's status"
        )
    return base


def check_settings(settings: dict, from_: str | None, *, credentials: bool) -> None:
    """ConfigError listing every setting an outbound call lacks (caller ID unless `from_` is given, public URL,
    and the credentials when it sends), one a line with its fix: all at once, as production's start-up check does."""
    checks = [lambda: public_url(settings)]
    if not from_:  # a --from given is the request's to fix (caller_id checks it), not a setting
        checks.insert(0, lambda: caller_id(settings, None))
    if credentials:
        checks.append(lambda: make_client(settings))  # builds the client only: no request is sent
    problems = []
    for check in checks:
        try:
            check()
        except (ConfigError, CallRequestError) as exc:  # a malformed TWILIO_FROM_NUMBER is a setting too
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
