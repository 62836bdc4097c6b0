"""Reading a state's action (gather, record, dial, enqueue, redirect, hangup, reject, run, http, pay, agent)."""

from __future__ import annotations

import re

import yaml

from ivr.core import flow as f
from ivr.core.hints import path_join
from ivr.core.languages import tag_problem
from ivr.core.loader.agent import AgentReader
from ivr.core.loader.enqueue import EnqueueReader
from ivr.core.loader.http import HttpReader
from ivr.core.loader.pay import PayReader
from ivr.core.loader.speech import SpeechReader
from ivr.core.templates import compile_text, is_template
from ivr.errors import TemplateProblem

__all__ = ["ActionReader"]

GATHER_KEYS = (
    "input",
    "num_digits",
    "timeout",
    "finish_on_key",
    "hints",
    "speech_timeout",
    "language",
    "speech_model",
    "min_confidence",
    "save_as",
    "pattern",
    "length",
    "speech",
    "barge_in",
    "action_on_empty_result",
)
RECORD_KEYS = ("max_length", "timeout", "finish_on_key", "play_beep", "transcribe", "trim")
DIAL_TARGET_KINDS = ("number", "client", "sip", "conference", "queue")
DIAL_KEYS = DIAL_TARGET_KINDS + ("caller_id", "timeout", "record", "time_limit", "hangup_on_star", "screen")
SCREEN_KEYS = ("say", "play", "pause", "prompts", "key", "timeout", "on_timeout", "accepted")
DIAL_RECORD = (
    "do-not-record",
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
)
REDIRECT_KEYS = ("state", "flow", "url")
KEYS_RE = re.compile(r"[0-9*#]\Z")


