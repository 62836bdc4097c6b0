"""Payments: a state that takes a card (or a bank account) through Twilio's <Pay>, as data. No I/O here.

    pay_bill:
      say: Your balance is {{ balance }} dollars.
      pay:
        amount: "{{ balance }}"
        currency: usd
        connector: Default
        save_as: payment
        prompts:
          payment-card-number: Please enter your card number, then press pound.
      routes: {success: thanks, too-many-failed-attempts: sorry, caller-interrupted-with-star: menu}
      next: sorry

Twilio asks the caller for each step itself, retries a step up to `max_attempts`, and requests the
state's own URL with `Result` when it is done: that result is the event routed (`next` for the rest).
The card never reaches the app: Twilio sends the connector the card and the app a masked number, a
token and a confirmation code. What a flow keeps (`save_as`) is only what `pay_vars` takes from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from twilio.twiml.voice_response import Pay as PayVerb
from twilio.twiml.voice_response import Prompt, Redirect

from ivr.core import flow as f
from ivr.errors import WebhookError

__all__ = [
    "CARD_TYPES",
    "ERROR_TYPES",
    "FAILED",
    "HUNG_UP",
    "PAY_RESULTS",
    "SKIPPED_EVENT",
    "STEPS",
    "SUCCESS",
    "Pay",
    "PayPrompt",
    "amount_problem",
    "no_numbers",
    "pay_event",
    "pay_prompts",
    "pay_texts",
    "pay_vars",
    "pay_verbs",
    "progress",
]

# Twilio's <Pay> Result values, as its action request reports them.
PAY_RESULTS = (
    "success",
    "too-many-failed-attempts",
    "payment-connector-error",
    "caller-interrupted-with-star",
    "caller-hung-up",
    "validation-error",
    "internal-error",
)
SUCCESS = "success"
HUNG_UP = "caller-hung-up"  # Twilio ignores what the app answers then: it needs no route
FAILED = tuple(r for r in PAY_RESULTS if r not in (SUCCESS, HUNG_UP))
# The Redirect after <Pay>: reached only if Twilio went past <Pay> without requesting its action (a
# region or account without <Pay>): routed as a payment that did not happen.
SKIPPED_EVENT = "internal-error"
# <Prompt for>: the seven steps of Twilio's <Pay>; each may have prompts of its own.
STEPS = (
    "payment-card-number",
    "expiration-date",
    "security-code",
    "postal-code",
    "payment-processing",
    "bank-routing-number",
    "bank-account-number",
)
CARD_STEPS = ("payment-card-number", "expiration-date", "security-code", "postal-code")
BANK_STEPS = ("bank-routing-number", "bank-account-number")
METHODS = ("credit-card", "ach-debit")
TOKEN_TYPES = ("one-time", "reusable", "payment-method")
BANK_ACCOUNT_TYPES = ("consumer-checking", "consumer-savings", "commercial-checking")
CARD_TYPES = ("visa", "mastercard", "amex", "maestro", "discover", "optima", "jcb", "diners-club", "enroute")
# <Prompt errorType>: why a step is asked again.
ERROR_TYPES = (
    "timeout",
    "invalid-card-number",
    "invalid-card-type",
    "invalid-date",
    "invalid-security-code",
    "invalid-postal-code",
    "invalid-bank-routing-number",
    "invalid-bank-account-number",
    "input-matching-failed",
)
AMOUNT_RE = re.compile(r"[0-9]{1,7}(?:\.[0-9]{1,2})?\Z")
_LAST4 = re.compile(r"([0-9]{4})\s*\Z")
# What a status callback may tell of the payment's progress; never a number, date or code.
_PROGRESS = {"Capture": "step", "PartialResult": "partial", "Required": "required", "ErrorType": "error",
             "Result": "result", "PaymentCardType": "card_type"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PayPrompt:
    """What the caller hears at one step (`for`), on the attempts, errors and card types it names (all if none)."""

    step: str
    prompts: tuple  # Say, Play, Pause (Msg until the flow is seen in a language)
    pos: f.Pos
    attempts: tuple[int, ...] = ()
    errors: tuple[str, ...] = ()
    card_types: tuple[str, ...] = ()
    require_matching: bool = False


@dataclass(frozen=True, slots=True)
class Pay:
    """`pay:` Twilio's <Pay>: charge `amount` (a Text; None or 0: tokenize only) through `connector`."""

    pos: f.Pos
    amount: f.Text | None = None
    currency: str | None = None
    token_type: str | None = None
    connector: str | None = None
    method: str | None = None
    card_types: tuple[str, ...] = ()
    postal_code: bool | str | None = None  # True/False: ask or not; text: the postal code to use, not asked
    security_code: bool | None = None
    min_postal_code_length: int | None = None
    bank_account_type: str | None = None
    timeout: int | None = None
    max_attempts: int | None = None
    description: f.Text | None = None
    language: str | None = None
    prompts: tuple[PayPrompt, ...] = ()
    save_as: str | None = None
    # A whole-call recording running when the call gets here is paused first (ivr.core.pay_recording) and resumed
    # after; false: the flow pauses it itself, and check refuses the state where one may still run.
    pause_recording: bool = True


def amount_problem(source: str) -> str | None:
    """Why a literal charge amount is not one Twilio takes (a decimal, at most 2 places), or None."""
    if AMOUNT_RE.match(source):
        return None
    return f"expected an amount such as 12.50 (or 0 to keep the card as a token), got '{source}'"


