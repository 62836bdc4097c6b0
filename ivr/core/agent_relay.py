"""An agent state on Twilio's ConversationRelay: the TwiML that connects the call to the app's WebSocket, and
the outcome its `<Connect action>` request reports. No I/O here (the conversation runs in ivr.agent).

    <Connect action="/voice/F/S" method="POST">
      <ConversationRelay url="wss://HOST/PREFIX/relay/F/S" welcomeGreeting="..." dtmfDetection="true" ...>
        <Parameter name="version" value="CONTENT_HASH"/>
      </ConversationRelay>
    </Connect>
    <Redirect method="POST">/voice/F/S?event=error</Redirect>

Twilio requests the action when the session ends, however it ends; the Redirect after it is reached only if
Twilio went past <Connect> without requesting it, and is routed as the agent's error.
"""

from __future__ import annotations

import inspect
import json
import re

from twilio.twiml.voice_response import Connect, Redirect

from ivr.core import flow as f
from ivr.core.agent import HANGUP_OUTCOME, LIMIT_OUTCOME, Agent
from ivr.errors import WebhookError

__all__ = [
    "FAILED_SESSIONS",
    "MAX_VALUE_LENGTH",
    "RELAY_ATTRIBUTES",
    "RELAY_SET_BY_IVR",
    "agent_event",
    "agent_verbs",
    "handoff_values",
    "relay_message",
]

# What twilio-python's builder takes (`Connect.conversation_relay`): the names a flow's `relay:` may use.
RELAY_SET_BY_IVR = ("url", "welcome_greeting", "dtmf_detection")  # from the state's own keys
RELAY_ATTRIBUTES = tuple(
    name
    for name, p in inspect.signature(Connect.conversation_relay).parameters.items()
    if p.kind is p.POSITIONAL_OR_KEYWORD and name not in ("self", *RELAY_SET_BY_IVR)
)
# ConversationRelay's SessionStatus values that mean the session broke (the WebSocket failed, Twilio erred).
FAILED_SESSIONS = ("failed", "error")
MAX_VALUE_LENGTH = 200  # a value the model hands back: caller input, kept as short as speech
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def relay_message(data: str | bytes) -> dict:
    """One ConversationRelay message as received (either end of the socket): its JSON object, or
    `{"type": "unreadable"}` for anything that is not one."""
    try:
        message = json.loads(data)
    except ValueError:
        message = None
    return message if isinstance(message, dict) else {"type": "unreadable"}


def relay_value(value: object) -> str:
    """A `relay:` value as the attribute Twilio reads: booleans as true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def agent_verbs(action: Agent, urls, flow: f.Flow, state: str, text) -> list:
    """<Connect> with <ConversationRelay> (its welcome rendered by `text`), then the Redirect to the error event."""
    connect = Connect(action=urls.action(flow.id, state), method="POST")
    attrs = {name: relay_value(value) for name, value in action.relay}
    attrs.setdefault("language", flow.defaults.language)
    relay = connect.conversation_relay(
        url=urls.relay(flow.id, state),
        welcome_greeting=text(action.welcome),
        dtmf_detection="true" if action.keys else None,  # a key press ends the conversation on its route
        **attrs,
    )
    # The flow version the document came from: the socket runs that version's agent (a hot reload may follow).
    relay.parameter(name="version", value=flow.content_hash)
    return [connect, Redirect(urls.action(flow.id, state, f.ERROR_EVENT), method="POST")]


def agent_event(state: f.State, params: dict, event: str | None, session: dict) -> str:
    """The outcome of a conversation: hangup, error, or the route HandoffData names. save_as keeps every value
    the ends declare, those of the chosen end filled in (so a template reading one never fails after a limit)."""
    action: Agent = state.action
    if event not in (None, f.ERROR_EVENT):
        raise WebhookError(f"event '{event}' does not fit state '{state.name}'")
    outcome, values = _outcome(action, params, event)
    if action.save_as is not None:
        every = {name: "" for end in action.ends for name, _ in end.values}
        session["vars"][action.save_as] = {**every, **values}
    return outcome


# The most HandoffData read: an end names its route and a few values of at most 200 characters each.
MAX_HANDOFF = 64 * 1024


def _outcome(action: Agent, params: dict, event: str | None) -> tuple[str, dict]:
    if event is not None:
        return f.ERROR_EVENT, {}
    if params.get("CallStatus") == "completed":  # the caller hung up mid-conversation
        return HANGUP_OUTCOME, {}
    if params.get("SessionStatus", "").lower() in FAILED_SESSIONS:
        return f.ERROR_EVENT, {}
    data = params.get("HandoffData") or "null"
    if len(data) > MAX_HANDOFF:  # an end's values are a few short strings: anything this big is not ours
        return f.ERROR_EVENT, {}
    try:
        handoff = json.loads(data, strict=False)  # control characters are removed below
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return f.ERROR_EVENT, {}
    route = handoff.get("route") if isinstance(handoff, dict) else None
    end = next((e for e in action.ends if e.name == route), None)
    if end is None:
        return (route if route in (LIMIT_OUTCOME, f.ERROR_EVENT) else f.ERROR_EVENT), {}
    return end.name, handoff_values(end, handoff.get("values"))


def handoff_values(end, given) -> dict[str, str]:
    """The values an end declares, from what the model handed back: strings of at most MAX_VALUE_LENGTH
    characters without those XML forbids; one it left out is ""; one it made up is dropped."""
    given = given if isinstance(given, dict) else {}
    out = {}
    for name, _ in end.values:
        value = given.get(name)
        text = "" if value is None or isinstance(value, dict | list) else str(value)
        out[name] = _NOT_XML.sub("", text).strip()[:MAX_VALUE_LENGTH]
    return out
