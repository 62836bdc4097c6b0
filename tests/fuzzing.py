"""Hostile webhooks for every route Twilio calls, as Hypothesis strategies, and what any answer must be.

Shared by tests/test_properties.py (a few thousand examples, fixed seed) and benchmarks/fuzz.py
(100,000 by hand). A `Webhook` is one request as it goes over the wire: method, path with its
query, parameters as raw bytes (so that a value may be non-UTF-8), and how it is signed.
`problems(webhook, status, body)` lists every way an answer breaks the promises (DESIGN principles
6-8): 200 with TwiML that validates (texts: messaging TwiML with one Message), 403 exactly when the
signature is bad, no traceback or Python repr, nothing the caller said run as a template.
"""

from __future__ import annotations

import re
import string
import urllib.parse
from dataclasses import dataclass
from xml.etree import ElementTree

import yaml
from conftest import BASE, EXAMPLES, FLOWS, caller_params, sign
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from ivr.testing import TwimlSchema

# -- what the shipped flows offer ----------------------------------------------------------------

FLOW_STATES = {
    name.removesuffix(".yaml"): sorted(yaml.safe_load((FLOWS / name).read_text())["states"])
    for name in EXAMPLES
    if name.endswith(".yaml") and (FLOWS / name).exists()
}
ALL_STATES = sorted({s for states in FLOW_STATES.values() for s in states})
EVENTS = ("no_input", "no_recording", "screen", "screened", "wait")
STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")
# DESIGN: flow ids and state names. (Alphabets rather than from_regex: several times faster to draw.)
NAME = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=40)

# Caller input that would show if it were run as a template: (text sent, what running it gives).
TEMPLATES = (
    ("{{7*7}}", "49"),
    ("{{ 7 * 7 }}", "49"),
    ("{{ 1337 * 3 }}", "4011"),
    ("{% if true %}ran-as-template{% endif %}", "ran-as-template"),
    ("{{ config }}", "<Config"),
    ("{{ ''.__class__ }}", "<class"),
    ("{{ call }}", "{'"),
)
MARKUP = ("</Say>", "<Hangup/>", "&", "&amp;", "]]>", "<![CDATA[x]]>", "\"'<>", "<?xml version='1.0'?>", "\\")
# A traceback or a Python repr in an answer (unless the caller sent that very text).
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File (?:\"|&quot;).+?(?:\"|&quot;), line \d+|"
    r"(?:<|&lt;)[\w.]+ object at 0x[0-9a-fA-F]+|"
    r"\b\w+(?:Error|Exception)\(|\b(?:dict_keys|dict_items|defaultdict|MultiDict|ImmutableMultiDict)\("
)


# -- a request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """One request as sent: `params` travel as the form (POST) or the query (GET), raw bytes each."""

    route: str
    method: str
    path: str
    params: tuple[tuple[str, bytes], ...]
    signature: str = "good"  # good | bad | missing | other-url

    @property
    def encoded(self) -> str:
        """The parameters percent-encoded, as a form body or a query string."""
        return "&".join(f"{_quote(k.encode())}={_quote(v)}" for k, v in self.params)

    @property
    def url(self) -> str:
        """The path and query the request goes to (GET carries the parameters in it)."""
        if self.method == "GET" and self.params:
            return self.path + ("&" if "?" in self.path else "?") + self.encoded
        return self.path

    def form(self) -> MultiDict:
        """The form as the app reads it (werkzeug re-quotes bytes that are not UTF-8)."""
        if self.method == "GET":
            return MultiDict()
        return MultiDict(urllib.parse.parse_qsl(self.encoded, keep_blank_values=True, errors="werkzeug.url_quote"))

    def headers(self) -> dict[str, str]:
        if self.signature == "missing":
            return {}
        base = "https://other.example" if self.signature == "other-url" else BASE
        good = sign(base + self.url, self.form())
        return {"X-Twilio-Signature": good[::-1] if self.signature == "bad" else good}

    def texts(self) -> list[str]:
        """Everything the caller sent, decoded as the app decodes it (what an answer may echo)."""
        query = self.url.partition("?")[2]
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
        return [text for pair in [*pairs, *self.form().items(multi=True)] for text in pair] + [self.path]

    @property
    def must_refuse(self) -> bool:
        return self.signature != "good" and self.route != "/twilio/fallback"


def _quote(raw: bytes) -> str:
    return urllib.parse.quote_from_bytes(raw, safe="")


def send(client, webhook: Webhook):
    """Send the webhook through a Flask test client; the response."""
    body = webhook.encoded.encode() if webhook.method == "POST" else None
    return client.open(
        webhook.url,
        method=webhook.method,
        data=body,
        content_type="application/x-www-form-urlencoded" if body is not None else None,
        headers=webhook.headers(),
    )


