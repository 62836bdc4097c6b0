"""Reading a run/http state's `filler:`: what the caller hears while its work is slow."""

from __future__ import annotations

import yaml

from ivr.core import flow as f
from ivr.core.filler import DEFAULT_AFTER, DEFAULT_DEADLINE, FILLER_KEYS, MAX_AFTER, MAX_DEADLINE, Filler
from ivr.core.hints import path_join
from ivr.core.loader.prompts import PromptReader

__all__ = ["FillerReader"]

_SHAPE = 'a filler is {say: "One moment." | play: URL, after: SECONDS, deadline: SECONDS}'


class FillerReader(PromptReader):
    """Reads `filler:`; the flow reader builds on it."""

    def filler(self, items: dict, path: str, action, voice, language) -> Filler | None:
        """A state's filler: one say or play, when it starts (`after`) and how long the work may take."""
        if "filler" not in items:
            return None
        key_node, node = items["filler"]
        path = path_join(path, "filler")
        if not isinstance(action, f.Run):
            self.error(key_node, path, "a filler is heard while a hook or HTTP step works: use it with run or http")
            return None
        entry = self.mapping(node, path)
        if entry is None:
            return None
        self.known_keys(entry, FILLER_KEYS, path)
        kinds = [k for k in ("say", "play", "msg") if k in entry]
        if len(kinds) != 1:
            self.error(node, path, f"{_SHAPE}: give one of say, play or msg")
            return None
        kind = kinds[0]
        prompt = self.prompt(kind, entry[kind][1], path_join(path, kind), voice, language)
        after = self._seconds(entry, "after", path, DEFAULT_AFTER, MAX_AFTER)
        deadline = self._seconds(entry, "deadline", path, DEFAULT_DEADLINE, MAX_DEADLINE)
        if prompt is None or after is None or deadline is None:
            return None
        text = prompt.text if isinstance(prompt, f.Say) else getattr(prompt, "url", None)  # msg: its catalogs'
        if text is not None and text.template is not None:
            self.error(text.pos, path_join(path, kind), "a filler is heard as written: it takes no {{ templates }}")
            return None
        if deadline <= after:
            self.error(entry["deadline"][1], path_join(path, "deadline"), f"must be more than after ({after:g} s)")
            return None
        return Filler(prompt, float(after), float(deadline), self.pos(node))

    def _seconds(self, entry: dict, key: str, path: str, default: float, maximum: float) -> float | None:
        if key not in entry:
            return default
        node: yaml.Node = entry[key][1]
        return self.number(node, path_join(path, key), minimum=0, maximum=maximum, integer=False)
