"""Checks on loaded flows beyond their shape: targets, outcomes, cycles, sizes, Twilio's limits.

Every problem is returned at once, in the loader's format; nothing here raises.
"""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_checks import agent_route_errors
from ivr.core.caller_input import model_input_errors
from ivr.core.document_size import MAX_DOCUMENT_BYTES, chain_bytes, inline_successors
from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean, path_join
from ivr.core.http_step import unrouted
from ivr.core.outcomes import normalize_speech
from ivr.core.pay import FAILED, PAY_RESULTS, SUCCESS, Pay
from ivr.core.subflow import Call
from ivr.core.subflow_checks import call_errors, subflow_errors
from ivr.errors import FlowError

__all__ = ["MAX_DOCUMENT_BYTES", "validate_flow", "validate_flows"]

_ACTION_OUTCOMES = {
    f.Dial: f.DIAL_OUTCOMES,
    f.Record: f.RECORD_OUTCOMES,
    f.Enqueue: f.ENQUEUE_OUTCOMES,
    Pay: PAY_RESULTS,
}


def validate_flows(flows: dict[str, f.Flow], *, closed: bool = True, across_only: bool = False) -> list[FlowError]:
    """Check every flow; with closed=True a redirect to a flow not in `flows` is an error.
    across_only: only what crosses flows (each flow was checked alone already)."""
    errors: list[FlowError] = []
    for flow in flows.values():
        if across_only:
            checker = _Checker(flow, flows)
            for state in flow.states.values():
                if isinstance(state.action, f.Redirect):
                    checker.redirect(state.action, path_join("states", state.name))
            errors.extend(checker.errors + call_errors(flows, flow))
        else:
            errors.extend(validate_flow(flow, flows if closed else None))
    return errors + (_redirect_loops(flows) if closed else [])


def _redirect_loops(flows: dict[str, f.Flow]) -> list[FlowError]:
    """Flows that send a call round in a circle of redirects with nothing to wait for (each flow
    alone is checked by its own cycle check; this sees the circles that cross flows)."""

    checkers = {fid: _Checker(flow, None) for fid, flow in flows.items()}

    def successors(fid: str, name: str):
        flow = flows[fid]
        state = flow.states.get(name)
        if state is None:
            return []
        action = state.action
        if isinstance(action, f.Redirect) and action.url is None and action.flow in flows and action.flow != fid:
            other = flows[action.flow]
            return [(other.id, action.state or other.start)]
        return [(fid, s.name) for s in checkers[fid]._silent_successors(state)]

    errors: list[FlowError] = []
    seen: set = set()
    for fid, flow in flows.items():
        for name, state in flow.states.items():
            if not (isinstance(state.action, f.Redirect) and state.action.flow not in (None, fid)):
                continue
            # Follow where this redirect leads without waiting; coming back here is a loop.
            start = (fid, name)
            todo, visited = [(start, [start])], {start}
            while todo:
                node, trail = todo.pop()
                for nxt in successors(*node):
                    if nxt == start:
                        loop = trail + [nxt]
                        key = frozenset(loop)
                        if key not in seen:
                            seen.add(key)
                            shown = " -> ".join(f"{a}/{b}" for a, b in loop)
                            pos = state.action.pos
                            message = f"redirects go round in a circle with nothing to wait for: {shown}"
                            errors.append(FlowError(pos.file, pos.line, pos.column, f"states.{name}.redirect", message))
                    elif nxt not in visited and nxt[0] in flows:
                        visited.add(nxt)
                        todo.append((nxt, trail + [nxt]))
    return errors


def validate_flow(flow: f.Flow, flows: dict[str, f.Flow] | None = None) -> list[FlowError]:
    """Check one flow's graph; `flows` (all loaded flows) lets redirects to other flows be checked."""
    return _Checker(flow, flows).run()


