"""What a webhook reports for a state's waiting verb: the outcome the machine fires, read from
Twilio's parameters (Digits, SpeechResult, RecordingUrl, DialCallStatus, QueueResult, Pay's Result, an
agent's HandoffData)."""

from __future__ import annotations

import re
import unicodedata

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_relay import agent_event
from ivr.core.pay import Pay, pay_event
from ivr.errors import WebhookError

__all__ = ["expected_digits", "normalize_speech", "one_key_menu", "read_outcome", "speech_table"]

_NUMBER_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
# The same words in the languages flows most often offer (Spanish, French, German, Italian, Portuguese),
# written as `normalize_speech` leaves them (accents removed): "dos" or "deux" said to a keypad menu is 2.
# Pairs that mean the same digit in two languages (tres, seis, nove) agree; "um" (Portuguese 1) is left out,
# as it is also a hesitation.
for _digit, _words in enumerate(
    (
        "cero zero null",
        "uno un une eins ein",
        "dos deux zwei due dois duas",
        "tres trois drei tre",
        "cuatro quatre vier quattro quatro",
        "cinco cinq funf cinque",
        "seis sechs sei",
        "siete sept sieben sette sete",
        "ocho huit acht otto oito",
        "nueve neuf neun nove",
    )
):
    _NUMBER_WORDS.update(dict.fromkeys(_words.split(), str(_digit)))
_SPOKEN_DIGITS = re.compile(r"[0-9]+(?: [0-9]+)*\Z")


_PUNCT_RE = re.compile(r"[^\w\s']|_")
_SPACE_RE = re.compile(r"\s+")


def normalize_speech(text: str) -> str:
    """Lower case, accents and punctuation removed, spaces folded: 'Réservation, please!' -> 'reservation please'
    (a recognizer may or may not write the accents a flow's words have)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _PUNCT_RE.sub(" ", text).replace("'", "")
    return _SPACE_RE.sub(" ", text).strip()


def read_outcome(state: f.State, params: dict, event: str | None, session: dict, speech_routes) -> str:
    """The outcome a request reports for a state's waiting verb."""
    action = state.action
    if isinstance(action, Pay):  # Twilio's Result; the Redirect after <Pay> as a payment that did not happen
        return pay_event(state, params, event, session)
    if isinstance(action, Agent):  # HandoffData's route, a hang-up or an error (ivr.core.agent_relay)
        return agent_event(state, params, event, session)
    if event is not None:
        allowed = {f.Gather: "no_input", f.Record: "no_recording"}.get(type(action))
        if event != allowed:
            raise WebhookError(f"event '{event}' does not fit state '{state.name}'")
        return event
    if isinstance(action, f.Gather):
        return _gather_outcome(state, params, session, speech_routes)
    if isinstance(action, f.Record):
        url = params.get("RecordingUrl")
        if not url:
            return "no_recording"
        session["recording"] = {
            "url": url,
            "sid": params.get("RecordingSid", ""),
            "duration": _int(params.get("RecordingDuration")),
            "digits": params.get("Digits", ""),
        }
        return "recorded"
    if isinstance(action, f.Dial):
        status = params.get("DialCallStatus", "")
        session["dial"] = {
            "status": status,
            "sid": params.get("DialCallSid", ""),
            "duration": _int(params.get("DialCallDuration")),
        }
        screened = session.get("screens", {}).pop(state.name, None)
        # Answered but not accepted (no key, a voicemail box): whatever status Twilio reports.
        if action.screen is not None and status in ("completed", "answered") and screened != "accepted":
            return f.DECLINED
        return status if status in f.dial_outcomes(action) else "failed"
    if isinstance(action, f.Enqueue):
        result = params.get("QueueResult", "")
        session["queue"] = {"result": result, "time": _int(params.get("QueueTime"))}
        return result if result in f.ENQUEUE_OUTCOMES else "error"
    raise WebhookError(f"state '{state.name}' waits for nothing; it takes no results")


def _gather_outcome(state: f.State, params: dict, session: dict, speech_routes) -> str:
    digits = params.get("Digits", "")
    speech = params.get("SpeechResult", "")
    if not digits and not speech.strip():
        # Nothing heard, reported to the action (actionOnEmptyResult) instead of through the Redirect: the
        # same no_input, and like the Redirect it leaves the last input as it was.
        return "no_input"
    confidence = _float(params.get("Confidence"))
    session["input"] = {"digits": digits, "speech": speech, "confidence": confidence}
    gather: f.Gather = state.action
    unmatched = f.NEXT_EVENT if state.next and gather.save_as is None else "no_match"
    if digits:
        if _routes_key(state, digits):
            return digits
        return _collect(gather, digits, session) if gather.save_as else unmatched
    if gather.min_confidence is not None and (confidence or 0.0) < gather.min_confidence:
        return unmatched
    text = f" {normalize_speech(speech)} "
    for phrase, outcome in speech_routes:
        if phrase in text:
            return outcome
    # "one" or "1" said to a keypad menu means the key.
    spoken = text.strip()
    key = _NUMBER_WORDS.get(spoken) or (spoken.replace(" ", "") if _SPOKEN_DIGITS.match(spoken) else None)
    if key and _routes_key(state, key):
        return key
    if gather.save_as:
        return _collect(gather, key or speech.strip(), session)
    return unmatched


def _collect(gather: f.Gather, value: str, session: dict) -> str:
    """Collected input: kept in its variable when it has the pattern and length asked for."""
    if gather.length is not None:
        fewest, most = gather.length
        if not (value.isdigit() and fewest <= len(value) <= most):
            return "no_match"
    if gather.pattern is not None and not gather.pattern.fullmatch(value):
        return "no_match"
    session["vars"][gather.save_as] = value
    return f.VALID_EVENT


def _routes_key(state: f.State, key: str) -> bool:
    return any(r.outcome == key for r in state.routes)


def speech_table(state: f.State) -> tuple[tuple[str, str], ...]:
    """(padded phrase, outcome) pairs in declared order, for word-boundary matching."""
    table = []
    for route in state.routes:
        # A key route's synonyms are what a caller may say instead of pressing it.
        phrases = route.synonyms if f.is_digit_key(route.outcome) else (route.outcome, *route.synonyms)
        for phrase in phrases:
            normal = normalize_speech(phrase)
            if normal:
                table.append((f" {normal} ", route.outcome))
    return tuple(table)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def expected_digits(state: f.State) -> tuple[int | None, str]:
    """How many keys a state's Gather takes before it submits (Twilio's numDigits), and the key that says
    so; None: it waits for the finish key or the timeout."""
    gather: f.Gather = state.action
    if gather.num_digits is not None:
        return gather.num_digits, "gather.num_digits"
    if gather.save_as is not None:
        fixed = gather.length is not None and gather.length[0] == gather.length[1]
        return (gather.length[0], "gather.length") if fixed else (None, "gather.num_digits")
    # A menu of one-key routes submits at the first key: else each key would wait out the timeout. With a
    # catch-all next:, any number of keys may mean something, so Twilio waits (lint warns of it).
    if one_key_menu(state) and state.next is None:
        return 1, "gather.num_digits"
    return None, "gather.num_digits"


def one_key_menu(state: f.State) -> bool:
    """Whether a gather's key routes are all one key long (and there is at least one)."""
    keys = [r.outcome for r in state.routes if f.is_digit_key(r.outcome)]
    return bool(keys) and all(len(k) == 1 for k in keys)