class ActionReader(SpeechReader, HttpReader, PayReader, AgentReader, EnqueueReader):
    """Reads actions and the typed scalars (names, texts, time zones) that states share."""

    def action(self, kind: str, node: yaml.Node, path: str):
        """The action `kind` (gather, record, dial, ...) read from its node; None after an error."""
        pos = self.pos(node)
        if kind == "hangup":
            if self.boolean(node, path) is False:
                self.error(node, path, "hangup: false does nothing; remove the key")
            return f.Hangup(pos)
        if kind == "reject":
            if isinstance(node, yaml.ScalarNode) and node.value in ("busy", "rejected"):
                return f.Reject(node.value, pos)
            if isinstance(node, yaml.ScalarNode) and node.value == "true" and not node.style:
                return f.Reject("rejected", pos)
            self.error(node, path, "expected busy, rejected or true")
            return None
        if kind in ("gather", "record") and isinstance(node, yaml.ScalarNode) and node.value == "true":
            node = yaml.MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)
        if kind == "dial" and isinstance(node, yaml.ScalarNode):
            value = self.text(node, path)
            return f.Dial((f.DialTarget("number", value, pos),), None, None, None, None, None, pos) if value else None
        if kind == "run":
            name = self.name(node, path, "hook")
            return f.Run(name, pos) if name else None
        if kind == "enqueue" and isinstance(node, yaml.ScalarNode):
            value = self.text(node, path)
            return f.Enqueue(value, None, pos) if value else None
        items = self.mapping(node, path)
        if items is None:
            return None
        return getattr(self, f"_{kind}")(items, path, pos, node)

    def _gather(self, items, path, pos, node):
        self.known_keys(items, GATHER_KEYS, path)
        inputs: tuple[str, ...] = ()
        if "input" in items:
            value_node = items["input"][1]
            values = (
                self.sequence(value_node, path_join(path, "input"))
                if isinstance(value_node, yaml.SequenceNode)
                else [value_node]
            )
            words = [self.string(v, path_join(path, "input")) for v in values or ()]
            for word, v in zip(words, values or (), strict=False):
                if word is not None and word not in ("dtmf", "speech"):
                    self.error(v, path_join(path, "input"), f"expected dtmf or speech, got '{word}'")
            inputs = tuple(sorted({w for w in words if w in ("dtmf", "speech")}))
        finish = self._opt(items, "finish_on_key", path, lambda n, p: self.string(n, p, empty_ok=True))
        if finish not in (None, "") and not KEYS_RE.match(finish):
            self.error(
                items["finish_on_key"][1],
                path_join(path, "finish_on_key"),
                'expected one key: 0-9, * or #, or "" for none',
            )
        speech_timeout = None
        if "speech_timeout" in items:
            raw = self.string(items["speech_timeout"][1], path_join(path, "speech_timeout"))
            if raw is not None and raw != "auto" and not raw.isdigit():
                self.error(
                    items["speech_timeout"][1],
                    path_join(path, "speech_timeout"),
                    "expected auto or a whole number of seconds",
                )
            speech_timeout = raw
        save_as = self._opt(items, "save_as", path, self.variable)
        pattern = pattern_source = None
        if "pattern" in items:
            pattern_source = self.string(items["pattern"][1], path_join(path, "pattern"))
            if pattern_source is not None:
                try:
                    pattern = re.compile(pattern_source)
                except re.error as exc:
                    self.error(items["pattern"][1], path_join(path, "pattern"), f"not a regular expression: {exc}")
        length = self._opt(items, "length", path, self._length)
        for key in ("pattern", "length"):
            if key in items and "save_as" not in items:
                self.error(items[key][0], path_join(path, key), f"{key} checks collected input: add save_as: NAME")
        return f.Gather(
            input=inputs,
            num_digits=self._opt(items, "num_digits", path, lambda n, p: self.number(n, p, minimum=1, maximum=99)),
            timeout=self._opt(items, "timeout", path, lambda n, p: self.number(n, p, minimum=1, maximum=60)),
            finish_on_key=finish,
            hints=self._opt(items, "hints", path, self.string),
            speech_timeout=speech_timeout,
            language=self._opt(items, "language", path, self.language_tag),
            speech=self._gather_speech(items, path),
            min_confidence=self._opt(
                items, "min_confidence", path, lambda n, p: self.number(n, p, maximum=1, integer=False)
            ),
            pos=pos,
            save_as=save_as,
            pattern=pattern,
            pattern_source=pattern_source,
            length=length,
            barge_in=self.barge_in(items, path, inputs),
            action_on_empty_result=self._opt(items, "action_on_empty_result", path, self.boolean),
        )

    def _gather_speech(self, items, path):
        """`speech: {model, enhanced, profanity_filter}`, or its short form `speech_model: NAME`."""
        if "speech_model" in items and "speech" in items:
            self.error(
                items["speech_model"][0], path_join(path, "speech_model"), "give the model once: in speech.model"
            )
        if "speech" in items:
            return self.speech(items["speech"][1], path_join(path, "speech"), self.default_speech)
        if "speech_model" in items:
            return self.speech_model(items["speech_model"][1], path_join(path, "speech_model"), self.default_speech)
        return None

    def _length(self, node: yaml.Node, path: str) -> tuple[int, int] | None:
        """`length: 6` or `length: [4, 8]`: how many digits collected input may have."""
        if isinstance(node, yaml.SequenceNode):
            items = self.sequence(node, path) or []
            if len(items) != 2:
                self.error(node, path, "give one number, or [fewest, most]")
                return None
            low, high = (self.number(n, path, minimum=1, maximum=99) for n in items)
            if low is None or high is None:
                return None
            if low > high:
                self.error(node, path, f"fewest ({low}) is more than most ({high})")
                return None
            return (low, high)
        exact = self.number(node, path, minimum=1, maximum=99)
        return (exact, exact) if exact is not None else None

    def variable(self, node: yaml.Node, path: str) -> str | None:
        """A variable name a flow may set."""
        name = self.string(node, path)
        problem = None if name is None else f.variable_name_problem(name)
        if problem is not None:
            self.error(node, path, f"not a usable variable name ({problem})")
            return None
        return name

    def _record(self, items, path, pos, node):
        self.known_keys(items, RECORD_KEYS, path)
        finish = self._opt(items, "finish_on_key", path, lambda n, p: self.string(n, p, empty_ok=True))
        if finish and not all(KEYS_RE.match(ch) for ch in finish):
            self.error(items["finish_on_key"][1], path_join(path, "finish_on_key"), "expected keys among 0-9, * and #")
        return f.Record(
            max_length=self._opt(items, "max_length", path, lambda n, p: self.number(n, p, minimum=1, maximum=14400)),
            timeout=self._opt(items, "timeout", path, lambda n, p: self.number(n, p, minimum=0, maximum=600)),
            finish_on_key=finish,
            play_beep=self._opt(items, "play_beep", path, self.boolean),
            transcribe=self._opt(items, "transcribe", path, self.boolean),
            trim=self._opt(items, "trim", path, self.boolean),
            pos=pos,
        )

    def _dial(self, items, path, pos, node):
        self.known_keys(items, DIAL_KEYS, path)
        targets = []
        for kind in DIAL_TARGET_KINDS:
            if kind not in items:
                continue
            kind_path = path_join(path, kind)
            value_node = items[kind][1]
            many = isinstance(value_node, yaml.SequenceNode)
            if many and kind in ("conference", "queue"):
                self.error(value_node, kind_path, f"a dial joins one {kind}")
                continue
            for v in self.sequence(value_node, kind_path) if many else [value_node]:
                text = self.text(v, kind_path)
                if text:
                    targets.append(f.DialTarget(kind, text, self.pos(v)))
        kinds = {t.kind for t in targets}
        if not targets and not any(k in items for k in DIAL_TARGET_KINDS):
            self.error(node, path, "missing what to dial: number, client, sip, conference or queue")
        elif kinds & {"conference", "queue"} and len(targets) > 1:
            self.error(node, path, "a conference or queue is dialled alone, without other targets")
        record = None
        if "record" in items:
            rec_node = items["record"][1]
            if isinstance(rec_node, yaml.ScalarNode) and rec_node.value in ("true", "false") and not rec_node.style:
                record = "record-from-answer" if rec_node.value == "true" else "do-not-record"
            else:
                record = self.string(rec_node, path_join(path, "record"))
                if record is not None and record not in DIAL_RECORD:
                    self.error(
                        rec_node, path_join(path, "record"), "expected true, false or one of " + ", ".join(DIAL_RECORD)
                    )
        caller_id = self.text(items["caller_id"][1], path_join(path, "caller_id")) if "caller_id" in items else None
        return f.Dial(
            targets=tuple(targets),
            caller_id=caller_id,
            timeout=self._opt(items, "timeout", path, lambda n, p: self.number(n, p, minimum=5, maximum=600)),
            record=record,
            time_limit=self._opt(items, "time_limit", path, lambda n, p: self.number(n, p, minimum=1, maximum=14400)),
            hangup_on_star=self._opt(items, "hangup_on_star", path, self.boolean),
            pos=pos,
            screen=self._screen(items["screen"][1], path_join(path, "screen"), kinds) if "screen" in items else None,
        )

    def _screen(self, node: yaml.Node, path: str, kinds: set[str]) -> f.Screen | None:
        """`screen:` text to whisper, or {say/prompts, key, timeout}: the answering party must accept."""
        if kinds & {"conference", "queue"}:
            self.error(node, path, "screening applies to a number, client or sip address")
            return None
        if isinstance(node, yaml.ScalarNode):
            prompts = self.prompt_value(node, path, None, None)
            return f.Screen(prompts, "1", 5, self.pos(node)) if prompts else None
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, SCREEN_KEYS, path)
        prompts = self.prompts(items, path, None, None)
        if not prompts:
            self.error(node, path, "say what the answering party hears, e.g. say: Press 1 to accept this call")
        key = self._opt(items, "key", path, self.string) or "1"
        if not KEYS_RE.match(key) and key != f.ANY_KEY:
            self.error(items["key"][1], path_join(path, "key"), "expected one key: 0-9, * or #, or any")
        timeout = self._opt(items, "timeout", path, lambda n, p: self.number(n, p, minimum=1, maximum=60)) or 5
        # What the answering party hears after deciding: like a reprompt, text or a list of prompts.
        told = {k: self.prompt_value(items[k][1], path_join(path, k), None, None) if k in items else ()
                for k in ("on_timeout", "accepted")}  # fmt: skip
        return f.Screen(prompts, key, timeout, self.pos(node), **told)

    def _redirect(self, items, path, pos, node):
        self.known_keys(items, REDIRECT_KEYS, path)
        given = [k for k in REDIRECT_KEYS if k in items]
        if not given:
            self.error(node, path, "say where to: state, flow (optionally with state) or url")
            return None
        if "url" in items and len(given) > 1:
            self.error(node, path, "a redirect goes to a url, or to a flow and state, not both")
        state = self._opt(items, "state", path, lambda n, p: self.name(n, p, "state"))
        flow_id = self._opt(items, "flow", path, lambda n, p: self.name(n, p, "flow"))
        url = self.text(items["url"][1], path_join(path, "url"), url=True) if "url" in items else None
        return f.Redirect(state, flow_id, url, pos)

    # -- scalars -----------------------------------------------------------------------------

    def name(self, node: yaml.Node, path: str, what: str) -> str | None:
        """A state, hook or queue name matching [A-Za-z0-9_-]+; None after an error."""
        value = self.string(node, path)
        if value is not None and not f.NAME_RE.match(value):
            self.error(node, path, f"a {what} name may use only letters, digits, '_' and '-', got '{value}'")
            return None
        return value

    def text(self, node: yaml.Node, path: str, *, url: bool = False) -> f.Text | None:
        """A text, its template compiled; `url`: the text is a URL, so its template encodes what it substitutes."""
        value = self.string(node, path)
        if value is None:
            return None
        template = None
        if is_template(value):
            try:
                template = compile_text(value, url=url)
            except TemplateProblem as exc:
                self.error(node, path, str(exc))
                return None
        return f.Text(value, self.pos(node), template, path)

    def timezone(self, node: yaml.Node, path: str) -> str | None:
        """An IANA time zone name that this machine knows; None after an error."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        value = self.string(node, path)
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(node, path, f"unknown time zone '{value}' (use an IANA name such as America/New_York)")
            return None
        return value

    def language_tag(self, node: yaml.Node, path: str) -> str | None:
        """A language as Twilio takes it (en-US); a malformed one is an error (Twilio would refuse the document)."""
        value = self.string(node, path)
        if value is not None and (problem := tag_problem(value)):
            self.error(node, path, problem)
            return None
        return value

    def _opt(self, items: dict, key: str, path: str, read):
        """Read an optional key with `read(node, path)`; None when absent."""
        if key not in items:
            return None
        return read(items[key][1], path_join(path, key))
