"""Talking to an agent state as Twilio's ConversationRelay does, in-process or over a real socket.

    talk = Talk(app.extensions["ivr.relay"].open("main", "assistant", {"CallSid": SID, "From": A, "To": B}))
    talk = Talk(socket_to(server_url + "/relay/main/assistant", signature))      # a real WebSocket
    assert talk.say("Where is my order 12345?") == "It shipped yesterday."
    assert talk.handoff() == {"route": "resolved", "values": {}}

Both carry the same protocol messages; a `Talk` only needs `send(dict)` and `receive(timeout) -> dict | None`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace

from simple_websocket import Client, ConnectionClosed

from ivr.agent.conversation import Closed
from ivr.core import flow as f
from ivr.core.agent import Agent, AgentEnd, AgentTool
from ivr.core.templates import compile_text

POS = f.Pos("flows/main.yaml", 1, 1)
WAIT = 5.0  # seconds a test waits for the app's next message


def text(source: str) -> f.Text:
    """A flow text, compiled as the loader would when it holds a template."""
    return f.Text(source, POS, compile_text(source) if "{{" in source else None)


def make_agent(**changes) -> Agent:
    """The design's example agent: an order_status tool, ends resolved and operator (with a reason), 0 -> operator."""
    agent = Agent(
        pos=POS,
        instructions=text("You help {{ name }} with Acme orders. Be brief."),
        ends=(AgentEnd("resolved", "The caller's question is answered.", (), POS),
              AgentEnd("operator", "The caller wants a person.", (("reason", "Why, in a few words."),), POS)),
        tools=(AgentTool("order_status", "Look up an order's status by its five-digit number.", {
            "type": "object", "additionalProperties": False, "required": ["order"],
            "properties": {"order": {"type": "string", "pattern": "^[0-9]{5}$", "description": "The order"}}}, POS),),
        keys=(("0", "operator"),),
    )  # fmt: skip
    return replace(agent, **changes)


def with_agent(flow: f.Flow, state: str, agent: Agent) -> f.Flow:
    """`flow` with `state` (an existing state's copy) doing `agent` (until the loader reads `agent:`)."""
    model = next(iter(flow.states.values()))
    return replace(flow, states={**flow.states, state: replace(model, name=state, action=agent)})


class SocketConnection:
    """A real WebSocket client with the in-memory channel's interface."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def send(self, message: dict) -> None:
        self.client.send(json.dumps(message))

    def receive(self, timeout: float | None = None) -> dict | None:
        try:
            data = self.client.receive(timeout=timeout)
        except ConnectionClosed:
            raise Closed("the socket closed") from None
        return None if data is None else json.loads(data)

    def close(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # the app closed it first (after `end`)
            self.client.close()


def socket_to(url: str, signature: str | None = None) -> SocketConnection:
    """Connect to the relay at `url` (ws://...), sending `signature` as X-Twilio-Signature."""
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return SocketConnection(Client.connect(url, headers=headers))


class Talk:
    """Twilio's side of a conversation: setup, prompts, keys, interrupts; what the agent said back."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.received: list[dict] = []

    def setup(self, sid: str, **custom) -> None:
        self.connection.send({"type": "setup", "callSid": sid, "from": "+15551230000", "to": "+15559870000",
                              "customParameters": custom})  # fmt: skip

    def next(self, timeout: float = WAIT) -> dict:
        message = self.connection.receive(timeout)
        assert message is not None, f"nothing from the app within {timeout}s (so far: {self.received})"
        self.received.append(message)
        return message

    def reply(self) -> str:
        """The text of the agent's next reply (tokens up to `last`); stops early at `end`."""
        tokens = []
        while True:
            message = self.next()
            if message["type"] == "end":  # `handoff` finds it in `received`
                return "".join(tokens)
            assert message["type"] == "text", message
            tokens.append(message["token"])
            if message["last"]:
                return "".join(tokens)

    def say(self, words: str) -> str:
        """The caller says `words`; what the agent answers."""
        self.connection.send({"type": "prompt", "voicePrompt": words, "lang": "en-US", "last": True})
        return self.reply()

    def press(self, digit: str) -> None:
        self.connection.send({"type": "dtmf", "digit": digit})

    def handoff(self) -> dict:
        """The `end` message's handoffData, decoded (the messages before it are kept in `received`)."""
        for message in self.received:
            if message["type"] == "end":
                return json.loads(message["handoffData"])
        while True:
            message = self.next()
            if message["type"] == "end":
                return json.loads(message["handoffData"])
