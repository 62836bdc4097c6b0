"""One ConversationRelay session: the protocol, the model, the tools and the limits, whatever carries it.

    conversation = Conversation(agent, flow_id="main", state="assistant", model=model, runner=runner,
                                store=store, send=socket_send)
    outcome = conversation.run(receive)     # receive(timeout) -> dict | None; raises Closed when gone

Twilio's messages come in as dicts (setup, prompt, dtmf, interrupt, error); ours go out through `send`
(text tokens as the model streams them, then `end` with handoffData: JSON {"route", "values"}). The model
streams on a thread of its own, so that between its deltas the conversation sees the caller: an interrupt
cancels the reply in flight (the transcript keeps only what the caller heard), a key in `keys` ends at
once. A model that fails, or sends nothing for `stall` seconds, gets an apology said and ends `error`;
turns, seconds and silence end `limit`; a dropped connection ends `hangup`. Before `end` goes out, the
summary (turns, tool calls, latency to the first token, outcome, transcript) is in the call's session
under `agent`, for the `<Connect action>` webhook that follows.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

from ivr.agent.model import Done, Model, ModelError, Text, ToolCall
from ivr.agent.tools import END_PREFIX, Refused, ToolCallContext, check_arguments, end_values, run_tool, tool_specs
from ivr.core import flow as f
from ivr.core.agent import HANGUP_OUTCOME, LIMIT_OUTCOME, Agent
from ivr.core.templates import render
from ivr.errors import ConversationEnded as _End
from ivr.errors import RelayClosed as Closed
from ivr.hooks import HookRunner
from ivr.store import DEFAULT_TTL, SessionStore

__all__ = ["APOLOGY", "LIMIT_LINE", "STALL", "Closed", "Conversation"]

log = logging.getLogger("ivr.agent")

STALL = 8.0  # seconds the model may go without a delta before the caller hears an apology
ROUNDS = 6  # model calls in one turn (tool calls in between) before it is taken as a loop
POLL = 0.05  # seconds between looks at the caller while the model is quiet
APOLOGY = "Sorry, I'm having trouble right now."
LIMIT_LINE = "I'm sorry, we have to stop here."
ERROR = f.ERROR_EVENT


class Conversation:
    """A conversation of `agent` at `flow_id`/`state`, over any transport; `run` it once."""

    def __init__(self, agent: Agent, *, flow_id: str, state: str, model: Model | None, runner: HookRunner,
                 store: SessionStore, send: Callable[[dict], None], flow: f.Flow | None = None,
                 stall: float = STALL, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.agent, self.flow_id, self.state, self.flow = agent, flow_id, state, flow
        self.model, self.runner, self.store, self._send = model, runner, store, send
        self.stall, self.clock = stall, clock
        self.tools = {tool.name: tool for tool in agent.tools}
        self.ends = {end.name: end for end in agent.ends}
        self.keys = dict(agent.keys)
        self.specs = tool_specs(agent)
        self.messages: list[dict] = []
        self.transcript: list[dict] = []
        self.tool_calls: list[dict] = []
        self.latency_ms: list[int] = []
        self.values: dict = {}  # the chosen end's values, as `end` hands them back
        self.replies: list[dict] = []  # what the model streamed, call by call: replay's ScriptedModel plays these
        self.turns = 0
        self.call_sid = ""
        self.call: dict = {}
        self.vars: dict = {}
        self._pending: deque[dict] = deque()
        self._receive: Callable[[float], dict | None] = lambda timeout: None
        self._started = clock()

    # -- the session ----------------------------------------------------------------------------

    def run(self, receive: Callable[[float], dict | None]) -> str:
        """Hold the conversation until it ends; return its outcome (an end's name, limit, error or hangup)."""
        self._receive = receive
        self._started = self.clock()
        try:
            try:
                self._setup()
                while True:
                    self._handle(self._next(self._wait()))
            except _End as end:
                self._finish(end)
                return end.outcome
        except Closed:
            log.info("CallSid=%s flow=%s state=%s: the connection closed mid-conversation (hangup)",
                     self.call_sid or "-", self.flow_id, self.state)  # fmt: skip
            self._save(HANGUP_OUTCOME)
            return HANGUP_OUTCOME

    def _setup(self) -> None:
        message = self._next(min(self.agent.silence, self.agent.seconds))
        while message.get("type") != "setup":
            log.warning("flow=%s state=%s: %r before setup, ignored", self.flow_id, self.state, message.get("type"))
            message = self._next(self._wait())
        self.call_sid = str(message.get("callSid") or "")
        self.call = {"CallSid": self.call_sid, "From": message.get("from", ""), "To": message.get("to", ""),
                     "parameters": dict(message.get("customParameters") or {})}  # fmt: skip
        session = self.store.get(self.call_sid) if self.call_sid else None
        if not session or session.get("flow") != self.flow_id or session.get("state") != self.state:
            # Only a call waiting at this agent state has a conversation here: a signed handshake is the same for
            # every call of the state, so a setup naming another call (or none) gets neither its variables nor
            # a model, and leaves its session alone.
            log.warning("CallSid=%s flow=%s state=%s: setup for a call that is not waiting at this agent state; "
                        "refused", self.call_sid or "-", self.flow_id, self.state)  # fmt: skip
            self.call_sid = ""
            raise _End(ERROR)
        self.vars = dict((session or {}).get("vars") or {})
        context = {**self.vars, "vars": self.vars, "call": self.call, "flow": self.flow_id, "state": self.state}
        instructions = self.agent.instructions
        system = instructions.source if instructions.template is None else render(
            instructions.template, context, f"{instructions.pos}: agent.instructions")  # fmt: skip
        self.messages.append({"role": "system", "content": system})
        if self.model is None:
            log.error("CallSid=%s flow=%s state=%s: no model for agent states; set IVR_AGENT_BASE_URL and "
                      "IVR_AGENT_MODEL (and IVR_AGENT_API_KEY)", self.call_sid, self.flow_id, self.state)  # fmt: skip
            raise _End(ERROR, say=APOLOGY)

    def _wait(self) -> float:
        """How long the caller may stay silent now: the silence limit, or what is left of the seconds."""
        return max(0.0, min(self.agent.silence, self._left()))

    def _left(self) -> float:
        return self.agent.seconds - (self.clock() - self._started)

    def _next(self, timeout: float) -> dict:
        """The next message (one held back while the model spoke first); a limit when none comes in time."""
        if self._pending:
            return self._pending.popleft()
        message = self._receive(timeout)
        if message is None:
            why = "seconds" if self._left() <= 0 else "silence"
            log.info("CallSid=%s flow=%s state=%s: %s limit reached", self.call_sid or "-", self.flow_id,
                     self.state, why)  # fmt: skip
            raise _End(LIMIT_OUTCOME, say=LIMIT_LINE)
        return message

    def _handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "prompt":
            if message.get("last", True) is False:  # partial prompts (partialPrompts="true"): wait for the whole
                return
            self.turns += 1
            if self.turns > self.agent.turns:
                raise _End(LIMIT_OUTCOME, say=LIMIT_LINE)
            said = str(message.get("voicePrompt", ""))
            self.messages.append({"role": "user", "content": said})
            self.transcript.append({"caller": said})
            self._reply()
        elif kind == "dtmf":
            self._key(message)
        elif kind == "interrupt":  # the caller spoke over a reply already sent: keep what they heard
            self._heard(message)
        elif kind == "error":
            log.warning("CallSid=%s flow=%s state=%s: ConversationRelay reports an error: %s", self.call_sid,
                        self.flow_id, self.state, message.get("description"))  # fmt: skip
        elif kind != "setup":
            log.warning("CallSid=%s: unknown ConversationRelay message %r ignored", self.call_sid, kind)

    def _key(self, message: dict) -> None:
        route = self.keys.get(str(message.get("digit", "")))
        if route is not None:
            self.transcript.append({"key": str(message.get("digit"))})
            raise _End(route)

    def _heard(self, message: dict) -> None:
        heard = str(message.get("utteranceUntilInterrupt", ""))
        for said in reversed(self.messages):
            if said["role"] == "assistant" and said.get("content"):
                said["content"] = heard
                break
        for line in reversed(self.transcript):
            if "agent" in line:
                line["agent"], line["interrupted"] = heard, True
                break

    # -- a reply --------------------------------------------------------------------------------

    def _reply(self) -> None:
        """Answer the caller's prompt: stream the model's text, run its tool calls, until it is done or ends."""
        for _ in range(ROUNDS):
            text, calls, interrupted = self._stream()
            self.replies.append({"text": text, "calls": [[c.name, _arguments(c.arguments)] for c in calls]})
            if interrupted is not None:
                heard = str(interrupted.get("utteranceUntilInterrupt", ""))
                self.messages.append({"role": "assistant", "content": heard})
                self.transcript.append({"agent": heard, "interrupted": True})
                return
            if text:
                self.transcript.append({"agent": text})
            if not calls:
                self.messages.append({"role": "assistant", "content": text})
                return
            self.messages.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls]})  # fmt: skip
            for call in calls:
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": self._tool(call)})
        log.error("CallSid=%s flow=%s state=%s: the model called tools %d times in one turn; ending", self.call_sid,
                  self.flow_id, self.state, ROUNDS)  # fmt: skip
        raise _End(ERROR, say=APOLOGY)

    def _stream(self) -> tuple[str, list[ToolCall], dict | None]:
        """One model call: its text (sent on as tokens), its tool calls, and the interrupt that cut it short."""
        deltas: queue.Queue = queue.Queue()
        cancel = threading.Event()
        threading.Thread(target=self._pump, args=(list(self.messages), deltas, cancel), daemon=True,
                         name=f"ivr-agent-{self.call_sid}").start()  # fmt: skip
        started = last = self.clock()
        text: list[str] = []
        calls: list[ToolCall] = []
        try:
            while True:
                try:
                    delta = deltas.get(timeout=POLL)
                except queue.Empty:
                    delta = None
                interrupted = self._look()
                if interrupted is not None:
                    log.info("CallSid=%s: the caller interrupted the reply", self.call_sid)
                    return "".join(text), [], interrupted
                now = self.clock()
                if self._left() <= 0:  # no reply outlives the conversation's seconds
                    raise _End(LIMIT_OUTCOME, say=LIMIT_LINE)
                if delta is None:
                    if now - last > self.stall:
                        log.error("CallSid=%s flow=%s state=%s: the model sent nothing for %.1fs; apologising",
                                  self.call_sid, self.flow_id, self.state, self.stall)  # fmt: skip
                        self._close_reply(text)
                        raise _End(ERROR, say=APOLOGY)
                    continue
                last = now
                if isinstance(delta, BaseException):
                    log.error("CallSid=%s flow=%s state=%s: the model failed: %s; apologising", self.call_sid,
                              self.flow_id, self.state, delta)  # fmt: skip
                    self._close_reply(text)
                    raise _End(ERROR, say=APOLOGY)
                if not text and not calls:
                    self.latency_ms.append(round((now - started) * 1000))
                if isinstance(delta, Text) and delta.token:
                    text.append(delta.token)
                    self._send({"type": "text", "token": delta.token, "last": False})
                elif isinstance(delta, ToolCall):
                    calls.append(delta)
                elif isinstance(delta, Done):
                    if text:
                        self._send({"type": "text", "token": "", "last": True})
                    return "".join(text), calls, None
        finally:
            cancel.set()

    def _close_reply(self, text: list[str]) -> None:
        """A reply cut off mid-sentence ends as an utterance of its own: the apology is not run into it."""
        if text:
            self._send({"type": "text", "token": "", "last": True})

    def _pump(self, messages: list[dict], deltas: queue.Queue, cancel: threading.Event) -> None:
        """The model's stream, delta by delta, onto `deltas` (its thread); stops when the reply is cancelled."""
        try:
            stream = self.model.stream(messages, self.specs, timeout=self.stall)
            try:
                for delta in stream:
                    if cancel.is_set():
                        return
                    deltas.put(delta)
                    if isinstance(delta, Done):
                        return
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            deltas.put(Done())
        except ModelError as exc:
            deltas.put(exc)
        except Exception as exc:  # an adapter's bug is still the model failing, never the caller's problem
            deltas.put(ModelError(f"{type(exc).__name__}: {exc}"))

    def _look(self) -> dict | None:
        """The caller while the model speaks: an interrupt is returned, a key may end, the rest waits its turn."""
        while True:
            message = self._receive(0)
            if message is None:
                return None
            if message.get("type") == "interrupt":
                return message
            if message.get("type") == "dtmf":
                self._key(message)
            self._pending.append(message)

    def _tool(self, call: ToolCall) -> str:
        """Run one tool call (or end on an end's function); what goes back to the model, as JSON text."""
        if call.name.startswith(END_PREFIX) and call.name[len(END_PREFIX) :] in self.ends:
            end = self.ends[call.name[len(END_PREFIX) :]]
            try:
                values = end_values(end, call.arguments)
            except Refused as refused:
                return json.dumps({"error": str(refused)})
            raise _End(end.name, values)
        tool = self.tools.get(call.name)
        started = self.clock()
        record = {"name": call.name, "seconds": 0.0}
        try:
            if tool is None:
                raise Refused(f"there is no tool named {call.name}")
            args = check_arguments(tool, call.arguments)
        except Refused as refused:
            log.warning("CallSid=%s flow=%s state=%s: the model's call of %s refused: %s", self.call_sid,
                        self.flow_id, self.state, call.name, refused)  # fmt: skip
            self.tool_calls.append({**record, "outcome": "refused", "error": str(refused)})
            return json.dumps({"error": f"refused: {refused}"})
        who = ToolCallContext(self.call_sid, self.flow_id, self.state, self.call, self.vars)
        key = f"{self.call_sid}:{self.flow_id}/{self.state}:agent:{call.id}"
        result = run_tool(self.runner, self.flow, tool, args, who, key)
        record.update(outcome=result.outcome, error=result.error, seconds=round(self.clock() - started, 3),
                      vars=dict(result.vars or {}))  # fmt: skip
        self.tool_calls.append(record)
        if result.error is not None:
            return json.dumps({"error": result.error, "outcome": result.outcome})
        return json.dumps({"outcome": result.outcome, "vars": result.vars})

    # -- the end --------------------------------------------------------------------------------

    def _finish(self, end: _End) -> None:
        """Say the last line, keep the summary, then tell Twilio the route (the action webhook reads the summary)."""
        try:
            if end.say:
                self._send({"type": "text", "token": end.say, "last": True})
                self.transcript.append({"agent": end.say})
            self.values = dict(end.values or {})
            self._save(end.outcome)
            handoff = json.dumps({"route": end.outcome, "values": end.values}, separators=(",", ":"))
            self._send({"type": "end", "handoffData": handoff})
            log.info("CallSid=%s flow=%s state=%s: the conversation ended on %s after %d turns", self.call_sid,
                     self.flow_id, self.state, end.outcome, self.turns)  # fmt: skip
        except Closed:
            self._save(HANGUP_OUTCOME)

    def summary(self, outcome: str) -> dict:
        """What the journal and recordings keep of the conversation."""
        return {"state": self.state, "outcome": outcome, "turns": self.turns, "tools": list(self.tool_calls),
                "latency_ms": list(self.latency_ms), "seconds": round(self.clock() - self._started, 3),
                "transcript": list(self.transcript), "model": list(self.replies),
                "values": dict(self.values)}  # fmt: skip

    def _save(self, outcome: str) -> None:
        if not self.call_sid:
            return
        summary = self.summary(outcome)

        def keep(session: dict | None) -> dict | None:
            if session is None:  # no call of ours: nothing to attach it to
                return None
            session["agent"] = summary
            return session

        try:
            self.store.update(self.call_sid, keep, DEFAULT_TTL)
        except Exception:
            log.exception("CallSid=%s: keeping the conversation's summary failed", self.call_sid)


def _arguments(text: str) -> object:
    """A tool call's arguments as the model sent them: JSON when they are, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text
