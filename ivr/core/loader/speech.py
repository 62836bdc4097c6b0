"""Reading speech recognition settings (`defaults.speech`, `gather.speech`, `gather.speech_model`) and
the barge-in keys (`gather.barge_in`, a prompt's `barge_in: false`)."""

from __future__ import annotations

import yaml

from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader
from ivr.core.speech import ENHANCED_MODEL, MODELS, Speech, is_variant, resolve

__all__ = ["SpeechReader"]

SPEECH_KEYS = ("model", "enhanced", "profanity_filter")


class SpeechReader(Reader):
    """Reads speech settings; the flow's (`defaults.speech`) are kept to check each gather's against."""

    default_speech: Speech | None = None  # set when `defaults:` is read, before the states

    def flow_speech(self, node: yaml.Node, path: str) -> Speech | None:
        """`defaults.speech`: the settings of every speech gather of the flow."""
        speech = self.speech(node, path, None)
        self.default_speech = speech
        return speech

    def speech(self, node: yaml.Node, path: str, outer: Speech | None) -> Speech | None:
        """A `speech:` mapping {model, enhanced, profanity_filter}, checked with the settings it refines."""
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, SPEECH_KEYS, path)
        model = self._model(items["model"][1], path_join(path, "model")) if "model" in items else None
        flags = {}
        for key in ("enhanced", "profanity_filter"):
            if key in items:
                flags[key] = self.boolean(items[key][1], path_join(path, key))
        speech = Speech(model=model, **flags)
        key = "enhanced" if "enhanced" in items else "model"
        self._check_enhanced(speech, outer, items[key][0] if key in items else node, path_join(path, key))
        return speech

    def speech_model(self, node: yaml.Node, path: str, outer: Speech | None) -> Speech | None:
        """`gather.speech_model: NAME`, the short form of `gather.speech: {model: NAME}`."""
        model = self._model(node, path)
        if model is None:
            return None
        speech = Speech(model=model)
        self._check_enhanced(speech, outer, node, path)
        return speech

    def _model(self, node: yaml.Node, path: str) -> str | None:
        name = self.string(node, path)
        if name is not None and name not in MODELS and not is_variant(name):
            known = ", ".join(MODELS)
            self.error(node, path, f"unknown speech model '{name}'{did_you_mean(name, MODELS)}; Twilio's are {known}")
            return None
        return name

    def _check_enhanced(self, speech: Speech, outer: Speech | None, node, path: str) -> None:
        """Twilio's `enhanced` works with phone_call only: refuse `enhanced: true` with any other model in force."""
        merged = resolve(outer, speech)
        if not merged.enhanced or merged.model == ENHANCED_MODEL:
            return
        where = "defaults.speech" if speech.enhanced is None else "here"
        message = (
            f"enhanced: true (set {where}) works only with model {ENHANCED_MODEL}, not {merged.model}:"
            f" set model: {ENHANCED_MODEL}, or enhanced: false"
        )
        self.error(node, path, message)

    def barge_in(self, items: dict, path: str, inputs: tuple[str, ...]) -> bool | None:
        """`gather.barge_in`: false keeps speech from cutting the nested prompts; keys always cut them."""
        if "barge_in" not in items:
            return None
        value = self.boolean(items["barge_in"][1], path_join(path, "barge_in"))
        if value is False and inputs and "speech" not in inputs:
            self.keys_only_barge_in(items["barge_in"][0], path_join(path, "barge_in"))
        return value

    def keys_only_barge_in(self, node, path: str) -> None:
        """`gather: {barge_in: false}` on a gather that listens for keys only (written so, or by default)."""
        message = (
            "barge_in concerns speech, and this gather listens for keys only (a key always interrupts);"
            " to play a prompt whole, write barge_in: false on the prompt"
        )
        self.error(node, path, message)

    def prompt_barge_in(self, entry: dict, path: str) -> bool:
        """A prompts-list item's `barge_in` (true unless written false)."""
        if "barge_in" not in entry:
            return True
        return self.boolean(entry["barge_in"][1], path_join(path, "barge_in")) is not False

    def barge_in_order(self, written: list, path: str) -> None:
        """Prompts written `barge_in: false` play before the <Gather>, so each must come before every
        interruptible one; `written`: (prompt, its key path, its barge_in key node or None) in order."""
        first_open = None
        for prompt, item_path, key_node in written:
            if prompt.barge_in:
                first_open = item_path if first_open is None else first_open
            elif first_open is not None:
                message = (
                    "a prompt with barge_in: false plays before the gather listens, so it must come before"
                    f" every prompt that can be interrupted: move it above {first_open}"
                )
                self.error(key_node, path_join(item_path, "barge_in"), message)
