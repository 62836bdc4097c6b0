"""The `agent:` action, as data: a conversation with a language model on Twilio's ConversationRelay, one state
of a flow, ending on one of the state's routes. No I/O here (the conversation runs in ivr.agent).

    assistant:
      agent:
        instructions: "You help {{ name }} with Acme orders. Be brief."
        welcome: Hi, this is Acme. How can I help?
        tools:
          order_status:
            description: Look up an order's status by its five-digit number.
            parameters: {order: {type: string, pattern: "^[0-9]{5}$", description: The order number}}
        ends:
          resolved: {description: The caller's question is answered.}
          operator: {description: The caller wants a person., values: {reason: Why, in a few words.}}
        keys: {"0": operator}
        limits: {turns: 20, seconds: 300, silence: 15}
        relay: {tts_provider: ElevenLabs, voice: ..., transcription_provider: Deepgram, interruptible: any}
      routes: {resolved: goodbye, operator: operator, limit: operator, error: apology}

The call leaves the state through one of `ends` (the model chose it, or a key press did), `limit` (turns,
seconds or silence ran out), `error` (the model or the socket failed), or `hangup` (the caller hung up).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.core import flow as f

__all__ = ["AGENT_OUTCOMES", "HANGUP_OUTCOME", "LIMIT_OUTCOME", "Agent", "AgentEnd", "AgentTool"]

LIMIT_OUTCOME = "limit"  # turns, seconds or silence ran out
HANGUP_OUTCOME = "hangup"  # the caller hung up mid-conversation (journaled; Twilio ignores the answer)
AGENT_OUTCOMES = (LIMIT_OUTCOME, f.ERROR_EVENT, HANGUP_OUTCOME)  # besides the agent's own ends


@dataclass(frozen=True, slots=True)
class AgentTool:
    """A tool the model may call: a registered hook, or a state of this flow with an `http:` action, by name;
    `parameters` is a JSON Schema object of its arguments (each one checked like caller input)."""

    name: str
    description: str
    parameters: dict  # {"type": "object", "properties": {...}, "required": [...], "additionalProperties": False}
    pos: f.Pos


@dataclass(frozen=True, slots=True)
class AgentEnd:
    """A route the model may end the conversation on: its description (what the model sees) and the values it
    hands back (name -> description), saved as variables `<save_as>.<name>` (strings, checked like speech)."""

    name: str
    description: str
    values: tuple[tuple[str, str], ...]
    pos: f.Pos


@dataclass(frozen=True, slots=True)
class Agent:
    """`agent:` a ConversationRelay conversation with the flow's model, ending on one of `ends`."""

    pos: f.Pos
    instructions: f.Text  # the system prompt, templated with the call's variables
    ends: tuple[AgentEnd, ...]
    tools: tuple[AgentTool, ...] = ()
    welcome: f.Text | None = None  # welcomeGreeting: what the caller hears first (TTS), templated
    keys: tuple[tuple[str, str], ...] = ()  # a key pressed -> an end's name (needs dtmfDetection)
    turns: int = 20  # caller prompts at most
    seconds: int = 600  # the conversation's length at most
    silence: int = 20  # seconds without a caller prompt at most
    model: str | None = None  # else IVR_AGENT_MODEL
    save_as: str | None = None  # the variable that keeps the chosen end's values
    relay: tuple[tuple[str, object], ...] = ()  # ConversationRelay attributes (twilio-python builder names)