class _Checker:
    def __init__(self, flow: f.Flow, flows: dict[str, f.Flow] | None) -> None:
        self.flow = flow
        self.flows = flows
        self.errors: list[FlowError] = []

    def error(self, pos: Pos | None, path: str, message: str) -> None:
        pos = pos or self.flow.pos
        self.errors.append(FlowError(pos.file, pos.line, pos.column, path, message))

    def target(self, name: str | None, pos: Pos | None, path: str) -> None:
        if name not in (None, *f.BUILT_IN) and name not in self.flow.states:
            self.error(pos, path, f"unknown state '{name}'{did_you_mean(name, self.flow.states)}")

    def run(self) -> list[FlowError]:
        flow = self.flow
        self.target(flow.start, flow.start_pos, "start")
        self.target(flow.error_state, flow.error_state_pos, "error_state")
        # Each on_max is checked once where it is written, however many handlers inherit it.
        on_max = {flow.defaults.no_input.on_max, flow.defaults.no_match.on_max}
        for state in flow.states.values():
            if isinstance(state.action, f.Gather):
                on_max |= {state.no_input.on_max, state.no_match.on_max}
        for target in sorted((t for t in on_max if t), key=lambda t: (t.pos.line, t.pos.column)):
            self.target(target.name, target.pos, target.path)
        # The flow's ways out are checked once, where defaults.routes writes them.
        for route in flow.defaults.routes:
            if route.target not in f.SPECIAL_TARGETS:
                self.target(route.target, route.target_pos, path_join("defaults.routes", route.outcome))
        for state in flow.states.values():
            self.state(state)
        self.cycles()
        self.chain_sizes()
        self.reject_placement()
        errors = self.errors + subflow_errors(flow) + model_input_errors(flow)
        return errors + (call_errors(self.flows, flow) if self.flows is not None else [])

    # -- one state ---------------------------------------------------------------------------

    def state(self, state: f.State) -> None:
        path = path_join("states", state.name)
        for route in state.routes:
            route_path = path_join(path_join(path, "routes"), route.outcome)
            if route.inherited:
                continue
            if route.target in f.SPECIAL_TARGETS:
                if not isinstance(state.action, f.Gather):
                    self.error(
                        route.target_pos, route_path, f"'{route.target}' works only in a menu (a state with gather)"
                    )
                continue
            self.target(route.target, route.target_pos, route_path)
        self.target(state.next, state.next_pos, path_join(path, "next"))
        routed = {r.outcome for r in state.routes}
        for route in state.answered_by:
            key_path = path_join(path_join(path, "answered_by"), route.outcome)
            self.target(route.target, route.target_pos, key_path)
            if route.outcome in routed:
                self.error(route.pos, key_path, f"'{route.outcome}' is also one of this state's routes; rename one")
        for variant in state.split:
            self.target(variant.target, variant.pos, path_join(path_join(path, "split"), variant.target))
        for i, cond in enumerate(state.when):
            self.target(cond.target, cond.target_pos, path_join(path_join(path_join(path, "when"), i), "next"))
        if state.when and state.next is None:
            self.error(state.when[0].pos, path_join(path, "when"), "conditions need a default: add next: STATE")
        action = state.action
        if action is None:
            if state.routes:
                self.error(
                    state.routes[0].pos,
                    path_join(path, "routes"),
                    "routes need something to wait for (gather, record, dial, enqueue); use next",
                )
            # A next that could not be read, or conditions without a default, are reported already.
            if state.next is None and state.next_pos is None and not state.when and state.split_pos is None:
                self.error(
                    state.pos, path, "the state waits for nothing and has no next: add next: STATE or hangup: true"
                )
        elif isinstance(action, f.Gather):
            self.gather(state, action, path)
        elif isinstance(action, f.Run):
            for route in state.routes:
                if route.outcome in (f.NEXT_EVENT, f.ERROR_EVENT, *f.RETRY_EVENTS):
                    where = "on_error" if route.outcome == f.ERROR_EVENT else route.outcome
                    self.error(
                        route.pos,
                        path_join(path_join(path, "routes"), route.outcome),
                        f"'{route.outcome}' is reserved; use the state's {where}: key",
                    )
            missing = unrouted(state)  # outcomes of a hook (or an HTTP step) with nowhere to go
            if missing is not None:
                self.error(action.pos, path_join(path, missing[0]), missing[1])
            if state.on_error is not None:
                self.target(state.on_error.name, state.on_error.pos, state.on_error.path)
        elif isinstance(action, Agent):
            self.errors += agent_route_errors(state, path)
        elif isinstance(action, (f.Dial, f.Record, f.Enqueue, Pay)):
            outcomes = _ACTION_OUTCOMES[type(action)]
            # Routes may name any outcome of the action; those it can end with need one (or next).
            needed = f.dial_outcomes(action) if isinstance(action, f.Dial) else outcomes
            needed = (SUCCESS, *FAILED) if isinstance(action, Pay) else needed  # after a hang-up nothing is heard
            if isinstance(action, f.Dial) and action.screen is not None:
                outcomes, needed = (*outcomes, f.DECLINED), (*needed, f.DECLINED)
            for route in state.routes:
                if route.outcome not in outcomes:
                    self.error(
                        route.pos,
                        path_join(path_join(path, "routes"), route.outcome),
                        f"not an outcome of {type(action).__name__.lower()}"
                        f"{did_you_mean(route.outcome, outcomes)}; outcomes: {', '.join(outcomes)}",
                    )
            routed = {r.outcome for r in state.routes}
            missing = [o for o in needed if o not in routed]
            if missing and state.next is None:
                self.error(
                    action.pos,
                    path,
                    f"outcome{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                    f"{'have' if len(missing) > 1 else 'has'} nowhere to go: add next: STATE",
                )
        elif not isinstance(action, Call):  # a subflow's call: its routes are checked with the subflow
            what = type(action).__name__.lower()
            for key, present, pos in (
                ("routes", state.routes, state.routes[0].pos if state.routes else None),
                ("next", state.next, state.next_pos),
                ("when", state.when, state.when[0].pos if state.when else None),
            ):
                if present:
                    self.error(pos, path_join(path, key), f"nothing comes after {what}; remove {key}")
            if isinstance(action, f.Redirect):
                self.redirect(action, path)

    def gather(self, state: f.State, gather: f.Gather, path: str) -> None:
        own = [r for r in state.routes if not r.inherited]
        if gather.save_as is not None:
            if state.next is None and not any(r.outcome == f.VALID_EVENT for r in own):
                self.error(gather.pos, path_join(path, "gather"), "collected input needs routes.valid or next")
        elif not own and state.next is None:
            self.error(gather.pos, path_join(path, "gather"), "a gather needs routes (or next for any input)")
            return
        finish = "#" if gather.finish_on_key is None else gather.finish_on_key
        routes_path = path_join(path, "routes")
        for route in own:
            key_path = path_join(routes_path, route.outcome)
            if route.outcome == f.VALID_EVENT and gather.save_as is None:
                self.error(route.pos, key_path, "'valid' is the outcome of collected input: add gather.save_as")
            elif route.outcome in (f.NEXT_EVENT, f.ERROR_EVENT, *f.RETRY_EVENTS):
                self.error(route.pos, key_path, f"'{route.outcome}' is reserved; use the state's {route.outcome}: key")
            elif f.is_digit_key(route.outcome):
                if finish and finish in route.outcome:
                    default = " (the default)" if gather.finish_on_key is None else ""
                    self.error(
                        route.pos,
                        key_path,
                        f"'{finish}' is the gather's finish key{default} and can never be pressed as input;"
                        f' set gather.finish_on_key to "" or another key',
                    )
                if gather.input and "dtmf" not in gather.input:
                    self.error(route.pos, key_path, "a key route needs gather.input to include dtmf")
                if route.synonyms and "speech" not in (gather.input or ("speech",)):
                    self.error(route.pos, key_path, "synonyms need gather.input to include speech")
            else:
                if not normalize_speech(route.outcome):
                    self.error(route.pos, key_path, "a spoken route needs words")
                if gather.input and "speech" not in gather.input:
                    self.error(route.pos, key_path, "a spoken route needs gather.input to include speech")

    def redirect(self, action: f.Redirect, path: str) -> None:
        rpath = path_join(path, "redirect")
        if action.flow is None:
            self.target(action.state, action.pos, path_join(rpath, "state"))
            return
        if self.flows is None:
            return
        other = self.flows.get(action.flow)
        if other is None:
            self.error(
                action.pos,
                path_join(rpath, "flow"),
                f"unknown flow '{action.flow}'{did_you_mean(action.flow, self.flows)}",
            )
        elif action.state is not None and action.state not in other.states:
            self.error(
                action.pos,
                path_join(rpath, "state"),
                f"flow '{action.flow}' has no state '{action.state}'{did_you_mean(action.state, other.states)}",
            )

    # -- the graph ---------------------------------------------------------------------------

    def _inline_successors(self, state: f.State):
        """States rendered in the same document after this one (it waits for nothing)."""
        return inline_successors(self.flow, state)

    def _silent_successors(self, state: f.State):
        """States the call reaches without waiting for anyone: inline, or through a redirect in this flow."""
        action = state.action
        if isinstance(action, f.Redirect) and action.url is None and action.flow in (None, self.flow.id):
            name = action.state or self.flow.start
            return [self.flow.states[name]] if name in self.flow.states else []
        return self._inline_successors(state)

    def cycles(self) -> None:
        color: dict[str, int] = {}  # 1 on the stack, 2 done
        reported: set[frozenset] = set()

        def visit(state: f.State, stack: list[str]) -> None:
            color[state.name] = 1
            stack.append(state.name)
            for succ in self._silent_successors(state):
                if color.get(succ.name) == 1:
                    loop = stack[stack.index(succ.name) :] + [succ.name]
                    key = frozenset(loop)
                    if key not in reported:
                        reported.add(key)
                        self.error(
                            succ.pos,
                            path_join("states", succ.name),
                            "these states wait for nothing and loop forever: "
                            + " -> ".join(loop)
                            + " (add a gather or record so the caller can act)",
                        )
                elif succ.name not in color:
                    visit(succ, stack)
            stack.pop()
            color[state.name] = 2

        for state in self.flow.states.values():
            if state.name not in color:
                visit(state, [])

    def chain_sizes(self) -> None:
        if any("loop forever" in e.message for e in self.errors):
            return
        memo: dict[str, int] = {}

        def size(state: f.State) -> int:
            return chain_bytes(self.flow, state, memo)

        oversize = [s for s in self.flow.states.values() if size(s) > MAX_DOCUMENT_BYTES]
        # Report where an oversize chain starts, not at every state inside it.
        inside = {succ.name for s in oversize for succ in self._inline_successors(s)}
        for state in oversize:
            if state.name not in inside:
                self.error(
                    state.pos,
                    path_join("states", state.name),
                    f"the states from here up to the next one that waits make a TwiML document of about"
                    f" {size(state)} bytes, over Twilio's 64 kB; add a gather or split the text",
                )

    def reject_placement(self) -> None:
        flow = self.flow
        silent: set[str] = set()  # states reached from the start before any verb is emitted
        todo = [flow.start] if flow.start in flow.states else []
        while todo:
            name = todo.pop()
            state = flow.states[name]
            if name in silent:
                continue
            silent.add(name)
            if not state.prompts and state.action is None:
                todo.extend(s.name for s in self._inline_successors(state))
        for state in flow.states.values():
            if not isinstance(state.action, f.Reject):
                continue
            path = path_join(path_join("states", state.name), "reject")
            if state.prompts or state.name not in silent:
                self.error(
                    state.action.pos,
                    path,
                    "reject only works as the first verb of a call's first document (it avoids answering);"
                    " reach it from the start without prompts, or use hangup",
                )
                continue
            for other in flow.states.values():
                if other.name in silent and not other.prompts and other.action is None:
                    continue
                if state.name in _targets(other):
                    self.error(
                        state.action.pos,
                        path,
                        f"reject is reached from state '{other.name}' after the call was answered; use hangup there",
                    )
                    break


def _targets(state: f.State) -> set[str]:
    out = {x.target for x in (*state.routes, *state.when, *state.split)} | ({state.next} - {None})
    for handler in (state.no_input, state.no_match):
        if handler.on_max and isinstance(state.action, f.Gather):
            out.add(handler.on_max.name)
    return out
