"""The per-request model the engine's prebuilt machine moves: the state a call is in and its memory."""

from __future__ import annotations

from datetime import datetime

from ivr.core.schedules import open_function

__all__ = ["Walk"]


class Walk:
    """The per-request model the prebuilt machine moves: a state name and the call's memory."""

    __slots__ = ("_context", "back", "effects", "engine", "now", "params", "prefix", "renderer", "retry", "session",
                 "splits", "started", "state")  # fmt: skip

    def __init__(self, engine, state: str, session: dict, params: dict, now: datetime) -> None:
        self.engine = engine
        self.state = state
        self.session = session
        self.params = params
        self.now = now
        self.retry: str | None = None
        self.back = False
        self.effects: list = []
        self.splits: list[tuple[str, str]] = []
        self.prefix: list[tuple[str, str, list]] = []  # the document so far, rendered by flows walked before
        self.renderer = None  # the language view the walk's segments so far are rendered in
        self.started = False  # a whole-call recording starts in this request's document (Twilio has not run it yet)
        self._context: dict | None = None

    def changed(self) -> None:
        """The session changed: templates must see it anew."""
        self._context = None

    def context(self) -> dict:
        """The values templates and conditions see; built at most once per change."""
        if self._context is None:
            session = self.session
            variables = session["vars"]
            self._context = {
                **variables,
                "vars": variables,
                "call": self.params,
                "input": session.get("input", {}),
                "recording": session.get("recording", {}),
                "dial": session.get("dial", {}),
                "queue": session.get("queue", {}),
                "now": self.now,
                "flow": self.engine.flow.id,
                "state": self.state,
                "open": open_function(self.engine.schedules, self.now),
                "language": self.engine.language(session),  # the call's (None: a flow in one language)
            }
        return self._context

    def key(self, state: str | None = None) -> str:
        return f"{self.engine.flow.id}/{state or self.state}"

    def visit_key(self) -> str:
        """CallSid:flow/state:visit, the same for every attempt at this visit: texts and hooks' side effects."""
        key = self.key()
        return f"{self.params.get('CallSid', '')}:{key}:{self.session['visits'].get(key, 0)}"

    def hook_context(self) -> dict:
        """What a hook sees of the call (a HookContext's fields)."""
        context = self.context()
        return {
            "call_sid": self.params.get("CallSid", ""),
            "key": self.visit_key(),
            "flow": self.engine.flow.id,
            "state": self.state,
            "call": dict(self.params),
            "vars": dict(self.session["vars"]),
            "input": dict(context["input"]),
            "recording": dict(context["recording"]),
            "dial": dict(context["dial"]),
            "now": self.now,
        }
