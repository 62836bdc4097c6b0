"""The engine: one prebuilt `transitions` machine per flow, and a step per webhook. No I/O.

A step takes the flow, the state named by the request's URL, the request's parameters and the
call's session, and returns the TwiML to answer with, the new session and its effects. A step that
stops at a hook carries a continuation: the adapter runs the hook and hands its result to
`step.pending.resume`, which goes on from where the walk stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.core import flow as f
from ivr.core.call_recording import ControlRecording, RecordingCall, note_started, recording_call, recording_event
from ivr.core.effects import HookCall, HookResult
from ivr.core.entering import answered_by_route, sms_effect
from ivr.core.filler import WAIT_EVENT, filler_document
from ivr.core.http_step import Http, HttpCall, http_call, http_event
from ivr.core.language_switch import matching_language, switch_language
from ivr.core.languages import entry_language
from ivr.core.machine import build_machine, machine_definition
from ivr.core.outcomes import read_outcome, speech_table
from ivr.core.pay_recording import after_pay, before_pay
from ivr.core.splits import bucket, caller_key, choose, split_event
from ivr.core.step import Pending, Step, new_session, past_max
from ivr.core.subflow import Call, Return, call_subflow, crossing_key, in_subflow, pin_versions, return_from
from ivr.core.templates import number_or_text, render
from ivr.core.twiml import Renderer, Urls
from ivr.core.walk import Walk as _Call
from ivr.errors import WebhookError

__all__ = ["Engine", "HookCall", "HookResult", "Pending", "Step", "new_session"]

_MENU_DEPTH = 20


class Engine:
    """One flow's prebuilt machine and renderer; `start` and `resume` answer webhooks."""

    def __init__(
        self, flow: f.Flow, urls: Urls | None = None, *, timezone: str = "UTC", schedules: dict | None = None
    ) -> None:
        self.flow = flow
        # Shared schedules (IVR_SCHEDULES) first; the flow's own of the same name win.
        self.schedules = {**(schedules or {}), **flow.schedules}
        self.zone = ZoneInfo(flow.defaults.timezone or timezone)
        # One renderer per language the flow offers (each its view of the flow); the default's is `renderer`.
        self.renderers = {tag: Renderer(view, urls or Urls()) for tag, view in flow.localized.items()}
        self.renderer = next(iter(self.renderers.values())) if self.renderers else Renderer(flow, urls or Urls())
        for renderer in self.renderers.values() or (self.renderer,):
            renderer.prepare()  # every document without templates, before any call (and before gunicorn forks)
        views = flow.localized or {None: flow}
        self.speech = {
            tag: {n: speech_table(state) for n, state in view.states.items() if isinstance(state.action, f.Gather)}
            for tag, view in views.items()
        }
        self.speech_routes = next(iter(self.speech.values()))
        self.machine = build_machine(flow, self._on_enter)
        self.events = self.machine.events
        self.calls = {s.action.flow for s in flow.states.values() if isinstance(s.action, Call)}  # its subflows
        self.link: Callable[[str, str | None], Engine] | None = None  # (flow, version) -> engine: the registry's

    def linked(self, flow_id: str, session: dict) -> Engine:
        """Another flow's engine (a subflow, or the flow that called this one), at the version the call is on."""
        if self.link is None:
            raise WebhookError(f"flow '{flow_id}' is not loaded beside flow '{self.flow.id}'")
        return self.link(flow_id, session.get("versions", {}).get(flow_id))

    def go_on(self, came: _Call, name: str, carried: list, outcome, redact: bool, event: str | None = None) -> Step:
        """Walk on in this flow after another flow's walk: entering it as a subflow at `name`, or back from
        one, firing the returned `event` from the calling state `name`."""
        came.session["flow"] = self.flow.id
        call = _Call(self, name, came.session, came.params, self._local(came.now))
        call.prefix, call.effects, call.splits = carried, came.effects, came.splits
        if event is None:
            self._enter(call)
        else:
            self._fire(call, event)
        return self._walk(call, "enter", outcome, [], [], redact)

    def language(self, session: dict) -> str | None:
        """The call's language when this flow offers it, else the flow's default (None: a flow in one language)."""
        if not self.renderers:
            return None
        language = session.get("language")
        return language if language in self.renderers else next(iter(self.renderers))

    def renderer_for(self, session: dict) -> Renderer:
        """The renderer of the call's language (this flow's default when it does not offer it)."""
        return self.renderers.get(session.get("language"), self.renderer) if self.renderers else self.renderer

    def machine_definition(self) -> dict:
        """The machine's plain dict form (states, transitions, initial): what runs, and what graphs draw."""
        return machine_definition(self.flow, self._on_enter)

    # -- callbacks ---------------------------------------------------------------------------

    def _on_enter(self, event) -> None:
        transition = event.transition
        # A menu's counters start over unless the caller routed back to it; running out of retries
        # into itself (on_max naming its own state) starts them over too.
        fresh = transition is None or transition.source != transition.dest or event.event.name in f.RETRY_EVENTS
        self._enter(event.model, fresh=fresh)

    def _enter(self, call: _Call, *, fresh: bool = True, texts: bool = True) -> None:
        """Entering a state: its visit is counted, its `set:` runs, and, entered from another state,
        its retry counts start over (a route back to itself does not reset them)."""
        key = call.key()
        session = call.session
        if fresh:
            session["counts"].pop(key, None)
        session["visits"][key] = session["visits"].get(key, 0) + 1
        call.changed()
        state = self.flow.states.get(call.state)
        if note_started(session, state):
            call.started = True
            call.changed()
        if state is not None and state.sms is not None and texts:
            call.effects.append(sms_effect(call, state))
        if state is not None and isinstance(state.action, f.Gather):
            menus = session.setdefault("menus", [])  # for `back`: the menus this call went through
            if not menus or menus[-1] != key:
                menus.append(key)
                del menus[:-_MENU_DEPTH]
        if state is not None and state.language is not None:
            switch_language(self.flow, call, state.language)
        if state is not None and state.set:
            for var, value, _pos in state.set:
                if isinstance(value, f.Text):
                    value = (
                        value.source
                        if value.template is None
                        else number_or_text(render(value.template, call.context(), f"{value.pos}: set.{var}"))
                    )
                session["vars"][var] = value
                call.changed()

    # -- steps -------------------------------------------------------------------------------

    def start(
        self, session: dict, params: dict, now: datetime, state: str | None = None, language: str | None = None
    ) -> Step:
        """A call enters the flow (at its start, or at `state`); a subflow only from a call of it. A new call
        speaks `language` (the entry URL's), else the language of the number it reached, else the default."""
        if self.flow.returns and not in_subflow(session, self.flow.id):
            raise WebhookError(f"flow '{self.flow.id}' is a subflow: a call enters it only from a subflow state")
        if self.renderers and session.get("language") not in self.renderers:
            chosen = matching_language(self.renderers, language or session.get("language") or "")
            session["language"] = chosen or entry_language(self.flow, params) or next(iter(self.renderers))
        return self._start(session, params, now, state)

    def _start(self, session: dict, params: dict, now: datetime, state: str | None = None) -> Step:
        name = state or self.flow.start
        if name not in self.flow.states:
            raise WebhookError(f"flow '{self.flow.id}' has no state '{name}'")
        session["flow"] = self.flow.id
        # Who called whom, for what outlives the call's requests (voicemail delivery).
        session.setdefault("caller", {k: params.get(k, "") for k in ("From", "To", "Direction", "AnsweredBy")})
        session.setdefault("versions", {}).setdefault(self.flow.id, self.flow.content_hash)
        pin_versions(self, session)
        call = _Call(self, name, session, params, self._local(now))
        answered = answered_by_route(self.flow.states[name], params.get("AnsweredBy", ""))
        if answered is not None:  # machine detection decides before the entry state's prompts and text
            self._enter(call, texts=False)
            self._fire(call, answered)
        else:
            self._enter(call)
        return self._render(call, "enter", None)

    def resume(self, state: str, session: dict, params: dict, now: datetime, event: str | None = None) -> Step:
        """The result of `state`'s waiting verb (or the no-input / no-recording redirect)."""
        current = self.flow.states.get(state)
        if current is None:
            raise WebhookError(f"flow '{self.flow.id}' has no state '{state}'")
        if self.flow.returns and not in_subflow(session, self.flow.id):
            raise WebhookError(f"flow '{self.flow.id}' is a subflow, and no call of it is on the call's stack")
        if event in f.SCREEN_EVENTS:
            return self._screen_leg(current, session, params, now, event)
        session["flow"] = self.flow.id
        call = _Call(self, state, session, params, self._local(now))
        speech = self.speech.get(self.language(session), self.speech_routes) if self.renderers else self.speech_routes
        outcome = read_outcome(current, params, event, session, speech.get(state, ()))
        call.changed()
        paid = call.key()  # a pay state's: the recording it paused is resumed before the walk goes on
        self._fire(call, outcome)
        redact = current.sensitive
        if call.back:
            return self._finished(self._go_back(call, outcome), redact)
        step = after_pay(
            self, call, current, paid, lambda: self._walk(call, call.retry or "enter", outcome, [], [], redact)
        )
        if outcome in f.RETRY_EVENTS and call.retry is None and isinstance(current.action, f.Gather):
            return past_max(step)
        return step

    def finish_hook(self, state: str, session: dict, params: dict, now: datetime, result: HookResult) -> Step:
        """Go on from a `run:`/`http:` state with its work's result, picked up by a later request (a filler's
        wait): the same route the walk that stopped there would have taken, in a document of its own."""
        current = self.flow.states.get(state)
        if current is None or not isinstance(current.action, f.Run):
            raise WebhookError(f"state '{state}' of flow '{self.flow.id}' runs no hook to wait for")
        session["flow"] = self.flow.id
        call = _Call(self, state, session, params, self._local(now))
        return self._after_hook(call, result, WAIT_EVENT, [], [], False)

    @staticmethod
    def _finished(step: Step, redact: bool) -> Step:
        """Once a request's walk is done (its hooks run too): sensitive input leaves the session."""
        if step.pending is None and redact:
            # Templates and hooks of this request saw the input; the stored session never keeps it.
            step.session["input"] = {"digits": "", "speech": "", "confidence": None, "redacted": True}
        return step

    def error_step(self, session: dict, params: dict, now: datetime) -> Step | None:
        """The flow's error state, if it has one; None when it has not."""
        if self.flow.error_state is None:
            return None
        return self._start(session, params, now, self.flow.error_state)

    def _fire(self, call: _Call, event: str) -> None:
        """Fire one outcome through the prebuilt machine."""
        trigger = self.events.get(event)
        if trigger is None or call.state not in trigger.transitions:
            raise WebhookError(f"state '{call.state}' of flow '{self.flow.id}' has no outcome '{event}'")
        trigger.trigger(call)

    # -- reading the request -----------------------------------------------------------------

    # -- rendering ---------------------------------------------------------------------------

    def _render(self, call: _Call, variant: str, outcome: str | None) -> Step:
        return self._walk(call, variant, outcome, [], [])

    def rendered_again(self, document, language: str | None = None) -> str:
        """The TwiML of a `Step.document` (a chain without templates, in `Step.language`), byte for byte as it was
        answered."""
        segments = [(name, variant) for name, variant in document]
        return self.renderer_for({"language": language}).document(segments, [None] * len(segments))

    def _walk(self, call: _Call, variant: str, outcome, segments: list, rendered: list, redact: bool = False) -> Step:
        """Render from the call's state on: input-less states flow on into the same document, up to
        one that waits or ends; a hook pauses the walk, handing the adapter a continuation."""
        states = self.flow.states
        renderer = self._renderer(call, segments, rendered)
        for _ in range(len(states) + 1):
            name = call.state
            segments.append((name, variant))
            rendered.append(None if renderer.is_static(name) else renderer.verbs(name, variant, call.context))
            state = states.get(name)
            if state is not None and (
                paying := before_pay(self, call, state, variant, outcome, segments, rendered, redact)
            ):
                return paying  # a whole-call recording runs: paused first, or the pay state's error route
            if state is not None and isinstance(state.action, f.Run):
                hook = self._effect(state.action, call)
                call.session["state"] = name

                def resume(result: HookResult) -> Step:
                    return self._after_hook(call, result, outcome, segments, rendered, redact)

                waiting = None
                filler = renderer.flow.states[name].filler  # in the call's language (its language's view)
                if filler is not None:

                    def waiting(url: str, filler=filler, renderer=renderer) -> tuple[str, tuple[str, ...]]:
                        document = filler_document(renderer, filler, url, segments, rendered)
                        return document, tuple(name for name, _ in segments)

                pending = Pending(hook, resume, filler, waiting)
                return Step("", self.flow.id, name, call.session, tuple(call.effects), outcome, pending,
                            splits=tuple(call.splits))  # fmt: skip
            if state is not None and isinstance(state.action, Call | Return):  # into a subflow, or back out
                cross = call_subflow if isinstance(state.action, Call) else return_from
                return cross(self, call, state, outcome, segments, rendered, redact)
            if state is None or state.action is not None:
                break
            variant = "enter"
            self._fire(call, self._split(call, state) if state.split else f.NEXT_EVENT)
            if self.renderers:
                renderer = self._renderer(call, segments, rendered)
        else:  # pragma: no cover - validation refuses cycles of states that do not wait
            raise WebhookError(f"flow '{self.flow.id}' loops without waiting at state '{call.state}'")
        prefix = call.prefix
        twiml = renderer.document(segments, rendered, [verbs for _, _, verbs, _ in prefix], crossing_key(prefix))
        call.session["state"] = call.state
        walked = tuple(name for _, name, *_ in prefix) + tuple(name for name, _ in segments)
        flows = tuple(fid for fid, *_ in prefix) + (self.flow.id,) * len(segments) if prefix else ()
        document = tuple(segments) if not prefix and all(verbs is None for verbs in rendered) else None
        step = Step(twiml, self.flow.id, call.state, call.session, tuple(call.effects), outcome, walked=walked,
                    document=document, splits=tuple(call.splits), walked_flows=flows,
                    language=self.language(call.session))  # fmt: skip
        return self._finished(step, redact)

    def _renderer(self, call: _Call, segments: list, rendered: list) -> Renderer:
        """The renderer of the call's language now. When the language changed since the walk's segments so far
        were noted (a state's `language:`, a hook's), their verbs are built in the language they were heard in."""
        renderer = self.renderer_for(call.session)
        if call.renderer is not None and call.renderer is not renderer:
            before = call.renderer
            rendered[:] = [
                before.verbs(name, variant, None) if verbs is None else verbs
                for (name, variant), verbs in zip(segments, rendered, strict=True)
            ]
        call.renderer = renderer
        return renderer

    def _split(self, call: _Call, state: f.State) -> str:
        """The event to the variant this caller hears: the one this call got before while the split still
        has it (its shares may have changed since), else the caller's bucket's; kept in the session."""
        chosen = call.session.setdefault("splits", {})
        key = call.key()
        variant = chosen.get(key)
        if variant not in {v.target for v in state.split}:
            at = bucket(self.flow.id, state.name, caller_key({**call.session.get("caller", {}), **call.params}))
            variant = chosen[key] = choose(state.split, at)
        call.splits.append((state.name, variant))
        return split_event(variant)

    def _after_hook(self, call: _Call, result: HookResult, outcome, segments, rendered, redact: bool) -> Step:
        """Go on with a walk that stopped at a hook: its variables are set, its outcome routes the call."""
        state = self.flow.states[call.state]
        if isinstance(state.action, Http):  # its status (and what it saved) are set whatever route it takes
            call.session["vars"].update(result.vars)
            call.changed()
            event = http_event(state, result)
        elif isinstance(state.action, ControlRecording):  # Twilio paused (resumed, stopped) it, or refused
            event = recording_event(call.session, state.action, result)
            call.changed()
        elif result.error is not None:
            event = f.ERROR_EVENT
        else:
            call.session["vars"].update(result.vars)
            if result.language is not None:
                switch_language(self.flow, call, f.Text(result.language, state.pos))
            call.changed()
            routed = {r.outcome for r in state.routes}
            event = result.outcome if result.outcome in routed else f.NEXT_EVENT
        self._fire(call, event)
        return self._walk(call, "enter", outcome, segments, rendered, redact)

    def _effect(self, action: f.Run, call: _Call) -> HookCall | HttpCall | RecordingCall:
        """What a `run:` (a hook), `http:` (a request) or `call_recording:` state asks the adapter to carry out."""
        if isinstance(action, ControlRecording):
            return recording_call(action, self.flow.id, call.state, call.params.get("CallSid", ""), call.visit_key())
        if isinstance(action, Http):
            sid = call.params.get("CallSid", "")
            return http_call(action, self.flow.id, call.state, call.context(), sid, call.visit_key())
        return HookCall(action.name, self.flow.id, call.state, call.hook_context())

    def _screen_leg(self, state: f.State, session: dict, params: dict, now: datetime, event: str) -> Step:
        """The answering party's leg of a screened dial: the whisper, then accept (bridge) or decline."""
        if not isinstance(state.action, f.Dial) or state.action.screen is None:
            raise WebhookError(f"state '{state.name}' does not screen its dial")
        screens = session.setdefault("screens", {})
        # The whisper's templates speak of the caller, not of the leg being answered.
        call = _Call(self, state.name, session, {**params, **session.get("caller", {})}, self._local(now))
        if event == "screen":
            twiml = self.renderer_for(session).whisper_document(state, call.context)
        else:
            digits, key = params.get("Digits", ""), state.action.screen.key
            accepted = bool(digits) and key in (f.ANY_KEY, digits)
            screens[state.name] = "accepted" if accepted else "declined"
            outcome = "accepted" if accepted else "declined" if digits else "timeout"
            told = self.renderer_for(session).screen_told(state, outcome, call.context)
            twiml = self.renderer.screened_document(accepted, told)
        return Step(twiml=twiml, flow=self.flow.id, state=state.name, session=session, outcome=event)

    def _go_back(self, call: _Call, outcome: str | None) -> Step:
        """`back`: the menu before this one; the same menu again when there is none."""
        menus = call.session.get("menus", [])
        if menus and menus[-1] == call.key():
            menus.pop()
        if not menus:
            return self._render(call, "repeat", outcome)
        flow_id, _, state = menus[-1].partition("/")
        if flow_id != self.flow.id:  # a menu of another flow: that flow's engine renders it
            twiml = self.renderer.redirect_document(flow_id, state)
            return Step(twiml, self.flow.id, call.state, call.session, outcome=outcome)
        call.state = state
        self._enter(call)
        return self._render(call, "enter", outcome)

    def _local(self, now: datetime) -> datetime:
        return now.astimezone(self.zone)