# -- what any answer must be ---------------------------------------------------------------------


def problems(webhook: Webhook, status: int, body: bytes) -> list[str]:
    """Every broken promise of one answer (empty when the answer is right)."""
    if webhook.must_refuse:
        return [] if status == 403 else [f"{status} to a request with a {webhook.signature} signature (wanted 403)"]
    if status != 200:
        return [f"{status} (wanted 200 with TwiML)"]
    found: list[str] = []
    sent = webhook.texts()
    text = body.decode("utf-8", "replace")
    for leak in LEAKS.finditer(text):
        if not any(leak.group(0) in s for s in sent):
            found.append(f"a traceback or Python repr in the answer: {leak.group(0)!r}")
    for template, ran in TEMPLATES:
        if any(template in s for s in sent) and ran in text and not any(ran in s for s in sent):
            found.append(f"caller input {template!r} was run as a template ({ran!r} in the answer)")
    try:
        if webhook.route == "/sms/<flow>":
            root = ElementTree.fromstring(body)
            if root.tag != "Response" or [child.tag for child in root] != ["Message"]:
                found.append("messaging TwiML without exactly one Message")
        else:
            TwimlSchema.shared().check(body)
    except (AssertionError, ElementTree.ParseError, SyntaxError) as exc:  # lxml's XMLSyntaxError is a SyntaxError
        found.append(f"TwiML does not validate: {str(exc).splitlines()[0]}")
    return found


# -- strategies ----------------------------------------------------------------------------------


def _encoded(values: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return values.map(lambda s: s.encode("utf-8"))


def _sid(prefix: str) -> st.SearchStrategy[str]:
    return st.integers(0, 2**128 - 1).map(lambda n: f"{prefix}{n:032x}")


CALL_SID = st.one_of(
    _sid("CA"),
    st.text(max_size=60),
    st.just(""),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(200, 5_000)),
)
SPEECH = st.one_of(
    st.sampled_from([t for t, _ in TEMPLATES] + list(MARKUP)),
    st.lists(
        st.sampled_from([t for t, _ in TEMPLATES] + list(MARKUP) + ["sales", "billing", " ", "1"]), max_size=6
    ).map("".join),
    st.text(max_size=80),
)
DIGITS = st.one_of(st.text(alphabet="0123456789*#", max_size=12), st.text(max_size=20), SPEECH)
ANY = st.one_of(st.text(max_size=40), SPEECH, st.sampled_from(STATUSES + EVENTS))
# Parameters Twilio sends to one route or another: any of them may come to any route.
FIELDS = {
    "Digits": DIGITS,
    "SpeechResult": SPEECH,
    "Confidence": st.one_of(st.just("0.9"), st.text(max_size=8)),
    "CallStatus": st.one_of(st.sampled_from(STATUSES), st.text(max_size=12)),
    "DialCallStatus": st.one_of(st.sampled_from(("completed", "busy", "no-answer", "failed", "canceled")), ANY),
    "QueueResult": st.one_of(st.sampled_from(("bridged", "hangup", "leave", "error")), ANY),
    "AnsweredBy": st.one_of(st.sampled_from(("human", "machine_start", "fax", "unknown")), ANY),
    "RecordingSid": st.one_of(_sid("RE"), ANY),
    "RecordingUrl": st.one_of(st.just("https://api.twilio.com/2010-04-01/Recordings/RE1"), ANY),
    "RecordingDuration": st.one_of(st.integers(-5, 10_000).map(str), ANY),
    "TranscriptionText": SPEECH,
    "TranscriptionStatus": st.one_of(st.sampled_from(("completed", "failed")), ANY),
    "CallDuration": st.one_of(st.integers(0, 14_400).map(str), ANY),
    "ParentCallSid": CALL_SID,
    "Body": st.one_of(DIGITS, SPEECH),
    "MessageSid": st.one_of(_sid("SM"), ANY),
    "ErrorCode": st.one_of(st.just("11200"), ANY),
    "ErrorUrl": ANY,
}
# Hostile shapes: a value of raw bytes (often not UTF-8), one oversized, a duplicated key, a key dropped.
RAW = st.binary(max_size=40)
OVERSIZED = st.builds(lambda c, n: (c * n).encode("utf-8"), st.characters(codec="utf-8"), st.integers(1_000, 100_000))


ENCODED = {name: _encoded(values) for name, values in FIELDS.items()}
ODD_VALUE = st.one_of(_encoded(ANY), RAW)
ODD_KEY = st.text(min_size=1, max_size=20)
FIELD_NAMES = st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)


