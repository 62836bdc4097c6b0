"""Checks of subflows, for the loader and `check` alike (through `ivr.core.validate`): a subflow's own
returns, and every call site against the subflow it calls (inputs missing or unknown, returns routed
that it never returns or returns left with nowhere to go, calls nested past the depth limit or round
in a circle, documents over 64 kB across a call or a return)."""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.document_size import continuation, crossing_size_errors
from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean, path_join
from ivr.core.subflow import MAX_DEPTH, Call, Return
from ivr.errors import FlowError

__all__ = ["call_errors", "loop_errors", "subflow_errors"]


def _error(errors: list, pos: Pos, path: str, message: str) -> None:
    errors.append(FlowError(pos.file, pos.line, pos.column, path, message))


def subflow_errors(flow: f.Flow) -> list[FlowError]:
    """One flow alone: its return states return what it declares; inputs only with returns."""
    errors: list[FlowError] = []
    for state in flow.states.values():
        action = state.action
        if not isinstance(action, Return):
            continue
        path = path_join(path_join("states", state.name), "return")
        if not flow.returns:
            _error(errors, action.pos, path,
                   f"only a subflow returns: declare its returns at the top, returns: [{action.outcome}]")  # fmt: skip
        elif action.outcome not in flow.returns:
            hint = did_you_mean(action.outcome, flow.returns)
            _error(errors, action.pos, path,
                   f"'{action.outcome}' is not one of the returns ({', '.join(flow.returns)}){hint}")  # fmt: skip
    if flow.inputs and not flow.returns:
        first = flow.inputs[0]
        _error(errors, first.pos, path_join("inputs", first.name),
               "a flow with inputs is a subflow: declare what it returns, returns: [done]")  # fmt: skip
    return errors


def call_errors(flows: dict[str, f.Flow], flow: f.Flow) -> list[FlowError]:
    """Every call site of `flow` against the subflow it calls, among `flows` (the flows beside it)."""
    errors: list[FlowError] = []
    for state in flow.states.values():
        if isinstance(state.action, Call):
            _call_site(errors, flows, flow, state)
    # A loop is looked for in call sites that are right, and the size of a document across flows in flows
    # without such loops.
    return errors or loop_errors(flows, flow) or crossing_size_errors(flows, flow)


def _call_site(errors: list, flows: dict, flow: f.Flow, state: f.State) -> None:
    action: Call = state.action
    path = path_join(path_join("states", state.name), "subflow")
    sub = flows.get(action.flow)
    if sub is None:
        _error(
            errors,
            action.pos,
            path_join(path, "flow"),
            f"unknown flow '{action.flow}'{did_you_mean(action.flow, flows)}",
        )
        return
    if not sub.returns:
        _error(errors, action.pos, path_join(path, "flow"),
               f"flow '{sub.id}' is not a subflow (it declares no returns); hand a call over by redirect")  # fmt: skip
        return
    declared = {i.name for i in sub.inputs}
    given = {name for name, _, _ in action.inputs}
    for name, _, pos in action.inputs:
        if name not in declared:
            known = f"; its inputs: {', '.join(sorted(declared))}" if declared else "; it takes no inputs"
            _error(errors, pos, path_join(path_join(path, "inputs"), name),
                   f"unknown input '{name}' of subflow '{sub.id}'{did_you_mean(name, declared)}{known}")  # fmt: skip
    missing = [i.name for i in sub.inputs if i.required and i.name not in given]
    if missing:
        _error(errors, action.pos, path_join(path, "inputs"),
               f"subflow '{sub.id}' requires input{'s' if len(missing) > 1 else ''} {', '.join(missing)}")  # fmt: skip
    routes_path = path_join(path_join("states", state.name), "routes")
    for route in state.routes:
        if route.outcome not in sub.returns:
            _error(errors, route.pos, path_join(routes_path, route.outcome),
                   f"subflow '{sub.id}' never returns '{route.outcome}'{did_you_mean(route.outcome, sub.returns)};"
                   f" it returns: {', '.join(sub.returns)}")  # fmt: skip
    routed = {r.outcome for r in state.routes}
    unrouted = [o for o in sub.returns if o not in routed]
    if unrouted and state.next is None:
        _error(errors, action.pos, path,
               f"return{'s' if len(unrouted) > 1 else ''} {', '.join(unrouted)} of subflow '{sub.id}' "
               f"{'have' if len(unrouted) > 1 else 'has'} nowhere to go: route {'them' if len(unrouted) > 1 else 'it'}"
               " or add next: STATE")  # fmt: skip
    trail = _circle(flows, sub.id, flow.id)
    if trail is not None:
        shown = " -> ".join([flow.id, *trail])
        _error(errors, action.pos, path_join(path, "flow"),
               f"subflows call each other round in a circle ({shown}): a call could go past the depth limit"
               f" of {MAX_DEPTH}")  # fmt: skip
        return
    depth = _height(flows, sub.id, set())
    if depth > MAX_DEPTH:
        _error(errors, action.pos, path_join(path, "flow"),
               f"subflow calls nest {depth} deep from here, past the limit of {MAX_DEPTH}")  # fmt: skip


