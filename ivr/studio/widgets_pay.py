"""Studio's Call Recording and Capture Payments widgets: `call_recording` and `pay` states."""

from __future__ import annotations

import re
from typing import Any

from ivr.studio import liquid
from ivr.studio.model import Context, Piece, Widget, converts, flag, number, reads

__all__ = ["PAY_EVENTS", "capture_payments", "payment_variable", "record_call"]


@converts("record-call")
def record_call(widget: Widget, ctx: Context) -> Piece:
    """Record Call on: a `call_recording: start`; off: `call_recording: stop`, failing to its failed path.

    Call Recording widget (https://www.twilio.com/docs/studio/widget-library/call-recording):
    "Record Call" is a switch, off by default, that starts or stops the recording (never pauses it);
    events success and failed."""
    name = ctx.state(widget)
    comments: list[str] = []
    if widget.prop("recording_status_callback"):
        ctx.report(
            widget,
            f"recording_status_callback {widget.prop('recording_status_callback')} is not carried over: ivr "
            "receives the recording's status itself (/twilio/recording) and keeps it with the call",
        )
    if not flag(widget.prop("record_call", False)):
        state = {
            "call_recording": "stop",
            "on_error": ctx.failure(widget, "failed"),
            "next": ctx.target(widget, "success"),
        }
        return Piece().add(name, state)
    options: dict[str, Any] = {}
    channels = str(widget.prop("recording_channels", "")).lower()
    if channels in ("mono", "dual"):
        options["channels"] = channels
    trim = widget.prop("trim")
    if trim in ("trim-silence", "do-not-trim"):
        options["trim"] = trim == "trim-silence"
    state: dict[str, Any] = {"call_recording": {"start": options} if options else "start"}
    if _announced(widget, ctx):
        # Consent: the check wants the state whose prompt says so marked; that prompt is right before.
        state["announces_recording"] = True
        comments.append("The prompt just before tells the caller that the call is recorded.")
    else:
        ctx.report(
            widget,
            "no prompt right before it says that the call is recorded: mark the state whose prompt says so "
            "with announces_recording: true (check warns until then)",
        )
    if widget.next("failed"):
        # <Start><Recording> goes out with the state's document: there is no failure to route.
        comments.append("Studio's failed transition is not carried over: starting a recording cannot fail here.")
        ctx.report(widget, "its failed transition is not carried over: a recording started by TwiML cannot fail here")
    state["next"] = ctx.target(widget, "success")
    return Piece().add(name, state, *comments)


def _announced(widget: Widget, ctx: Context) -> bool:
    """Whether every widget that leads here is a say or a gather whose text speaks of recording."""
    sources = ctx.sources(widget.name)
    texts = [str(w.prop("say", "")) for w, _ in sources if w.type in ("say-play", "gather-input-on-call")]
    return bool(sources) and len(texts) == len(sources) and all(re.search(r"\brecord", t, re.I) for t in texts)


# Capture Payments widget events (https://www.twilio.com/docs/studio/widget-library/capture-payments)
# and the <Pay> Result each one stands for (https://www.twilio.com/docs/voice/twiml/pay, "Result").
PAY_EVENTS = {
    "success": "success",
    "maxFailedAttempts": "too-many-failed-attempts",
    "providerError": "payment-connector-error",
    "payInterrupted": "caller-interrupted-with-star",
    "hangup": "caller-hung-up",
    "validationError": "validation-error",
}
_PAY_OUTPUTS = {
    "Result": "result",
    "PaymentToken": "token",
    "PaymentConfirmationCode": "confirmation_code",
    "PaymentCardType": "card_type",
    "ProfileId": "profile_id",
    "PaymentError": "error",
    "ConnectorError": "error",
}
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?\Z")


def payment_variable(widget: Widget, ctx: Context) -> str:
    """The variable a payment state keeps its results in (`save_as`), named after its state."""
    state = ctx.state(widget)
    return f"{state}_payment" if state[0].isalpha() else f"payment_{state}"


@converts("capture-payments")
def capture_payments(widget: Widget, ctx: Context) -> Piece:
    """A `pay`: Studio's defaults written out where they differ from Twilio's, each event a route."""
    pay: dict[str, Any] = {}
    amount = widget.prop("payment_amount")
    if amount is not None and str(amount).strip() not in ("", "0"):
        text = str(amount).strip()
        pay["amount"] = liquid.text(ctx, widget, text, "payment_amount") if "{" in text else text
        if "{" not in text and not _AMOUNT.match(text):
            ctx.report(widget, f"amount {text!r} is not a decimal with at most two places; check it")
        pay["currency"] = str(widget.prop("currency", "usd")).lower()
    else:
        token_type = widget.prop("payment_token_type")
        if token_type in ("one-time", "reusable", "payment-method"):
            pay["token_type"] = token_type
    if widget.prop("payment_connector"):
        pay["connector"] = str(widget.prop("payment_connector"))
    if widget.prop("payment_method") in ("credit-card", "ach-debit"):
        pay["method"] = widget.prop("payment_method")
    cards = widget.prop("valid_card_types")
    if cards:
        pay["card_types"] = [str(c) for c in cards] if isinstance(cards, list) else str(cards).split()
    for key in ("security_code", "postal_code"):
        value = flag(widget.prop(key)) if widget.prop(key) is not None else None
        if value is not None:
            pay[key] = value
        elif widget.prop(key) is not None and key == "postal_code":
            pay[key] = str(widget.prop(key))  # a postal code to send, not to ask
    if number(widget.prop("min_postal_code_length")):
        pay["min_postal_code_length"] = number(widget.prop("min_postal_code_length"))
    # Studio's defaults (Capture Payments widget, "Optional Configuration"): Timeout 5 (Twilio's too),
    # Max Attempts 2 (Twilio's <Pay> asks once: written out so the flow keeps Studio's behaviour).
    pay["timeout"] = number(widget.prop("timeout")) or 5
    pay["max_attempts"] = number(widget.prop("max_attempts")) or 2
    if widget.prop("language"):
        pay["language"] = str(widget.prop("language"))
    if widget.prop("description"):
        pay["description"] = liquid.text(ctx, widget, str(widget.prop("description")), "description")
    if widget.prop("parameters"):
        ctx.report(widget, "its connector parameters are not carried over: the flow language's pay sends none")
    if ctx.uses(widget):
        pay["save_as"] = payment_variable(widget, ctx)
    routes = {}
    for event, result in PAY_EVENTS.items():
        if event == "hangup" and not widget.next(event):
            continue  # Twilio ignores the answer to a hung-up payment: it needs no route
        routes[result] = ctx.target(widget, event)
    if widget.next("hangup"):
        ctx.report(
            widget,
            "its hangup transition runs after the caller hung up: only steps without the caller make sense there",
        )
    # internal-error (Twilio failed, or went past <Pay>) has no Studio event: it is a failure.
    failed = ctx.failure(widget, "providerError", "validationError")
    routes = {result: target for result, target in routes.items() if target != failed}
    state = {"pay": pay, **({"routes": routes} if routes else {}), "next": failed}
    comment = "Studio's events as <Pay> results; next takes the failures (and internal-error, which has no event)."
    return Piece().add(ctx.state(widget), state, comment)


@reads("capture-payments")
def pay_output(widget: Widget, path: str, ctx: Context) -> str | None:
    field = _PAY_OUTPUTS.get(path)
    return f"{payment_variable(widget, ctx)}.{field}" if field else None
