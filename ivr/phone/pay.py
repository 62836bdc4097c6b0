"""<Pay> on the built-in phone, played as Twilio plays it, with no connector and no card ever sent to the app.

The call waits on <Pay> at its first step. `call.pay(card=..., expiry=..., security_code=...,
postal_code=...)` (or `routing=`, `account=` for ach-debit) keys what the caller keys, step by step
from the step asked now; `call.press("4242...#")` keys one step. Each entry is checked as a
connector would (Luhn, a card type the <Pay> accepts, an expiry not past, 3 digits of security code,
4 for amex, a postal code); a bad one is asked again with the <Prompt> for that attempt and error, up to
maxAttempts; `*` ends the payment. The action is then requested with Twilio's parameters: Result, the
card number masked as Twilio masks it (xxxx-xxxx-xxxx-4242), its type, a made-up token and, for a
charge, a made-up confirmation code. Status callbacks tell the step and error, never what was keyed.
What was keyed lives only in this object while the payment lasts, and is never written anywhere.
"""

from __future__ import annotations

import time
import urllib.parse

from ivr.phone import twiml
from ivr.phone.records import Heard

__all__ = ["DEFAULT_PROMPTS", "PayingCall", "card_type", "luhn_ok"]

# What Twilio says at a step when the <Pay> has no <Prompt> for it (the phone's wording).
DEFAULT_PROMPTS = {
    "payment-card-number": "Please enter your credit card number.",
    "expiration-date": "Please enter your expiration date, two digits for the month and two digits for the year.",
    "security-code": "Please enter your security code.",
    "postal-code": "Please enter your zip code.",
    "payment-processing": "Please wait while we process your payment.",
    "bank-routing-number": "Please enter your bank routing number.",
    "bank-account-number": "Please enter your bank account number.",
}
_KEYWORDS = {
    "card": "payment-card-number",
    "expiry": "expiration-date",
    "security_code": "security-code",
    "postal_code": "postal-code",
    "routing": "bank-routing-number",
    "account": "bank-account-number",
}
_DEFAULT_CARDS = ("visa", "mastercard", "amex")


def luhn_ok(number: str) -> bool:
    """Whether a card number's check digit is right (Luhn)."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def card_type(number: str) -> str:
    """The card type its number's first digits say, as <Pay> names types ('' when none)."""
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if number.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "discover"
    if two == 35:
        return "jcb"
    if two in (36, 38) or 300 <= int(number[:3] or 0) <= 305:
        return "diners-club"
    if number.startswith(("50", "56", "57", "58", "6")):
        return "maestro"
    return ""


class _Payment:
    """One <Pay> while the caller keys it: the steps left, the attempt, and (briefly) what was keyed."""

    def __init__(self, verb) -> None:
        self.verb = verb
        ach = verb.get("paymentMethod") == "ach-debit"
        steps = ["bank-routing-number", "bank-account-number"] if ach else ["payment-card-number", "expiration-date"]
        if not ach and verb.get("securityCode", "true") != "false":
            steps.append("security-code")
        if not ach and verb.get("postalCode", "true") == "true":  # false, or a postal code given: not asked
            steps.append("postal-code")
        self.steps = steps
        self.attempt = 1
        self.max_attempts = twiml.whole_number(verb.get("maxAttempts"), 1)
        self.card_type = ""
        self.last4 = ""

    @property
    def step(self) -> str | None:
        return self.steps[0] if self.steps else None