def _callees(flow: f.Flow) -> list[str]:
    return list(dict.fromkeys(s.action.flow for s in flow.states.values() if isinstance(s.action, Call)))


def _circle(flows: dict, start: str, target: str) -> list[str] | None:
    """The calls that lead from flow `start` back to flow `target`, or None."""
    todo, seen = [(start, [start])], {start}
    while todo:
        current, trail = todo.pop()
        if current == target:
            return trail
        for nxt in _callees(flows[current]) if current in flows else ():
            if nxt not in seen:
                seen.add(nxt)
                todo.append((nxt, [*trail, nxt]))
    return None


def _height(flows: dict, flow_id: str, passing: set) -> int:
    """How many frames deep calls go from entering `flow_id` (1: it calls nothing)."""
    if flow_id not in flows or flow_id in passing:
        return 1
    below = [_height(flows, c, passing | {flow_id}) for c in _callees(flows[flow_id])]
    return 1 + max(below, default=0)


def _silent(flow: f.Flow, state: f.State) -> list[str]:
    """The states of `flow` a call goes on to from `state` in the same document (it waits for nothing)."""
    action = state.action
    names = [c.target for c in state.when] + [v.target for v in state.split] + ([state.next] if state.next else [])
    if isinstance(action, f.Run):
        names += [r.target for r in state.routes] + [state.on_error.name if state.on_error else flow.error_state]
    elif isinstance(action, f.Redirect) and action.url is None and action.flow in (None, flow.id):
        names = [action.state or flow.start]
    elif action is not None:
        return []
    return [n for n in dict.fromkeys(names) if n in flow.states]


def loop_errors(flows: dict[str, f.Flow], flow: f.Flow) -> list[FlowError]:
    """Call sites of `flow` from which the call can go into the subflow, back out and round to the call
    again without waiting for anything: a document that never ends (the cycle check of a flow alone
    cannot see it)."""
    errors: list[FlowError] = []
    for state in flow.states.values():
        if isinstance(state.action, Call) and _comes_back(flows, flow.id, state.name):
            _error(errors, state.action.pos, path_join(path_join("states", state.name), "subflow"),
                   f"subflow '{state.action.flow}' can return without waiting for the caller, and the call comes "
                   "back here: a loop with nothing to wait for")  # fmt: skip
    return errors


def _comes_back(flows: dict, flow_id: str, name: str) -> bool:
    """Whether the call site reaches itself again, in and out of subflows, without a state that waits."""
    start = (flow_id, name, ())
    todo, seen = [start], {start}
    while todo:
        fid, current, stack = todo.pop()
        flow = flows.get(fid)
        state = flow.states.get(current) if flow is not None else None
        if state is None:
            continue
        action = state.action
        if isinstance(action, Call):
            sub = flows.get(action.flow)
            nexts = [(sub.id, sub.start, (*stack, (fid, current)))] if sub and len(stack) < MAX_DEPTH else []
        elif isinstance(action, Return):
            if not stack:
                continue
            caller_id, calling = stack[-1]
            caller = flows[caller_id]
            at = caller.states[calling]
            nexts = [(caller_id, t, stack[:-1]) for t in continuation(caller, at, action.outcome)]
        else:
            nexts = [(fid, n, stack) for n in _silent(flow, state)]
        for node in nexts:
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                todo.append(node)
    return False
