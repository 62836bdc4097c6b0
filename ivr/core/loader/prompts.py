"""Reading what a caller hears: say, play and pause, alone or as a `prompts:` list."""

from __future__ import annotations

import re
from dataclasses import replace

import yaml

from ivr.core import flow as f
from ivr.core.flow import Pos
from ivr.core.hints import path_join
from ivr.core.languages import Msg
from ivr.core.loader.ssml import SsmlReader
from ivr.core.ssml import length_problem, say_text
from ivr.errors import TemplateProblem

__all__ = ["PromptReader"]

SAY_KEYS = ("text", "voice", "language", "loop", "barge_in")
PLAY_KEYS = ("url", "loop", "barge_in")
PAUSE_KEYS = ("length",)
KINDS = ("say", "play", "pause", "msg")
MSG_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")


class PromptReader(SsmlReader):
    """Reads prompts; the flow reader builds states on it."""

    offered: tuple[str, ...] = ()  # the languages the flow offers (set once its defaults are read)

    def prompts(self, items: dict, path: str, voice, language) -> tuple:
        """A state's prompts: single say/play/pause keys, or a `prompts:` list, in order."""
        singles = [k for k in KINDS if k in items]
        if "prompts" in items:
            for key in singles:
                self.error(items[key][0], path_join(path, key), "use either 'prompts' or single say/play/pause keys")
            return self.prompt_list(items["prompts"][1], path_join(path, "prompts"), voice, language)
        written = [(p, path_join(path, k), items[k][1]) for k in singles
                   if (p := self.prompt(k, items[k][1], path_join(path, k), voice, language))]  # fmt: skip
        self.barge_in_order(written, path)  # single keys play in the order say, play, pause, msg
        return tuple(p for p, _, _ in written)

    def prompt_list(self, node: yaml.Node, path: str, voice, language) -> tuple:
        """A `prompts:` list: each item one of say, play or pause."""
        out = []
        for item, item_path, entry in self.mappings(node, path):
            kinds = [k for k in entry if k in KINDS]
            if len(kinds) != 1 or set(entry) - {*kinds, "barge_in"}:
                self.error(item, item_path, "each prompt is one of say, play, pause or msg, e.g. - say: Hello")
                continue
            prompt = self.prompt(kinds[0], entry[kinds[0]][1], path_join(item_path, kinds[0]), voice, language)
            if prompt is not None:  # `barge_in: false` beside it: played whole, before the gather listens
                if not self.prompt_barge_in(entry, item_path):
                    prompt = replace(prompt, barge_in=False)
                out.append((prompt, item_path, entry["barge_in"][0] if "barge_in" in entry else None))
        self.barge_in_order(out, path)
        return tuple(p for p, _, _ in out)

    def prompt_value(self, node: yaml.Node, path: str, voice, language) -> tuple:
        """A reprompt or handler message: text to say, or a prompts list."""
        if isinstance(node, yaml.SequenceNode):
            return self.prompt_list(node, path, voice, language)
        if isinstance(node, yaml.MappingNode) and len(node.value) == 1 and node.value[0][0].value == "msg":
            one = self.msg(node.value[0][1], path_join(path, "msg"))  # {msg: ID}: a catalog's prompts
            return (one,) if one else ()
        say = self.prompt("say", node, path, voice, language)
        return (say,) if say else ()

    def prompt(self, kind: str, node: yaml.Node, path: str, voice, language):
        """One say, play, pause or msg prompt, short or long form; None after an error."""
        if kind == "msg":
            return self.msg(node, path)
        if kind == "say":
            parts = ()
            if isinstance(node, yaml.ScalarNode | yaml.SequenceNode):
                text, text_path = self._say_text(node, path), path
            else:
                items = self.mapping(node, path)
                if items is None:
                    return None
                self.known_keys(items, SAY_KEYS, path)
                if "text" not in items:
                    self.error(node, path, "missing key: text")
                    return None
                text_path = path_join(path, "text")
                text = self._say_text(items["text"][1], text_path)
                loop = self._opt(items, "loop", path, self._loop)
                if "voice" in items:  # "" drops the flow's default voice: Twilio's own default speaks
                    voice = self.string(items["voice"][1], path_join(path, "voice"), empty_ok=True)
                language = self._opt(items, "language", path, self.language_tag) or language
            if text is None:
                return None
            if self.offered and (isinstance(node, yaml.ScalarNode | yaml.SequenceNode) or "language" not in items):
                self.error(
                    node,
                    path,
                    f"this text is in one language, and the flow offers {', '.join(self.offered)}: write it in the"
                    " catalogs and say msg: ID, or give it a language: to speak it as written in every language",
                )
            text, parts = text if isinstance(text, tuple) else (text, ())
            if text.template is None and (problem := length_problem(voice, text, parts)):
                self.error(text.pos, text_path, f"{problem} (split it into several prompts)")
            loop = None if isinstance(node, yaml.ScalarNode | yaml.SequenceNode) else loop
            say = f.Say(text, voice, language, loop, self.pos(node), parts)
            return (
                say if isinstance(node, yaml.ScalarNode | yaml.SequenceNode) else self._own_barge_in(say, items, path)
            )
        if kind == "play":
            if isinstance(node, yaml.ScalarNode):
                url = self.text(node, path, url=True)
                return f.Play(url, None, self.pos(node)) if url else None
            items = self.mapping(node, path)
            if items is None:
                return None
            self.known_keys(items, PLAY_KEYS, path)
            if "url" not in items:
                self.error(node, path, "missing key: url")
                return None
            url = self.text(items["url"][1], path_join(path, "url"), url=True)
            play = f.Play(url, self._opt(items, "loop", path, self._loop), self.pos(node)) if url else None
            return self._own_barge_in(play, items, path) if play else None
        # pause
        if isinstance(node, yaml.MappingNode):
            items = self.mapping(node, path) or {}
            self.known_keys(items, PAUSE_KEYS, path)
            length = self._opt(items, "length", path, lambda n, p: self.number(n, p, minimum=1, maximum=600))
        else:
            length = self.number(node, path, minimum=1, maximum=600)
        return (
            f.Pause(length or 1, self.pos(node)) if length is not None or isinstance(node, yaml.MappingNode) else None
        )

    def msg(self, node: yaml.Node, path: str) -> Msg | None:
        """`msg: ID`: a catalog's prompts, in the call's language."""
        value = self.string(node, path)
        if value is None:
            return None
        if not MSG_ID.match(value):
            why = "a message id uses letters, digits, '_', '.' and '-', starting with a letter"
            self.error(node, path, f"{why}: '{value}'")
            return None
        if not self.offered:
            why = "msg: looks a prompt up in the catalogs of the languages the flow offers"
            self.error(node, path, f"{why}: list them in defaults.languages")
            return None
        return Msg(value, self.pos(node), path)

    def _say_text(self, node: yaml.Node, path: str):
        """A say's text: a Text, or (the Text of its words, its SSML parts) when written as a list of parts."""
        if not isinstance(node, yaml.SequenceNode):
            return self.text(node, path)
        parts = self.parts(node, path)
        if parts is None:
            return None
        try:
            return say_text(parts, self.pos(node), path), parts
        except TemplateProblem as exc:
            self.error(node, path, str(exc))
            return None

    def _own_barge_in(self, prompt, items: dict, path: str):
        """`say: {text: ..., barge_in: false}` (or play's): the prompt plays whole, before the gather listens."""
        return prompt if self.prompt_barge_in(items, path) else replace(prompt, barge_in=False)

    def _loop(self, node: yaml.Node, path: str) -> int | None:
        # Twilio repeats loop: 0 until the call ends: a caller could not get past it.
        if isinstance(node, yaml.ScalarNode) and node.value == "0" and not node.style:
            self.error(node, path, "loop: 0 repeats until the caller hangs up; give a count from 1 to 100")
            return None
        return self.number(node, path, minimum=1, maximum=100)

    def _builtin_say(self, text: str) -> f.Say:
        return f.Say(f.Text(text, Pos(self.file, 1, 1)), None, None, None, Pos(self.file, 1, 1))
