"""Reading a say written as a list of parts: plain text, and one-key mappings for SSML (`- break: 500ms`,
`- digits: "{{ pin }}"`, `- prosody: {text: ..., rate: slow}`). Every mistake has its position and a
did-you-mean, as the rest of the loader's."""

from __future__ import annotations

import re

import yaml

from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.actions import ActionReader
from ivr.core.ssml import CONTAINERS, LEAVES, Part

__all__ = ["PART_KINDS", "SsmlReader"]

PART_KINDS = ("break", *LEAVES, *CONTAINERS)
BREAK_STRENGTHS = ("none", "x-weak", "weak", "medium", "strong", "x-strong")
_BREAK_TIME = re.compile(r"(\d+(?:\.\d+)?)(ms|s)\Z")
MAX_BREAK_MS = 10_000  # Polly's longest break; use a pause prompt for longer silences
DATE_FORMATS = ("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y", "yyyymmdd")
EMPHASIS_LEVELS = ("strong", "moderate", "reduced", "none")
ALPHABETS = ("ipa", "x-sampa")
_PROSODY = {
    "rate": (("x-slow", "slow", "medium", "fast", "x-fast", "default"), re.compile(r"\d{1,3}%\Z"),
             "a word (x-slow, slow, medium, fast, x-fast) or a percentage from 20% to 200%"),
    "pitch": (("x-low", "low", "medium", "high", "x-high", "default"), re.compile(r"[+-]\d{1,2}(\.\d+)?%\Z"),
              "a word (x-low, low, medium, high, x-high) or a change such as +10% or -5%"),
    "volume": (("silent", "x-soft", "soft", "medium", "loud", "x-loud", "default"),
               re.compile(r"[+-]\d{1,2}(\.\d+)?dB\Z"),
               "a word (x-soft, soft, medium, loud, x-loud) or a change such as +6dB"),
}  # fmt: skip
# The keys each part's long form takes besides `text`, and those it needs.
_KEYS = {"date": ("format",), "phoneme": ("ph", "alphabet"), "sub": ("alias",), "emphasis": ("level",),
         "prosody": tuple(_PROSODY)}  # fmt: skip
_NEEDS = {"phoneme": ("ph",), "sub": ("alias",)}


