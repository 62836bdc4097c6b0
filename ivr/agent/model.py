"""What a conversation asks of a language model, whatever serves it: a chat, streamed back as deltas.

A `Model` streams its reply to `messages` (OpenAI's chat format: role system/user/assistant/tool) given
`tools` (OpenAI's function tools: {"type": "function", "function": {name, description, parameters}}):
`Text` tokens as they come, then any `ToolCall`s, then `Done`. It raises `ModelError` when it fails;
the conversation bounds how long it waits for each delta. The built-in adapter for any OpenAI-compatible
chat completions API is `ivr.agent.openai.OpenAIModel`; `ScriptedModel` plays replies written in advance,
for tests and for replaying a recorded conversation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ivr.errors import ModelError  # raised by models; re-exported here, where models are written

__all__ = ["Delta", "Done", "Model", "ModelError", "ScriptedModel", "Text", "ToolCall", "Turn"]


@dataclass(frozen=True, slots=True)
class Text:
    """A piece of the reply's text, as streamed."""

    token: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model calls a tool (a flow's hook or HTTP step, or an end): `arguments` is its JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is complete."""


Delta = Text | ToolCall | Done


class Model(Protocol):
    """Anything that streams a chat reply."""

    def stream(self, messages: Sequence[dict], tools: Sequence[dict], *, timeout: float) -> Iterator[Delta]: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """One reply of a `ScriptedModel`: text (streamed a few characters at a time) and tool calls
    ((name, arguments as a dict) pairs)."""

    text: str = ""
    calls: tuple[tuple[str, dict], ...] = ()


@dataclass
class ScriptedModel:
    """Replies written in advance, one `Turn` per call of `stream` (tests, replay). It keeps what it was asked
    (`asked`: the messages and tools of each call) so that tests can check what the model saw."""

    turns: list[Turn]
    chunk: int = 4  # characters per streamed token
    asked: list[tuple[list[dict], list[dict]]] = field(default_factory=list)

    def stream(self, messages: Sequence[dict], tools: Sequence[dict], *, timeout: float) -> Iterator[Delta]:
        import json

        self.asked.append(([dict(m) for m in messages], [dict(t) for t in tools]))
        if not self.turns:
            raise ModelError("the scripted model has no reply left")
        turn = self.turns.pop(0)
        for i in range(0, len(turn.text), self.chunk):
            yield Text(turn.text[i : i + self.chunk])
        for n, (name, arguments) in enumerate(turn.calls):
            yield ToolCall(f"call_{len(self.asked)}_{n}", name, json.dumps(arguments))
        yield Done()