def pay_texts(action: Pay) -> list[f.Text]:
    """Every text of a payment that may carry a template (amount, description), for `check` and rendering."""
    return [t for t in (action.amount, action.description) if t is not None]


def pay_prompts(action: Pay) -> list:
    """Every prompt a payment may play, of every step."""
    return [p for step in action.prompts for p in step.prompts]


def pay_verbs(action: Pay, urls, flow_id: str, state: str, language: str | None, prompt, text) -> list:
    """<Pay> (its <Prompt>s built by `prompt`, texts rendered by `text`) and the Redirect that follows it. Its
    action is the state's own URL; its status callback /twilio/pay?flow=F&state=S (`urls`: ivr.core.twiml.Urls)."""
    action_url = urls.action(flow_id, state)
    callback_url = f"{urls.base}/twilio/pay?flow={flow_id}&state={state}"
    amount = _amount(text(action.amount), action)
    postal = action.postal_code
    verb = PayVerb(
        input="dtmf",
        action=action_url,
        method="POST",
        status_callback=callback_url,
        status_callback_method="POST",
        timeout=action.timeout,
        max_attempts=action.max_attempts,
        security_code=None if action.security_code is None else str(action.security_code).lower(),
        postal_code=str(postal).lower() if isinstance(postal, bool) else postal,
        min_postal_code_length=action.min_postal_code_length,
        payment_connector=action.connector,
        payment_method=action.method,
        bank_account_type=action.bank_account_type,
        token_type=action.token_type,
        charge_amount=amount,
        currency=action.currency if amount not in (None, "", "0") else None,
        description=text(action.description),
        valid_card_types=" ".join(action.card_types) or None,
        language=action.language or language,
    )
    for step in action.prompts:
        nested = Prompt(
            for_=step.step,
            attempt=" ".join(map(str, step.attempts)) or None,
            error_type=" ".join(step.errors) or None,
            card_type=" ".join(step.card_types) or None,
            require_matching_inputs="true" if step.require_matching else None,
        )
        for said in step.prompts:
            nested.append(prompt(said))
        verb.append(nested)
    # Twilio requests the action when <Pay> ends, however it ends; past it, the payment did not happen.
    return [verb, Redirect(urls.action(flow_id, state, SKIPPED_EVENT), method="POST")]


def _amount(rendered: str | None, action: Pay) -> str | None:
    """A templated amount as Twilio takes it (12.5 -> 12.50); WebhookError when it is not an amount."""
    if rendered is None or action.amount.template is None:
        return rendered
    try:
        value = Decimal(rendered.strip())
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0 or value >= 10_000_000:
        raise WebhookError(f"{action.amount.pos}: pay.amount rendered '{rendered}', not an amount to charge")
    return "0" if value == 0 else f"{value.quantize(Decimal('0.01'))}"


def pay_event(state: f.State, params: dict, event: str | None, session: dict) -> str:
    """The outcome of a payment: Twilio's Result (an unknown one as internal-error), its values kept in save_as."""
    action: Pay = state.action
    if event not in (None, SKIPPED_EVENT):
        raise WebhookError(f"event '{event}' does not fit state '{state.name}'")
    result = SKIPPED_EVENT if event is not None else params.get("Result", "")
    if result not in PAY_RESULTS:
        result = "internal-error"
    if action.save_as is not None:
        session["vars"][action.save_as] = pay_vars(result, params)
    return result


def pay_vars(result: str, params: dict) -> dict:
    """What a flow may keep of a payment: the result, token, confirmation code, card type and last four digits.
    Never the expiry, the security code, the postal code or more of the number than its last four digits."""
    masked = params.get("PaymentCardNumber") or params.get("BankAccountNumber") or ""
    last4 = _LAST4.search(masked)
    return {
        "result": result,
        "token": params.get("PaymentToken", ""),
        "confirmation_code": params.get("PaymentConfirmationCode", ""),
        "card_type": params.get("PaymentCardType", ""),
        "last4": last4.group(1) if last4 else "",
        "profile_id": params.get("ProfileId", ""),
        "error": no_numbers(params.get("PaymentError", "") or params.get("ConnectorError", "")),
    }


_DIGITS = re.compile(r"[0-9][0-9 -]{2,}[0-9]")


def no_numbers(text: str, limit: int = 200) -> str:
    """A connector's error text without the numbers it may quote (a card, a code, an expiry): each run of three
    or more digits becomes '[number]'; one line, at most `limit` characters."""
    return " ".join(_DIGITS.sub("[number]", str(text)).split())[:limit]


# What each progress field may be: a value outside these is dropped, never stored or logged.
_PROGRESS_VALUES = {
    "step": lambda v: v in STEPS,
    "partial": lambda v: v in ("true", "false"),
    "required": lambda v: all(part.strip() in STEPS for part in v.split(",")),
    "error": lambda v: v in ERROR_TYPES or (v.isdigit() and len(v) <= 6),
    "result": lambda v: v in PAY_RESULTS,
    "card_type": lambda v: v in CARD_TYPES,
}


def progress(params: dict) -> dict:
    """What a <Pay> status callback tells of the payment's progress, without card data: each field only when it is
    one of the values Twilio sends there (a forged or unexpected one is dropped, never stored or logged)."""
    out = {}
    for key, name in _PROGRESS.items():
        value = str(params.get(key) or "")
        if value and _PROGRESS_VALUES[name](value):
            out[name] = value
    return out