class SsmlReader(ActionReader):
    """Reads a say's parts; the prompt reader builds on it."""

    def parts(self, node: yaml.Node, path: str, within: str | None = None) -> tuple[Part, ...] | None:
        """A list of parts; None after an error (every error reported)."""
        items = self.sequence(node, path)
        if items is None:
            return None
        if not items:
            self.error(node, path, "must not be empty: give the text to say")
            return None
        out, ok = [], True
        for i, item in enumerate(items):
            part = self.part(item, path_join(path, i), within)
            ok = ok and part is not None
            out.append(part)
        return tuple(out) if ok else None

    def part(self, node: yaml.Node, path: str, within: str | None = None) -> Part | None:
        """One part: text, or a one-key mapping naming its kind."""
        if isinstance(node, yaml.ScalarNode):
            text = self.text(node, path)
            return Part("text", self.pos(node), text) if text else None
        entry = self.mapping(node, path)
        if entry is None:
            return None
        if len(entry) != 1:
            self.error(node, path, "each part is text or a mapping with one key, e.g. - break: 500ms")
            return None
        [(kind, (key_node, value))] = entry.items()
        path = path_join(path, kind)
        if kind not in PART_KINDS:
            hint = did_you_mean(kind, PART_KINDS) or f" (parts: {', '.join(PART_KINDS)})"
            self.error(key_node, path, f"unknown part '{kind}'{hint}")
            return None
        if kind in ("sentence", "paragraph") and within not in (None, "paragraph" if kind == "sentence" else None):
            where = "at the top of a say or in a paragraph" if kind == "sentence" else "at the top of a say"
            self.error(key_node, path, f"a {kind} goes {where}")
            return None
        if kind == "break":
            return self._break(value, path)
        items = {"text": (key_node, value)}
        if isinstance(value, yaml.MappingNode):
            items = self.mapping(value, path)
            if items is None:
                return None
            self.known_keys(items, ("text", *_KEYS.get(kind, ())), path)
            for needed in ("text", *_NEEDS.get(kind, ())):
                if needed not in items:
                    self.error(value, path, f"missing key: {needed}")
                    return None
        elif kind in _NEEDS:
            self.error(value, path, f"{kind} takes a mapping: {{text: ..., {', '.join(_NEEDS[kind])}: ...}}")
            return None
        attrs = self._attrs(kind, items, path)
        text_node, text_path = items["text"][1], path_join(path, "text") if value is not items["text"][1] else path
        if kind in CONTAINERS:
            if isinstance(text_node, yaml.SequenceNode):
                children = self.parts(text_node, text_path, kind)
            else:
                child = self.part(text_node, text_path, kind) if isinstance(text_node, yaml.ScalarNode) else None
                if not isinstance(text_node, yaml.ScalarNode):
                    self.error(text_node, text_path, "expected text or a list of parts")
                children = (child,) if child else None
            if children is None or attrs is None:
                return None
            if kind == "prosody" and not attrs:
                self.error(value, path, "prosody needs at least one of rate, pitch or volume")
                return None
            return Part(kind, self.pos(node), None, children, attrs)
        text = self.text(text_node, text_path)
        return Part(kind, self.pos(node), text, (), attrs) if text and attrs is not None else None

    def _break(self, node: yaml.Node, path: str) -> Part | None:
        value = self.string(node, path)
        if value is None:
            return None
        if value in BREAK_STRENGTHS:
            return Part("break", self.pos(node), attrs=(("strength", value),))
        match = _BREAK_TIME.match(value)
        if match and float(match.group(1)) * (1 if match.group(2) == "ms" else 1000) <= MAX_BREAK_MS:
            return Part("break", self.pos(node), attrs=(("time", value),))
        if match:
            self.error(node, path, f"a break is at most 10s, got '{value}' (use a pause prompt for longer silences)")
            return None
        hint = did_you_mean(value, BREAK_STRENGTHS)
        self.error(node, path, f"a break takes a time such as 500ms or 2s, or a strength ({', '.join(BREAK_STRENGTHS)})"
                   f", got '{value}'{hint}")  # fmt: skip
        return None

    def _attrs(self, kind: str, items: dict, path: str) -> tuple | None:
        attrs, ok = [], True
        for key in _KEYS.get(kind, ()):
            if key not in items:
                continue
            node, key_path = items[key][1], path_join(path, key)
            value = self.string(node, key_path)
            problem = None if value is None else _attr_problem(key, value)
            if value is None or problem:
                if problem:
                    self.error(node, key_path, problem)
                ok = False
                continue
            attrs.append((key, value))
        if kind == "phoneme" and ok and "alphabet" not in items:
            attrs.append(("alphabet", "ipa"))
        return tuple(sorted(attrs)) if ok else None


def _attr_problem(key: str, value: str) -> str | None:
    """Why an attribute's value is not one SSML takes, with a did-you-mean; None when it is."""
    words, pattern, what = {
        "format": (DATE_FORMATS, None, f"one of {', '.join(DATE_FORMATS)}"),
        "level": (EMPHASIS_LEVELS, None, f"one of {', '.join(EMPHASIS_LEVELS)}"),
        "alphabet": (ALPHABETS, None, "ipa or x-sampa"),
        "ph": ((), re.compile(r".+", re.S), "the phonetic symbols"),
        "alias": ((), re.compile(r".+", re.S), "the words to say instead"),
    }.get(key) or _PROSODY[key]
    if value in words or (pattern is not None and pattern.match(value)):
        if key == "rate" and value.endswith("%") and not 20 <= int(value[:-1]) <= 200:
            return f"{key} must be {what}, got '{value}'"
        return None
    return f"{key} must be {what}, got '{value}'{did_you_mean(value, words)}"