@st.composite
def parameters(draw) -> tuple[tuple[str, bytes], ...]:
    """A caller's parameter set, then mutated: fields of any route, dropped, duplicated, odd keys, odd bytes."""
    # Strategies are made once, above: making one per draw costs more than the draw.
    base = caller_params(draw(CALL_SID), status=draw(st.sampled_from(STATUSES)))
    pairs = [(k, v.encode("utf-8")) for k, v in base.items()]
    pairs += [(name, draw(ENCODED[name])) for name in draw(FIELD_NAMES)]
    index = st.integers(0, len(pairs) - 1)
    for _ in range(draw(st.integers(0, 3))):  # a key dropped
        pairs.pop(draw(index) % len(pairs))
    for _ in range(draw(st.integers(0, 2))):  # a key sent twice, with another value
        pairs.append((pairs[draw(index) % len(pairs)][0], draw(ODD_VALUE)))
    for _ in range(draw(st.integers(0, 2))):  # keys Twilio never sends
        pairs.append((draw(ODD_KEY), draw(ODD_VALUE)))
    if draw(st.integers(0, 9)) == 0:  # a value of raw, often non-UTF-8, bytes
        i = draw(index) % len(pairs)
        pairs[i] = (pairs[i][0], draw(RAW))
    if draw(st.integers(0, 19)) == 0:  # a value far larger than Twilio's
        i = draw(index) % len(pairs)
        pairs[i] = (pairs[i][0], draw(OVERSIZED))
    return tuple(pairs)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


FLOW = st.one_of(st.sampled_from(sorted(FLOW_STATES)), NAME)
STATE = st.one_of(st.sampled_from(ALL_STATES), NAME)
QUERY_VALUE = st.one_of(STATE, st.text(max_size=20))

# Each route Twilio calls: its name in counts, the methods it takes (DESIGN's URL table), its paths.
PATHS = {
    "/voice/<flow>": st.builds(
        lambda f, s: f"/voice/{f}" + (f"?state={_q(s)}" if s is not None else ""), FLOW, st.none() | QUERY_VALUE
    ),
    "/voice/<flow>/<state>": st.builds(lambda f, s: f"/voice/{f}/{s}", FLOW, STATE),
    "/voice/<flow>/<state>?event": st.builds(
        lambda f, s, e: f"/voice/{f}/{s}?event={_q(e)}", FLOW, STATE, st.one_of(st.sampled_from(EVENTS), ANY)
    ),
    "/twilio/status": st.just("/twilio/status"),
    "/twilio/recording": st.builds(
        lambda f, s: "/twilio/recording" + (f"?flow={_q(f)}&state={_q(s)}" if f is not None else ""),
        st.none() | FLOW,
        QUERY_VALUE,
    ),
    "/twilio/transcription": st.builds(
        lambda f, s: "/twilio/transcription" + (f"?flow={_q(f)}&state={_q(s)}" if f is not None else ""),
        st.none() | FLOW,
        QUERY_VALUE,
    ),
    "/twilio/fallback": st.just("/twilio/fallback"),
    "/sms/<flow>": st.builds(lambda f: f"/sms/{f}", FLOW),
}
ROUTES = tuple(PATHS)
# Every route takes GET too: Twilio lets a number's callbacks and texts be set to GET.
METHODS = dict.fromkeys(ROUTES, ("GET", "POST"))
SIGNATURES = st.sampled_from(("good",) * 12 + ("bad", "missing", "other-url"))


def webhooks(route: str, signatures: st.SearchStrategy[str] = SIGNATURES) -> st.SearchStrategy[Webhook]:
    """Requests to one route: any flow and state, any parameters, mostly signed right."""
    return st.builds(Webhook, st.just(route), st.sampled_from(METHODS[route]), PATHS[route], parameters(), signatures)


ANY_WEBHOOK = st.one_of(*(webhooks(route) for route in ROUTES))

# URLs under /voice/ that name no flow and state, or name one percent-encoded (issue 11 item 14).
ODD_VOICE_PATHS = st.one_of(
    st.sampled_from(("/voice/", "/voice//menu", "/voice/main//menu", "/voice/m%61in/menu", "/voice/main/men%75")),
    st.builds(lambda f, s: f"/voice/{f}/{s}", FLOW.map(lambda f: "".join(f"%{ord(c):02X}" for c in f)), STATE),
)


def odd_voice_webhooks() -> st.SearchStrategy[Webhook]:
    """Correctly signed requests to odd URLs under /voice/."""
    return st.builds(Webhook, st.just("/voice/<odd>"), st.sampled_from(("GET", "POST")), ODD_VOICE_PATHS, parameters())