class PayingCall:
    """The caller's side of <Pay> for a PhoneCall (which this is mixed into)."""

    _payment: _Payment | None = None

    def pay(
        self,
        card: str | None = None,
        expiry: str | None = None,
        security_code: str | None = None,
        postal_code: str | None = None,
        *,
        routing: str | None = None,
        account: str | None = None,
    ) -> None:
        """Key payment details, from the step <Pay> asks now on (an entry left out: the call waits there)."""
        given = {"card": card, "expiry": expiry, "security_code": security_code, "postal_code": postal_code,
                 "routing": routing, "account": account}  # fmt: skip
        values = {_KEYWORDS[k]: v for k, v in given.items() if v is not None}
        payment = self._paying("pay")
        while payment.step is not None and payment.step in values and self._payment is payment:
            self._key_step(payment, str(values.pop(payment.step)))

    def pay_keys(self, keys: str) -> None:
        """Key one step of <Pay> (`#` ends an entry, `*` ends the payment)."""
        payment = self._paying("press keys")
        self._key_step(payment, keys[:-1] if keys.endswith("#") else keys)

    def _paying(self, doing: str) -> _Payment:
        if self.waiting_for != "pay" or self._payment is None:
            self._take(doing, "pay")  # raises with what the call waits for
        self._mark, self._recent = len(self.transcript), []
        return self._payment

    def _pay_begin(self, verb) -> None:
        """The call reached <Pay>: its first step is asked."""
        self._payment = _Payment(verb)
        self._pay_prompt(self._payment.step, None)

    def _key_step(self, payment: _Payment, keys: str) -> None:
        if "*" in keys:
            return self._pay_end("caller-interrupted-with-star")
        step = payment.step
        error = self._pay_problem(payment, step, keys.replace("/", "").replace(" ", ""))
        if error is not None:
            payment.attempt += 1
            self._pay_status({"Capture": step, "ErrorType": error, "PartialResult": "true"})
            if payment.attempt > payment.max_attempts:
                return self._pay_end("too-many-failed-attempts")
            return self._pay_prompt(step, error)
        payment.steps.pop(0)
        payment.attempt = 1
        required = ",".join(payment.steps)
        self._pay_status({"Capture": step, "PartialResult": "true", **({"Required": required} if required else {})})
        if payment.step is not None:
            return self._pay_prompt(payment.step, None)
        self._pay_prompt("payment-processing", None)
        self._pay_end("success")

    def _pay_problem(self, payment: _Payment, step: str, keys: str) -> str | None:
        """Why an entry is refused (Twilio's errorType), or None."""
        verb = payment.verb
        if not keys:
            return "timeout"
        if step == "payment-card-number":
            if not (keys.isdigit() and 12 <= len(keys) <= 19 and luhn_ok(keys)):
                return "invalid-card-number"
            payment.card_type = card_type(keys)
            accepted = (verb.get("validCardTypes") or " ".join(_DEFAULT_CARDS)).split()
            if payment.card_type not in accepted:
                return "invalid-card-type"
            payment.last4 = keys[-4:]
        elif step == "expiration-date":
            if not (keys.isdigit() and len(keys) == 4 and 1 <= int(keys[:2]) <= 12):
                return "invalid-date"
            month, year = int(keys[:2]), 2000 + int(keys[2:])
            today = time.gmtime(self.phone.clock())
            if (year, month) < (today.tm_year, today.tm_mon):
                return "invalid-date"
        elif step == "security-code":
            if not (keys.isdigit() and len(keys) == (4 if payment.card_type == "amex" else 3)):
                return "invalid-security-code"
        elif step == "postal-code":
            shortest = twiml.whole_number(verb.get("minPostalCodeLength"), 1)
            if not (keys.isalnum() and shortest <= len(keys) <= 10):
                return "invalid-postal-code"
        elif step == "bank-routing-number":
            weights = (3, 7, 1) * 3  # the ABA check digit
            checked = keys.isdigit() and len(keys) == 9
            if not (checked and sum(int(d) * w for d, w in zip(keys, weights, strict=True)) % 10 == 0):
                return "invalid-bank-routing-number"
        elif step == "bank-account-number":
            if not (keys.isdigit() and 4 <= len(keys) <= 17):
                return "invalid-bank-account-number"
            payment.last4 = keys[-4:]
        return None

    def _pay_prompt(self, step: str, error: str | None) -> None:
        """What the caller hears at `step`: the <Prompt> that fits the attempt, error and card type best."""
        payment = self._payment
        best, score = None, -1
        for prompt in payment.verb.iter("Prompt"):
            if prompt.get("for") != step:
                continue
            fits = [
                _fits(prompt.get("attempt"), str(payment.attempt)),
                _fits(prompt.get("errorType"), error),
                _fits(prompt.get("cardType"), payment.card_type or None),
            ]
            if all(f is not None for f in fits) and sum(fits) > score:
                best, score = prompt, sum(fits)
        if best is None:
            self.transcript.append(Heard("say", DEFAULT_PROMPTS[step], None, None, 1, self.flow, self.state))
            return
        for verb in best:
            if verb.tag in twiml.PROMPTS:
                self.transcript.append(twiml.heard(verb, self.flow, self.state))

    def _pay_status(self, fields: dict[str, str], verb=None) -> None:
        callback = (verb if verb is not None else self._payment.verb).get("statusCallback")
        if callback:
            url = urllib.parse.urljoin(self._doc_url or self.phone.url("/"), callback)
            self._callback(url, {**self._params(), **fields})

    def _pay_end(self, result: str) -> None:
        """Twilio requests the action with the result; what was keyed is forgotten first."""
        payment, self._payment = self._payment, None
        self.waiting_for = None
        extra = {"Result": result}
        if result == "success":
            verb = payment.verb
            if verb.get("paymentMethod") == "ach-debit":
                extra["BankAccountNumber"] = "x" * 5 + payment.last4
            else:
                extra.update(PaymentCardNumber=f"xxxx-xxxx-xxxx-{payment.last4}", PaymentCardType=payment.card_type)
            extra["PaymentToken"] = self.phone.new_sid("tok_")
            if (verb.get("chargeAmount") or "0").strip("0.") != "":
                extra["PaymentConfirmationCode"] = self.phone.new_sid("ch_")
        self._pay_status({"Result": result}, payment.verb)
        self._submit(payment.verb, extra)

    def _pay_hangup(self) -> dict[str, str]:
        """The caller hung up during <Pay>: Twilio reports it to the action."""
        self._payment = None
        return {"Result": "caller-hung-up"}


def _fits(attribute: str | None, value: str | None) -> bool | None:
    """True: the attribute names the value; False: it names nothing (fits any); None: it names others."""
    if attribute is None or not attribute.strip():
        return False
    if value is not None and value in attribute.split():
        return True
    return None
