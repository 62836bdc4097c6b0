"""Outbound calls and texts through Twilio's REST API: a call that enters a flow, and a text.

A call's variables stay on the server: `place_call` stores them under an opaque id (`ctx:<id>`, 24 h)
before the create request and puts only that id in the call's Url
(`{IVR_PUBLIC_URL}/voice/{flow}?ctx={id}[&state={state}]`); the app reads them on the call's first
webhook. A campaign call also leaves `call:<CallSid>` -> {"campaign", "row"} (until its final status
callback, at most CALL_TTL) so the status callbacks can record each row's outcome.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ivr.core.twiml import CALLBACK_OVERRIDES
from ivr.errors import CallOutcomeUnknown, CallRequestError, TwilioCallError
from ivr.outbound.checks import caller_id, check_number, check_settings, check_target, check_variables, public_url
from ivr.outbound.client import make_client, twilio_error
from ivr.outbound.dry_run import DryRequest, capture_request
from ivr.store import SessionStore

__all__ = [
    "CALL_TTL",
    "CTX_TTL",
    "MACHINE_DETECTION",
    "MAX_TIMEOUT",
    "STATUS_EVENTS",
    "CallResult",
    "SmsResult",
    "place_call",
    "send_sms",
]

log = logging.getLogger(__name__)

CTX_TTL = 24 * 3600.0  # a call's variables wait this long for its first webhook
# CallSid -> campaign row, read by the call's final status callback: a call rings at most 10 minutes
# and lasts at most 4 hours; an hour more for late callbacks. The callback shortens it once it is read.
CALL_TTL = 5 * 3600 + 600.0
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
MACHINE_DETECTION = ("Enable", "DetectMessageEnd")
MAX_TIMEOUT = 600  # Twilio rings at most 600 s
MAX_BODY = 1600  # Twilio refuses a longer Body (error 21617)

_CALL_HINTS = {
    20429: "Twilio is rate-limiting this account: place calls more slowly (--rate) and try again",
    21205: "Twilio cannot use the call's Url: set IVR_PUBLIC_URL to the app's public https address",
    21210: "the From number is not verified for this account: use one of its Twilio numbers or a verified "
    "caller ID (--from or TWILIO_FROM_NUMBER)",
    21211: "check the To number: + country code and number, e.g. +15551234567",
    21212: "the From number is not a valid caller ID: use a Twilio number of this account or a verified "
    "caller ID, in E.164 (--from or TWILIO_FROM_NUMBER)",
    21213: "give a caller ID with --from or TWILIO_FROM_NUMBER",
    21214: "the To number cannot be reached: check that it is in service",
    21215: "calls to this country are off: allow it in the Twilio Console, Voice, Settings, Geo permissions",
    21216: "Twilio blocks calls to this number",
    21217: "the To number does not look valid: check it (+ country code and number, e.g. +15551234567)",
    21219: "a trial account only calls verified numbers: verify the To number in the Console or upgrade",
}
_SMS_HINTS = {
    20429: "Twilio is rate-limiting this account: send more slowly and try again",
    21211: "check the To number: + country code and number, e.g. +15551234567",
    21212: "the From number is not valid: use an SMS-capable Twilio number (--from or TWILIO_FROM_NUMBER)",
    21408: "texts to this region are off: allow it in the Twilio Console, Messaging, Settings, Geo permissions",
    21606: "the From number cannot send texts: use an SMS-capable Twilio number (--from or TWILIO_FROM_NUMBER)",
    21608: "a trial account only texts verified numbers: verify the To number in the Console or upgrade",
    21610: "the recipient replied STOP: Twilio sends them nothing until they reply START",
    21614: "the To number cannot receive texts (not a mobile number)",
    21617: f"the body is too long: Twilio takes at most {MAX_BODY} characters",
}


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call placed (or, with dry_run, the request that would place it)."""

    flow: str
    state: str | None
    to: str
    from_: str
    url: str
    ctx: str
    sid: str | None
    status: str | None
    dry_run: bool = False
    request: DryRequest | None = None
    outcome: str | None = None  # a status callback that beat the create's answer (campaign calls)


@dataclass(frozen=True, slots=True)
class SmsResult:
    """A text sent (or, with dry_run, the request that would send it)."""

    to: str
    from_: str
    sid: str | None
    status: str | None
    dry_run: bool = False
    request: DryRequest | None = None


# -- calls --------------------------------------------------------------------------------------


