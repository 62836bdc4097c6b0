"""Reading the TwiML an app answers, as Twilio reads it: the checks a document must pass (HTTP
status, size, XML, a <Response> root, Twilio's schema), where a verb's URLs lead, and what a prompt
sounds like to the caller."""

from __future__ import annotations

import functools
import re
import urllib.parse
from xml.etree import ElementTree

from ivr.core.voices import say_length_problem
from ivr.phone.records import CallError, Heard

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "MAX_BODY",
    "PROMPTS",
    "RECORDING_STARTED",
    "WAITING_HELP",
    "action_url",
    "document_warnings",
    "gathered_digits",
    "heard",
    "interrupted_by",
    "listens_for",
    "parse_answer",
    "said",
    "say_warnings",
    "schema_warning",
    "skipped",
    "starts_recording",
    "verb_method",
    "voice_url",
    "whole_number",
]

APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."
MAX_BODY = 64 * 1024  # Twilio refuses larger documents (error 11750)
PROMPTS = ("Say", "Play", "Pause")
RECORDING_STARTED = "[recording started]"  # the transcript's note for <Start><Recording>
_VOICE_PATH = re.compile(r"/voice/([A-Za-z0-9_-]+)(?:/([A-Za-z0-9_-]+))?/?$")
# Real TwiML the phone does not simulate: skipped with a notice, as an unknown verb would be.
_UNSIMULATED = frozenset({"Connect", "Echo", "Leave", "Refer", "Sms", "Start", "Stop"})


# What a caller can do while the call waits on each verb, for the phone's error messages.
WAITING_HELP = {
    "gather": "input to a <Gather> (use press, say or wait)",
    "record": "a recording (use record, record_nothing or hangup)",
    "dial": "the dialled party (use dial_result)",
    "enqueue": "the queue (use queue_result)",
    "pay": "payment details to <Pay> (use pay, press or hangup)",
    "agent": "an agent (use say, press or hangup)",
}


def parse_answer(method: str, url: str, status: int, body: str) -> ElementTree.Element | CallError:
    """The answer's <Response>, or the error Twilio reports when it cannot use the answer."""
    if status >= 400:
        return CallError(11217, f"{method} {url} answered HTTP {status}")
    if len(body.encode()) > MAX_BODY:
        return CallError(11750, f"{method} {url}: the document is over 64 kB")
    try:
        root = ElementTree.fromstring(body.encode())
    except ElementTree.ParseError as exc:
        return CallError(12100, f"{method} {url}: the answer is not XML ({exc})")
    if root.tag != "Response":
        return CallError(12100, f"{method} {url}: the root element is <{root.tag}>, not <Response>")
    return root


def schema_warning(url: str, body: str, schema_path: str | None) -> CallError | None:
    """Twilio's 12200 warning when the document fails the schema at `schema_path` (None without one)."""
    problem = _schema(schema_path)(body.encode()) if schema_path else None
    return CallError(12200, f"{url}: {problem}") if problem else None


@functools.cache
def _schema(path: str):
    """Loaded once per path: TwiML bytes -> why they fail the schema, or None."""
    from lxml import etree  # needed only when a schema is configured

    schema = etree.XMLSchema(etree.parse(path))

    def problems(body: bytes) -> str | None:
        if schema.validate(etree.fromstring(body)):
            return None
        return "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)

    return problems


def skipped(tag: str, url: str) -> CallError:
    """The notice for a verb the phone skips: Twilio's 12200 for what is no TwiML, 0 for what it does not simulate."""
    if tag in _UNSIMULATED:
        return CallError(0, f"{url}: <{tag}> is not simulated by the phone; skipped")
    return CallError(12200, f"{url}: <{tag}> is not a TwiML verb; skipped")


def starts_recording(verb: ElementTree.Element) -> bool:
    """Whether a verb is <Start><Recording>: the phone notes the start (it records nothing)."""
    return verb.tag == "Start" and [child.tag for child in verb] == ["Recording"]


