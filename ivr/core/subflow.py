"""Subflows: a state runs another flow with named inputs and routes on what its `return` state ends with.

The model of the two actions (`subflow:` calls, `return:` ends a subflow) and of a subflow's declared
inputs, and what happens at run time when a walk crosses into a subflow or back: the call stack is a
list of frames in the session (the caller's flow, its calling state, its variables and menus, the
subflow and its version), the subflow sees only its inputs, and a return fires the returned outcome
through the caller's prebuilt machine from the calling state. Both crossings render in the same
document as the states before them, like input-less states do (no extra round trip).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ivr.core import flow as f
from ivr.core.flow import Pos
from ivr.core.templates import value_of
from ivr.errors import WebhookError

__all__ = ["MAX_DEPTH", "Call", "Input", "Return", "call_subflow", "crossing_key", "in_subflow", "pin_versions",
           "return_from", "stack_of"]  # fmt: skip

MAX_DEPTH = 8  # subflow calls a call may be inside at once (a flow calling pin calling ... is 1, 2, ...)
MAX_CROSSINGS = 64  # crossings of flows one document may make (a guard: validation finds the loops)


@dataclass(frozen=True, slots=True)
class Input:
    """An input a subflow declares: required (no default), or its default value."""

    name: str
    required: bool
    default: object
    pos: Pos


@dataclass(frozen=True, slots=True)
class Call:
    """`subflow:` run another flow: the inputs it is given (values or templates) and the variable that
    keeps the values it returns (`save_as`)."""

    flow: str
    inputs: tuple[tuple[str, object, Pos], ...]
    save_as: str | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Return:
    """`return:` end the subflow with an outcome (which the calling state routes on) and values."""

    outcome: str
    values: tuple[tuple[str, object, Pos], ...]
    pos: Pos


def stack_of(session: dict) -> list[dict]:
    """The call's stack of subflow frames, innermost last (empty outside subflows)."""
    return session.get("stack") or []


def in_subflow(session: dict, flow_id: str) -> bool:
    """Whether the call is inside a call of subflow `flow_id` (the innermost frame's)."""
    stack = stack_of(session)
    return bool(stack) and stack[-1].get("subflow") == flow_id


def pin_versions(engine, session: dict) -> None:
    """Keep the call on the versions of the subflows its flow may call, as they are when it starts."""
    versions = session.setdefault("versions", {})
    todo, seen = [engine], {engine.flow.id}
    while todo:
        current = todo.pop()
        for flow_id in current.calls:
            if flow_id in seen or current.link is None:
                continue
            seen.add(flow_id)
            try:
                sub = current.link(flow_id, versions.get(flow_id))
            except WebhookError:  # not loaded beside it: the call that needs it fails then, not this one
                continue
            versions.setdefault(flow_id, sub.flow.content_hash)
            todo.append(sub)


def _value(value, context, where: str):
    return value_of(value, context, where) if isinstance(value, f.Text) else value


def _carried(engine, call, segments: list, rendered: list) -> list:
    """The document so far, as (flow, state, verbs, key), for the engine of another flow to go on from. A
    state without templates has a key (its flow and version, the URL base, the state and variant) that
    names its verbs, the same for every call; a templated one None (see `crossing_key`)."""
    flow, renderer = engine.flow, call.renderer or engine.renderer_for(call.session)
    static = (flow.id, flow.content_hash, renderer.urls.base, renderer.flow.defaults.language)
    verbs = [(flow.id, name, renderer.verbs(name, variant, None), (*static, name, variant)) if done is None
             else (flow.id, name, done, None)
             for (name, variant), done in zip(segments, rendered, strict=True)]  # fmt: skip
    carried = [*call.prefix, *verbs]
    crossings = sum(1 for before, after in pairwise(carried) if before[0] != after[0])
    if crossings > MAX_CROSSINGS:
        raise WebhookError(f"flow '{engine.flow.id}' goes in and out of subflows without waiting")
    return carried


def crossing_key(carried: list) -> tuple | None:
    """What the verbs other flows rendered before a document are, as a key that is the same exactly when the
    verbs are (the keys of their states, none templated); None when any is templated. A flow's version is
    its text's hash, so a key's states render the same verbs in any engine of the same URL base."""
    keys = tuple(key for *_, key in carried)
    return None if None in keys else keys


def call_subflow(engine, call, state: f.State, outcome, segments: list, rendered: list, redact: bool):
    """The walk reached a `subflow:` state: push a frame, give the subflow its inputs, render its start."""
    action: Call = state.action
    session = call.session
    stack = session.setdefault("stack", [])
    if len(stack) >= MAX_DEPTH:
        raise WebhookError(f"subflow '{action.flow}' called at {len(stack)} subflows deep (at most {MAX_DEPTH})")
    sub = engine.linked(action.flow, session)
    context = call.context()
    given = {name: _value(value, context, f"{pos}: subflow.inputs.{name}") for name, value, pos in action.inputs}
    declared = {i.name: i for i in sub.flow.inputs}
    missing = [i.name for i in sub.flow.inputs if i.required and i.name not in given]
    unknown = [name for name in given if name not in declared]
    if missing or unknown or not sub.flow.returns:
        raise WebhookError(f"state '{state.name}' of flow '{engine.flow.id}' cannot call '{sub.flow.id}': "
                           f"missing inputs {missing}, unknown inputs {unknown}")  # fmt: skip
    carried = _carried(engine, call, segments, rendered)
    frame = {"flow": engine.flow.id, "state": state.name, "vars": session["vars"], "menus": session.get("menus", [])}
    stack.append({**frame, "subflow": sub.flow.id, "version": sub.flow.content_hash})
    session["vars"] = {**{i.name: i.default for i in sub.flow.inputs if not i.required}, **given}
    session["menus"] = []  # `back` in a subflow goes back through its own menus
    return sub.go_on(call, sub.flow.start, carried, outcome, redact)


def return_from(engine, call, state: f.State, outcome, segments: list, rendered: list, redact: bool):
    """The walk reached a `return:` state: pop the frame, give the caller back its variables (and the values
    returned, as `save_as`), and fire the returned outcome through the caller's machine from its calling state."""
    action: Return = state.action
    session = call.session
    if not in_subflow(session, engine.flow.id):
        raise WebhookError(f"flow '{engine.flow.id}' returns, but no call of it is on the call's stack")
    context = call.context()
    values = {name: _value(value, context, f"{pos}: return.values.{name}") for name, value, pos in action.values}
    carried = _carried(engine, call, segments, rendered)
    frame = session["stack"].pop()
    caller = engine.linked(frame["flow"], session)
    calling = caller.flow.states.get(frame["state"])
    if calling is None or not isinstance(calling.action, Call):
        raise WebhookError(f"flow '{caller.flow.id}' has no subflow state '{frame['state']}' to return to")
    session["vars"] = frame["vars"]
    session["menus"] = frame["menus"]
    if calling.action.save_as is not None:
        session["vars"][calling.action.save_as] = values
    routed = {r.outcome for r in calling.routes}
    event = action.outcome if action.outcome in routed else f.NEXT_EVENT
    return caller.go_on(call, frame["state"], carried, outcome, redact, event=event)
