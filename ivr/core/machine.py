"""Building a flow's `transitions` machine: its plain dict form (states, transitions, initial), the
conditions and callbacks the engine's own code supplies (never strings from YAML), built once.

One event per outcome name (`"1"`, `no_input`, `busy`, a split's `split:<variant>`), so graphs label
their edges; menus count their retries in the call's session through `prepare` callbacks and stop
at `max` by condition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from transitions import Machine

from ivr.core import flow as f
from ivr.core.agent import AGENT_OUTCOMES, HANGUP_OUTCOME, Agent
from ivr.core.flow import APOLOGY, GOODBYE
from ivr.core.gc_pause import gc_paused
from ivr.core.pay import HUNG_UP, PAY_RESULTS, Pay
from ivr.core.splits import split_event
from ivr.core.templates import evaluate

__all__ = ["CallModel", "build_machine", "machine_definition", "nothing_on_enter"]


class CallModel(Protocol):
    """What the machine's callbacks read and set on the model each request fires events on (the
    engine's per-request call): its session, its state's key and template context, and two marks."""

    session: dict
    back: bool  # the outcome routed to `back`: the engine renders the menu before
    retry: str | None  # the outcome was a retry (no_input, no_match, repeat): the engine renders that variant

    def key(self) -> str:
        """`flow/state`: where the call's counters and visits are kept."""

    def context(self) -> dict:
        """The values templates and conditions see."""


def nothing_on_enter(event) -> None:
    """What a drawing's machine runs on entering a state: nothing (graphs need no engine built)."""


def machine_definition(flow: f.Flow, on_enter: Callable) -> dict:
    """The machine's plain dict form: what runs, and what graphs draw; `on_enter` runs on entering a state."""
    return {
        "states": [{"name": name, "on_enter": [on_enter]} for name in flow.states] + [GOODBYE, APOLOGY],
        "transitions": _transitions(flow),
        "initial": flow.start,
    }


def build_machine(flow: f.Flow, on_enter: Callable) -> Machine:
    """The flow's machine, with no model: each request fires events on a light model of its own."""
    with gc_paused():
        return Machine(
            model=None,
            **machine_definition(flow, on_enter),
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )


def _transitions(flow: f.Flow) -> list[dict]:
    out: list[dict] = []
    for state in flow.states.values():
        name = state.name
        for route in state.answered_by:  # events named by Twilio's AnsweredBy, so graphs label them
            out.append({"trigger": route.outcome, "source": name, "dest": route.target})
        for variant in state.split:  # the engine picks the variant; its own event takes the call there
            out.append({"trigger": split_event(variant.target), "source": name, "dest": variant.target})
        routed = set()
        for route in state.routes:
            if route.target == f.REPEAT:
                out.append({"trigger": route.outcome, "source": name, "dest": None, "after": [_mark_retry("repeat")]})
            elif route.target == f.BACK:
                out.append({"trigger": route.outcome, "source": name, "dest": None, "after": [_mark_back]})
            else:
                out.append({"trigger": route.outcome, "source": name, "dest": route.target})
            routed.add(route.outcome)
        action = state.action
        fallbacks = {f.NEXT_EVENT} if action is None or state.next else set()
        if isinstance(action, f.Run):
            fallbacks = {f.NEXT_EVENT}
            failed = state.on_error.name if state.on_error else flow.error_state or APOLOGY
            out.append({"trigger": f.ERROR_EVENT, "source": name, "dest": failed})
        if isinstance(action, f.Dial):
            fallbacks = set(f.dial_outcomes(action)) - routed  # a plain dial never reports answered
            if action.screen is not None and f.DECLINED not in routed:
                fallbacks.add(f.DECLINED)
        elif isinstance(action, f.Record):
            fallbacks = set(f.RECORD_OUTCOMES) - routed
        elif isinstance(action, f.Enqueue):
            fallbacks = set(f.ENQUEUE_OUTCOMES) - routed
        elif isinstance(action, Pay | Agent):  # every outcome Twilio reports; after a hang-up nothing is heard
            paying = isinstance(action, Pay)
            every, hung_up = (PAY_RESULTS, HUNG_UP) if paying else (_agent_outcomes(action), HANGUP_OUTCOME)
            fallbacks = set(every) - routed
            if state.next is None and hung_up not in routed:
                out.append({"trigger": hung_up, "source": name, "dest": GOODBYE})
        elif isinstance(action, f.Gather):
            fallbacks = {f.NEXT_EVENT} if state.next else set()
            if action.save_as is not None and f.VALID_EVENT not in routed:
                fallbacks.add(f.VALID_EVENT)
        for event in sorted(fallbacks):
            if state.next is None:
                continue
            for cond in state.when:
                out.append({"trigger": event, "source": name, "dest": cond.target, "conditions": [_condition(cond)]})
            out.append({"trigger": event, "source": name, "dest": state.next})
        if isinstance(action, f.Gather):
            for kind in f.RETRY_EVENTS:
                handler: f.Handler = getattr(state, kind)
                out.append(
                    {
                        "trigger": kind,
                        "source": name,
                        "dest": None,
                        "prepare": [_counter(kind)],
                        "conditions": [_below(kind, handler.max)],
                        "after": [_mark_retry(kind)],
                    }
                )
                out.append(
                    {"trigger": kind, "source": name, "dest": handler.on_max.name if handler.on_max else GOODBYE}
                )
    return out


def _agent_outcomes(action: Agent) -> tuple[str, ...]:
    return (*(end.name for end in action.ends), *AGENT_OUTCOMES)


def _condition(cond: f.Condition):
    where = f"{cond.pos}: if {cond.source!r}"

    def check(event) -> bool:
        return evaluate(cond.test, event.model.context(), where)

    check.__name__ = f"when_{cond.source}"
    return check


def _counter(kind: str):
    def count(event) -> None:
        call: CallModel = event.model
        counts = call.session["counts"].setdefault(call.key(), {})
        counts[kind] = counts.get(kind, 0) + 1

    return count


def _below(kind: str, maximum: int):
    def below(event) -> bool:
        call: CallModel = event.model
        return call.session["counts"].get(call.key(), {}).get(kind, 0) < maximum

    below.__name__ = f"{kind}_below_{maximum}"
    return below


def _mark_back(event) -> None:
    event.model.back = True


def _mark_retry(kind: str):
    def mark(event) -> None:
        event.model.retry = kind

    return mark