def heard(verb: ElementTree.Element, flow: str | None, state: str | None, gather=None) -> Heard:
    """What a <Say>, <Play> or <Pause> sounds like, heard in `flow`/`state` (nested in `gather`, if given)."""
    cut_by = () if gather is None else interrupted_by(gather)
    if verb.tag == "Start":  # <Start><Recording>: nothing is heard; the transcript notes it
        return Heard("note", RECORDING_STARTED, None, None, 1, flow, state, cut_by)
    if verb.tag == "Pause":
        return Heard("pause", verb.get("length") or "1", None, None, 1, flow, state, cut_by)
    kind = verb.tag.lower()
    # SSML children are read as the caller hears them (a <sub> as its alias, a <break/> as nothing); spacing is not.
    text = said(verb) if kind == "say" else (verb.text or "").strip()
    loop = whole_number(verb.get("loop"), 1)
    return Heard(kind, text, verb.get("voice"), verb.get("language"), loop, flow, state, cut_by)


def interrupted_by(gather: ElementTree.Element) -> tuple[str, ...]:
    """What cuts a <Gather>'s nested prompts short: a key, if it listens for keys; speech, if it listens for
    speech and bargeIn is not "false"."""
    barge = gather.get("bargeIn") != "false"
    return tuple(k for k in ("dtmf", "speech") if listens_for(gather, k) and (k == "dtmf" or barge))


def said(say: ElementTree.Element) -> str:
    """The words of a <Say> as the caller hears them: SSML read (a <sub> as its alias), spacing normalised."""
    return " ".join(_spoken(say).split())


def _spoken(element: ElementTree.Element) -> str:
    words = element.text or ""
    for child in element:
        words += (child.get("alias") or "") if child.tag == "sub" else _spoken(child)
        words += child.tail or ""
    return words


def document_warnings(url: str, body: str, root: ElementTree.Element, schema_path: str | None) -> list[CallError]:
    """The warnings Twilio logs for a document it runs: the schema's 12200, each too long <Say>'s 13521."""
    schema = schema_warning(url, body, schema_path)
    return ([schema] if schema else []) + say_warnings(url, root)


def say_warnings(url: str, root: ElementTree.Element) -> list[CallError]:
    """Twilio's 13521 for each <Say> over its voice's limits (Twilio does not say it)."""
    out = []
    for say in root.iter("Say"):
        markup = ElementTree.tostring(say, encoding="unicode")
        markup = markup[markup.find(">") + 1 : markup.rfind("</")] if markup.endswith("</Say>") else ""
        if problem := say_length_problem(say.get("voice"), "".join(say.itertext()), markup):
            out.append(CallError(13521, f"{url}: {problem}"))
    return out


def listens_for(gather: ElementTree.Element, kind: str) -> bool:
    """Whether a <Gather> takes `kind` of input ('dtmf' or 'speech'); keys only, unless it says otherwise."""
    return kind in (gather.get("input") or "dtmf").split()


def gathered_digits(gather: ElementTree.Element, keys: str) -> tuple[str, str]:
    """The digits a <Gather> submits when `keys` are pressed, and the finish key that ended them ('' when
    numDigits or the last key did)."""
    finish = gather.get("finishOnKey", "#")
    wanted = whole_number(gather.get("numDigits"), 0)
    digits = ""
    for key in keys:
        if finish and key in finish:
            return digits, key
        digits += key
        if wanted and len(digits) >= wanted:
            break
    return digits, ""


def voice_url(url: str) -> tuple[str | None, str | None]:
    """Flow and state named by a URL of DESIGN's table (/voice/F[?state=S], /voice/F/S)."""
    parts = urllib.parse.urlsplit(url)
    match = _VOICE_PATH.search(parts.path)
    if match is None:
        return None, None
    flow, state = match.groups()
    if state is None:
        state = urllib.parse.parse_qs(parts.query).get("state", [None])[0]
    return flow, state


def action_url(document_url: str, verb: ElementTree.Element) -> str:
    """Where a verb reports: its action, relative to its document; without one, the document itself."""
    return urllib.parse.urljoin(document_url, verb.get("action") or document_url)


def verb_method(verb: ElementTree.Element) -> str:
    """The method a verb requests its URL with: GET only when it says so."""
    return "GET" if (verb.get("method") or "POST").upper() == "GET" else "POST"


def whole_number(value: str | None, default: int) -> int:
    """An attribute such as numDigits or loop as a number; `default` when it is missing or not one."""
    return int(value) if value and value.isdigit() else default