def place_call(
    settings: dict,
    flow: str,
    to: str,
    *,
    from_: str | None = None,
    state: str | None = None,
    variables: dict | None = None,
    machine_detection: str | None = None,
    timeout: int | None = None,
    client: Client | None = None,
    store: SessionStore | None = None,
    flows: dict | None = None,
    dry_run: bool = False,
    campaign: str | None = None,
    row: str | None = None,
) -> CallResult:
    """Create a call that enters `flow` (at `state`) with `variables`; everything is checked before sending.

    `store` is the app's session store, where the call's variables wait for its first webhook; a dry
    run needs none.
    """
    if flows is None:
        from ivr.core.loader import load_flows

        flows = load_flows(settings.get("IVR_FLOWS_DIR") or "flows")
    check_target(settings, flows, flow, state)
    to = check_number(to, "--to")
    check_settings(settings, from_, credentials=not dry_run and client is None)
    sender = caller_id(settings, from_)
    variables = check_variables(variables)
    if machine_detection is not None and machine_detection not in MACHINE_DETECTION:
        raise CallRequestError(
            f"machine detection {machine_detection!r} is not one of {', '.join(MACHINE_DETECTION)} "
            "(DetectMessageEnd waits for the beep, for a voicemail drop)"
        )
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 600):
        raise CallRequestError(f"timeout {timeout!r} is not a whole number of seconds from 1 to {MAX_TIMEOUT}")
    base = public_url(settings)
    ctx = secrets.token_urlsafe(16)
    url = f"{base}/voice/{flow}?ctx={ctx}" + (f"&state={state}" if state else "")
    params: dict = {
        "to": to,
        "from_": sender,
        "url": url,
        "method": "POST",
        "status_callback": f"{base}/twilio/status{CALLBACK_OVERRIDES}",
        "status_callback_event": list(STATUS_EVENTS),
        "status_callback_method": "POST",
    }
    if machine_detection is not None:
        params["machine_detection"] = machine_detection
    if timeout is not None:
        params["timeout"] = timeout
    result = CallResult(flow, state, to, sender, url, ctx, None, None)
    if dry_run:
        request = capture_request(settings, client, lambda c: c.calls.create(**params))
        return replace(result, dry_run=True, request=request)

    if store is None:
        raise ValueError("place_call needs the app's session store (OutboundDeps.opened_store gives it)")
    client = client if client is not None else make_client(settings)
    ctx_key = f"ctx:{ctx}"
    entry = {"flow": flow, "state": state, "vars": variables, "campaign": campaign, "row": row}
    store.update(ctx_key, lambda _old: entry, CTX_TTL)
    try:
        call = client.calls.create(**params)
    except TwilioException as exc:
        error = _explain(exc, _CALL_HINTS)
        if error.status is None:
            raise _unknown(error, to) from None
        store.delete(ctx_key)  # Twilio answered: no call exists, so nothing may be left behind
        raise error from None
    except OSError as exc:  # requests' errors: the request may have reached Twilio
        raise _unknown(TwilioCallError(f"could not reach Twilio: {exc}"), to) from None
    outcome = _link_call(store, call.sid, campaign, row) if campaign is not None else None
    log.info("placed call %s into %s%s", call.sid, flow, f"/{state}" if state else "")
    return replace(result, sid=call.sid, status=call.status, outcome=outcome)


def _link_call(store: SessionStore, sid: str, campaign: str, row: str | None) -> str | None:
    """Store call:<sid> -> its campaign row; return an outcome a status callback stored before us."""
    early: dict = {}

    def link(old: dict | None) -> dict:
        early.update(old or {})
        return {**(old or {}), "campaign": campaign, "row": row}

    store.update(f"call:{sid}", link, CALL_TTL)
    return early.get("outcome")


def _unknown(error: TwilioCallError, to: str) -> CallOutcomeUnknown:
    unknown = CallOutcomeUnknown(
        f"{error}; the call to {to} may or may not have been created: look it up in the Twilio Console "
        "(Monitor, Logs, Calls) before calling again"
    )
    unknown.code, unknown.status = getattr(error, "code", None), None
    return unknown


def _explain(exc: TwilioException, hints: dict[int, str]) -> TwilioCallError:
    """twilio_error's message without the library's preamble, with the fix for codes ivr knows."""
    error = twilio_error(exc)
    text = str(error).replace("Unable to create record: ", "")
    code = getattr(error, "code", None)
    marker = f" (https://www.twilio.com/docs/errors/{code})"
    if code in hints and marker in text:
        text = text.replace(marker, f"; {hints[code]}{marker}")
    explained = TwilioCallError(text)
    explained.code, explained.status = code, getattr(error, "status", None)
    return explained


# -- texts --------------------------------------------------------------------------------------


def send_sms(
    settings: dict,
    to: str,
    body: str,
    *,
    from_: str | None = None,
    client: Client | None = None,
    dry_run: bool = False,
) -> SmsResult:
    """Send a text with `messages.create(To, From, Body)`; everything is checked before sending."""
    to = check_number(to, "--to")
    sender = caller_id(settings, from_)
    if not (body or "").strip():
        raise CallRequestError("the text is empty: give it with --body TEXT")
    if len(body) > MAX_BODY:
        raise CallRequestError(f"the text has {len(body)} characters; Twilio takes at most {MAX_BODY}")
    result = SmsResult(to, sender, None, None)
    if dry_run:
        request = capture_request(settings, client, lambda c: c.messages.create(to=to, from_=sender, body=body))
        return replace(result, dry_run=True, request=request)
    client = client if client is not None else make_client(settings)
    try:
        message = client.messages.create(to=to, from_=sender, body=body)
    except TwilioException as exc:
        raise _explain(exc, _SMS_HINTS) from None
    except OSError as exc:
        raise TwilioCallError(
            f"could not reach Twilio: {exc}; the text to {to} may or may not have been sent: look it up in "
            "the Twilio Console (Monitor, Logs, Messaging) before sending again"
        ) from None
    log.info("sent text %s", message.sid)
    return replace(result, sid=message.sid, status=message.status)
