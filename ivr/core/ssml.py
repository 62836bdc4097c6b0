"""SSML in a say: the parts a flow writes (`- break: 500ms`, `- digits: "{{ pin }}"`), and the <Say>
they become, built only through the twilio library's SSML builders.

A part's text is data: a template's value becomes the text inside an element, never markup. What a
voice's engine cannot speak is not sent to it: basic voices and Google's Chirp 3: HD voices hear the
parts as plain text (digits and spelled words spaced out, as Twilio's basic voices read them), and
Polly, which has no currency reading, hears a currency amount as written (`check` warns on the rest).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

from twilio.twiml.voice_response import Say

from ivr.core.positions import Pos, Text
from ivr.core.templates import compile_text
from ivr.core.voices import engine_of, say_length_problem, ssml_problem

__all__ = [
    "CONTAINERS",
    "LEAVES",
    "SAY_AS",
    "Part",
    "build_say",
    "fitted",
    "length_problem",
    "part_texts",
    "say_content",
    "say_text",
    "shortened",
    "spoken_source",
    "walk",
]  # fmt: skip

# Leaf parts read as <say-as interpret-as=...>, per engine family (None: plain text there).
SAY_AS = {
    "digits": {"polly": "digits", "google": "characters"},
    "spell": {"polly": "characters", "google": "characters"},
    "number": {"polly": "cardinal", "google": "cardinal"},
    "ordinal": {"polly": "ordinal", "google": "ordinal"},
    "date": {"polly": "date", "google": "date"},
    "time": {"polly": "time", "google": "time"},
    "telephone": {"polly": "telephone", "google": "telephone"},
    "address": {"polly": "address", "google": None},
    "currency": {"polly": None, "google": "currency"},  # Polly has no currency: it reads "$12.50" well as text
}
LEAVES = (*SAY_AS, "phoneme", "sub")
# Parts that hold other parts: their SSML element.
CONTAINERS = {"emphasis": "emphasis", "prosody": "prosody", "sentence": "s", "paragraph": "p"}
# The one log line of the core: a rendered say cut to Twilio's limits is worth an author's attention, and
# the engine's effects are for what a call does, not for notes (the app's logging decides where it goes).
log = logging.getLogger(__name__)
_PUNCTUATION = re.compile(r"[.,!?;:)\]]")


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a say: plain text (kind "text"), a break, a leaf with text, or a container of parts."""

    kind: str
    pos: Pos
    text: Text | None = None
    children: tuple[Part, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()

    def attr(self, name: str) -> str | None:
        """An attribute as written (format, level, rate, ph, alias...), or None."""
        return dict(self.attrs).get(name)


def walk(parts) -> list[Part]:
    """Every part, containers before what they hold."""
    out = []
    for part in parts:
        out.append(part)
        out += walk(part.children)
    return out


def part_texts(parts) -> list[Text]:
    """The texts of the parts, each with its own position and template."""
    return [p.text for p in walk(parts) if p.text is not None]


def spoken_source(parts) -> str:
    """The words the parts say, as written (templates left in place; a sub's alias for its text)."""
    return _joined([_source(p) for p in parts])


def say_text(parts, pos: Pos, path: str) -> Text:
    """The Text of a say written as parts: its words, templates in place (compiled as one), for what reads
    a say's words (word counts, announced keys, sizes); the parts' own texts keep their positions."""
    source = spoken_source(parts)
    template = compile_text(source) if any(t.template is not None for t in part_texts(parts)) else None
    return Text(source, pos, template, path)


def say_content(say: Say) -> tuple[str, str]:
    """A built <Say>'s words without SSML tags, and its content as serialised (tags included)."""
    element = say.xml()
    spoken = "".join(element.itertext())
    markup = ElementTree.tostring(element, encoding="unicode")
    markup = markup[markup.find(">") + 1 : markup.rfind("</")] if markup.endswith("</Say>") else ""
    return spoken, markup


def length_problem(voice: str | None, text: Text, parts=()) -> str | None:
    """Why a say without templates is over Twilio's limits for its voice (13521), or None."""
    if not parts:
        return say_length_problem(voice, text.source, text.source)
    return say_length_problem(voice, *say_content(build_say(parts, engine_of(voice), lambda t: t.source)))


def shortened(text: str, voice: str | None) -> str:
    """A rendered text cut to Twilio's limits for its voice: at the last sentence end that fits, else the
    last space, else anywhere."""
    if say_length_problem(voice, text, text) is None:
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", text)]
    spaces = [m.start() for m in re.finditer(r"\s", text)]
    for cuts in (ends, spaces, range(len(text))):
        best, low, high = None, 0, len(cuts) - 1
        while low <= high:  # a longer prefix never fits where a shorter one does not: search
            mid = (low + high) // 2
            if say_length_problem(voice, text[: cuts[mid]], text[: cuts[mid]]) is None:
                best, low = cuts[mid], mid + 1
            else:
                high = mid - 1
        if best:
            return text[:best].rstrip()
    return ""


def fitted(say: Say, prompt, voice: str | None, ctx, text_of, attrs: dict) -> Say:
    """A templated say as rendered, or, when its words made it longer than Twilio takes (13521: Twilio would
    not say it), its plain words cut at a sentence end, with a log line naming where it was written."""
    problem = say_length_problem(voice, *say_content(say))
    if problem is None:
        return say
    plain = build_say(prompt.parts, "basic", lambda t: text_of(t, ctx)).value if prompt.parts else say.value
    short = shortened(plain, voice)
    log.warning("%s: %s: %s; said up to a sentence end (%d of %d characters)", prompt.pos, prompt.text.path or "say",
                problem, len(short), len(plain))  # fmt: skip
    return Say(short, **attrs)


def _source(part: Part) -> str:
    if part.kind == "break":
        return ""
    if part.kind == "sub":
        return part.attr("alias") or ""
    if part.children:
        return spoken_source(part.children)
    return part.text.source if part.text else ""


def _joined(pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        if piece:
            out += piece if not out or _PUNCTUATION.match(piece) else " " + piece
    return out


def build_say(parts, engine: str | None, text_of: Callable[[Text], str], **attrs) -> Say:
    """The <Say> of a say's parts for a voice's engine; `text_of` gives a text's words (its template rendered)."""
    say = Say(**attrs)
    family = (engine or "polly").split("-")[0]
    if family not in ("polly", "google") or engine == "google-chirp3-hd":
        say.value = _joined([_plain(p, text_of) for p in parts])
        return say
    _fill(say, _speakable(parts, engine), family, text_of)
    return say


def _speakable(parts, engine: str | None) -> list[Part]:
    # Polly errors on an element its engine lacks: an emphasis there is its words alone, a pitch is left out.
    out = []
    for part in parts:
        attrs = part.attrs
        if part.kind == "prosody" and ssml_problem(engine, "prosody", {"pitch": part.attr("pitch")}):
            attrs = tuple(a for a in attrs if a[0] != "pitch")
        if part.kind in CONTAINERS and (ssml_problem(engine, CONTAINERS[part.kind]) or (not attrs and part.attrs)):
            out += _speakable(part.children, engine)
            continue
        out.append(Part(part.kind, part.pos, part.text, tuple(_speakable(part.children, engine)), attrs))
    return out


def _plain(part: Part, text_of) -> str:
    # What a voice that takes no SSML hears: the words, digits and spelled words one character at a time.
    if part.kind == "break":
        return ""
    if part.kind == "sub":
        return part.attr("alias") or ""
    if part.children:
        return _joined([_plain(p, text_of) for p in part.children])
    words = text_of(part.text)
    return " ".join(words.replace(" ", "")) if part.kind in ("digits", "spell") else words


def _fill(element, parts, family: str, text_of) -> None:
    pending, emitted = "", False  # twilio's builder keeps one text per position: join consecutive strings first
    for part in parts:
        words = "" if part.kind in ("break", *CONTAINERS) else text_of(part.text)
        if part.kind == "text" or (part.kind in SAY_AS and SAY_AS[part.kind][family] is None):
            if words:
                pending += words if not emitted or _PUNCTUATION.match(words) else " " + words
                emitted = True
            continue
        pending += " " if emitted and part.kind != "break" else ""
        if pending:
            element.append(pending)
            pending = ""
        _element(element, part, words, family, text_of)
        emitted = True
    if pending:
        element.append(pending)


def _element(parent, part: Part, words: str, family: str, text_of) -> None:
    kind = part.kind
    if kind == "break":
        parent.break_(time=part.attr("time"), strength=part.attr("strength"))
    elif kind in SAY_AS:
        parent.say_as(words, interpret_as=SAY_AS[kind][family], format=part.attr("format"))
    elif kind == "phoneme":
        parent.phoneme(words, alphabet=part.attr("alphabet"), ph=part.attr("ph"))
    elif kind == "sub":
        parent.sub(words, alias=part.attr("alias"))
    else:
        tag = CONTAINERS[kind]
        attrs = {"level": part.attr("level")} if kind == "emphasis" else {}
        if kind == "prosody":
            attrs = {k: part.attr(k) for k in ("rate", "pitch", "volume")}
        # The loader keeps paragraphs at the top of a say and sentences out of emphasis, where SSML allows them.
        child = getattr(parent, "break_" if tag == "break" else tag)(**attrs)
        _fill(child, part.children, family, text_of)
