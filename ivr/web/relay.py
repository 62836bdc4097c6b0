"""The WebSocket of ConversationRelay: `/relay/<flow>/<state>`, one agent state's conversation per socket.

Served by the app itself (flask-sock on simple-websocket: werkzeug's server, and gunicorn's gthread workers,
where each open socket holds one of a worker's threads). The handshake is a GET that Twilio signs like a
webhook, over the `wss://` URL exactly as the TwiML gave it, without parameters: that URL is IVR_PUBLIC_URL
(https -> wss, http -> ws) + the path. Unsigned or forged handshakes get 403 and a log line; without a token,
in development, only local handshakes without proxy headers are served, as webhooks are. At most
IVR_AGENT_SOCKETS conversations run at once in a worker (sockets and in-process ones alike); beyond that,
503 and a log line.

The built-in phone cannot import this room: the app registers `app.extensions["ivr.relay"]`, an
`InProcessRelay` whose `open(flow, state, params)` runs the same conversation over an in-memory channel.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable

from flask import Blueprint, Flask, abort, current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from twilio.request_validator import SIGNATURE_HEADER

from ivr.agent.channel import Channel, pair
from ivr.agent.conversation import STALL, Closed, Conversation
from ivr.agent.model import Model, ScriptedModel, Turn
from ivr.agent.openai import model_from_settings
from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_relay import relay_message
from ivr.errors import ConfigError
from ivr.store import DEFAULT_TTL
from ivr.web.http import Form
from ivr.web.security import expected_signature, not_local, signed_url
from ivr.web.services import Services, services

__all__ = ["InProcessRelay", "init_app", "model_factory", "relay", "relay_url", "replay_conversation",
           "sockets_wanted"]  # fmt: skip

log = logging.getLogger("ivr.relay")
EXTENSION = "ivr.relay"  # app.extensions key of the InProcessRelay (the phone's way in)
DEFAULT_SOCKETS = 16

relay = Blueprint("relay", __name__)
sock = Sock()
MAX_MESSAGE = 64 * 1024  # bytes of one protocol message at most
SETUP_WAIT = 10.0  # seconds for Twilio's first message, the setup, once the socket is open


def init_app(app: Flask) -> None:
    """The relay's route, its cap on conversations, the model factory (unless a test set one), the phone's entry."""
    raw = app.config.get("IVR_AGENT_SOCKETS") or DEFAULT_SOCKETS
    try:
        cap = int(raw)
        if cap < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"IVR_AGENT_SOCKETS={raw!r}: give the number of conversations a worker may hold "
                          "at once (each holds one of its threads), such as 16") from None  # fmt: skip
    found = services(app)
    if found.agent_model is None:
        found.agent_model = model_factory(app.config)
    app.extensions[EXTENSION] = InProcessRelay(app, cap)
    # A prompt is what a caller said in one turn: a message past this is no prompt (simple-websocket closes it).
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": MAX_MESSAGE})
    app.register_blueprint(relay)


def sockets_wanted(app: Flask) -> int:
    """The conversations a worker of `app` may hold (IVR_AGENT_SOCKETS) when a loaded flow has an agent state, else 0:
    what the production config adds to a worker's threads."""
    relay_entry = app.extensions.get(EXTENSION)
    if relay_entry is None:
        return 0
    for flow in services(app).flows.flows.values():
        if any(isinstance(state.action, Agent) for state in flow.states.values()):
            return relay_entry.slots.cap
    return 0


def model_factory(settings) -> Callable[[Agent], Model | None]:
    """The model an agent state talks to: the OpenAI-compatible API of IVR_AGENT_BASE_URL (the state's model,
    else IVR_AGENT_MODEL), on the agents' shared connection pool; None without those settings (the conversation
    apologises and ends on error)."""

    def make(agent: Agent) -> Model | None:
        return model_from_settings(settings, agent.model)

    return make


def relay_url(public: str | None, path: str) -> str:
    """The WebSocket URL of `path` as the TwiML gives it: IVR_PUBLIC_URL with https -> wss, http -> ws."""
    base = (public or "").rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + path


class _Slots:
    """The conversations this worker holds, at most `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used, self._lock = cap, 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.cap:
                return False
            self.used += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.used -= 1


class InProcessRelay:
    """The conversation of an agent state over an in-memory channel, for the built-in phone and tests:

        connection = app.extensions["ivr.relay"].open("main", "assistant", {"CallSid": sid, "From": ..., "To": ...})
        connection.receive(5)  # the model's first text token, ...
        connection.send({"type": "prompt", "voicePrompt": "Where is my order?", "lang": "en-US", "last": True})

    `params` (a call's webhook parameters) become the `setup` message, sent first as Twilio would; without
    them the caller's side sends its own. The conversation runs on a thread of its own with the app's context.
    """

    def __init__(self, app: Flask, cap: int) -> None:
        self.app = app
        self.slots = _Slots(cap)

    def open(self, flow_id: str, state: str, params: dict | None = None) -> Channel:
        """Start the conversation of `flow_id`/`state`; the caller's end of its channel. LookupError when the
        state is not an agent state, RuntimeError when the worker holds all the conversations it may."""
        with self.app.app_context():
            flow, agent = find_agent(services(self.app), flow_id, state)
        if not self.slots.take():
            raise RuntimeError(f"{self.slots.cap} conversations are running (IVR_AGENT_SOCKETS)")
        caller, server = pair()
        if params is not None:
            caller.send({"type": "setup", "callSid": params.get("CallSid", ""), "from": params.get("From", ""),
                         "to": params.get("To", ""),
                         "customParameters": dict(params.get("customParameters") or {})})  # fmt: skip

        def run() -> None:
            try:
                with self.app.app_context():
                    found = services(self.app)
                    at, agent_at, receive = versioned(found, flow, agent, state, server.receive)
                    new_conversation(found, at, agent_at, state, server.send).run(receive)
            except Exception:
                log.exception("flow=%s state=%s: the in-process conversation failed", flow_id, state)
            finally:
                server.close()
                self.slots.give_back()

        threading.Thread(target=run, daemon=True, name=f"ivr-relay-{flow_id}-{state}").start()
        return caller


REPLAY_WAIT = 10.0  # seconds a replayed conversation may take to answer one recorded prompt
_QUIET = 0.2  # seconds without a message after a reply before the next recorded prompt goes


def replay_conversation(app: Flask, flow_id: str, state: str, params: dict, recorded: dict) -> dict | None:
    """Talk a recorded conversation again (replay): the caller's prompts and keys as recorded, to a ScriptedModel
    that replies as the model did, its tools answered with their recorded results (no live hook runs). What the
    conversation is now: its summary (None when the state is no longer an agent state)."""
    found = services(app)
    turns = [Turn(str(reply.get("text") or ""), tuple((name, args) for name, args in reply.get("calls") or ()))
             for reply in recorded.get("model") or ()]  # fmt: skip
    found.agent_model = lambda agent: ScriptedModel(turns)
    found.hooks.replaying = [{k: tool.get(k) for k in ("outcome", "vars", "error")}
                             for tool in recorded.get("tools") or () if tool.get("outcome") != "refused"]  # fmt: skip
    found.store.update(params.get("CallSid", ""), _without_summary, DEFAULT_TTL)  # an earlier visit's
    try:
        connection = app.extensions[EXTENSION].open(flow_id, state, params)
    except (LookupError, RuntimeError):
        return None
    try:
        for said in recorded.get("transcript") or ():
            if "caller" in said:
                connection.send({"type": "prompt", "voicePrompt": said["caller"], "lang": "en-US", "last": True})
            elif "key" in said:
                connection.send({"type": "dtmf", "digit": said["key"]})
            else:
                continue
            if _ended(connection, REPLAY_WAIT):
                break
        else:  # the recorded caller said nothing more: hang up as they did, unless it ends by itself
            _ended(connection, _QUIET)
    except Closed:
        pass
    finally:
        connection.close()
    for _ in range(100):  # the conversation keeps its summary as it stops, on its own thread
        if (summary := _summary(found, params, state)) is not None:
            return summary
        time.sleep(0.02)
    return None


def _ended(connection: Channel, wait: float) -> bool:
    """Read the conversation's answer until it is quiet (False) or it ends (True)."""
    timeout = wait
    while True:
        message = connection.receive(timeout)
        if message is None:
            return False
        if message.get("type") == "end":
            return True
        if message.get("type") == "text":
            timeout = _QUIET if message.get("last") else wait


def _without_summary(session: dict | None) -> dict | None:
    if session is not None:
        session.pop("agent", None)
    return session


def _summary(found: Services, params: dict, state: str) -> dict | None:
    summary = (found.store.get(params.get("CallSid", "")) or {}).get("agent")
    return summary if isinstance(summary, dict) and summary.get("state") == state else None


def find_agent(found: Services, flow_id: str, state: str) -> tuple[f.Flow, Agent]:
    """The flow and the agent of `flow_id`/`state`; LookupError when there is no such agent state."""
    flow = found.flows.flows.get(flow_id)
    action = getattr(flow.states.get(state), "action", None) if flow is not None else None
    if not isinstance(action, Agent):
        raise LookupError(f"{flow_id}/{state} is not an agent state")
    return flow, action


def new_conversation(found: Services, flow: f.Flow, agent: Agent, state: str, send) -> Conversation:
    """A conversation of `agent` with the app's model, hooks and store."""
    model = found.agent_model(agent) if found.agent_model is not None else None
    stall = float(current_app.config.get("IVR_AGENT_STALL") or STALL)
    return Conversation(agent, flow_id=flow.id, state=state, model=model, runner=found.hooks, store=found.store,
                        send=send, flow=flow, stall=stall)  # fmt: skip


# -- the socket ---------------------------------------------------------------------------------


@relay.before_request
def _handshake() -> None:
    """Before the upgrade: a signed (or, without a token, local) handshake, an agent state, a free slot."""
    _check_signature()
    try:
        g.relay_agent = find_agent(services(), request.view_args["flow_id"], request.view_args["state"])
    except (LookupError, KeyError, TypeError):
        log.warning("refused WebSocket %s: no such agent state", request.path)
        abort(404)
    slots = current_app.extensions[EXTENSION].slots
    if not slots.take():
        log.warning("refused WebSocket %s: this worker holds %d conversations already (IVR_AGENT_SOCKETS); "
                    "raise IVR_AGENT_SOCKETS, or add workers", request.path, slots.cap)  # fmt: skip
        abort(503)
    g.relay_slot = True


@relay.teardown_request
def _release(_exc) -> None:
    if g.pop("relay_slot", False):
        current_app.extensions[EXTENSION].slots.give_back()


def _check_signature() -> None:
    """403 unless Twilio signed the handshake over the wss:// URL (no parameters), or, without a token, local."""
    found = services()
    if found.validator is None:
        why = not_local()
        if why:
            log.warning("refused WebSocket %s from %s: no TWILIO_AUTH_TOKEN is set, so only local handshakes "
                        "without proxy headers are served (%s)", request.path, request.remote_addr, why)  # fmt: skip
            abort(403)
        return
    url = _signed_relay_url()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    expected = expected_signature(found.validator.token, url, Form())
    if not signature or not (hmac.compare_digest(expected, signature) or found.validator.validate(url, {}, signature)):
        log.warning("refused WebSocket %s: %s X-Twilio-Signature for URL %s (checked with TWILIO_AUTH_TOKEN). If "
                    "the TwiML names another URL, set IVR_PUBLIC_URL to its base.", request.path,
                    "invalid" if signature else "missing", url)  # fmt: skip
        abort(403)


def _signed_relay_url() -> str:
    """The handshake's URL as the TwiML wrote it: ws(s)://, path only (IVR_PUBLIC_URL's base when set)."""
    url = signed_url().partition("?")[0]
    return relay_url(url, "")


@sock.route("/relay/<flow_id>/<state>", bp=relay)
def conversation(ws, flow_id: str, state: str) -> None:
    """One ConversationRelay session: the protocol's JSON messages both ways until the conversation ends."""
    flow, agent = g.relay_agent

    def send(message: dict) -> None:
        try:
            ws.send(json.dumps(message))
        except ConnectionClosed:
            raise Closed("the socket closed") from None

    def receive(timeout: float) -> dict | None:
        try:
            data = ws.receive(timeout=timeout)
        except ConnectionClosed:
            raise Closed("the socket closed") from None
        return None if data is None else relay_message(data)

    found = services()
    flow, agent, receive = versioned(found, flow, agent, state, receive)
    new_conversation(found, flow, agent, state, send).run(receive)


def versioned(found: Services, flow: f.Flow, agent: Agent, state: str, receive):
    """The flow and agent of the version the call's document came from (the setup's `version` parameter, the
    flow's content hash when it rendered the TwiML), when the registry still has it: an edit made since does not
    change a conversation under way. `receive` is given back with the setup it read first still to come."""
    first = receive(SETUP_WAIT)
    version = str(((first or {}).get("customParameters") or {}).get("version") or "")
    if version and version != flow.content_hash:
        try:
            older = found.flows.engine(flow.id, version).flow
        except Exception:  # an unknown flow version: the loaded one
            older = flow
        action = getattr(older.states.get(state), "action", None)
        if older.content_hash == version and isinstance(action, Agent):
            flow, agent = older, action
    held = [first] if first is not None else []

    def again(timeout: float) -> dict | None:
        return held.pop(0) if held else receive(timeout)

    return flow, agent, again
