"""How big a TwiML document grows, for the loader and `check` alike (through `ivr.core.validate`).

One home for the estimate of a state's verbs and of the chain of states rendered with it in one flow
(a state that waits for nothing is rendered with the states after it), and for the documents that cross
flows: a call renders the calling state, then the subflow's start chain; a return renders the return
state, then the caller's continuation (the calling state's route for what it returned, or its next), all
in one document. Twilio refuses a body over 64 kB.
"""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.hints import path_join
from ivr.core.ssml import walk
from ivr.core.subflow import MAX_DEPTH, Call, Return
from ivr.errors import FlowError

__all__ = ["MAX_DOCUMENT_BYTES", "chain_bytes", "continuation", "crossing_size_errors", "inline_successors",
           "state_bytes"]  # fmt: skip

MAX_DOCUMENT_BYTES = 64_000  # Twilio refuses a TwiML body over 64 kB (error 11750)
_VERB_OVERHEAD = 120  # bytes of markup a verb adds around its text, generously
_SSML_OVERHEAD = 60  # and an SSML part around its own (<say-as interpret-as="telephone">...</say-as>)
_ADVICE = "over Twilio's 64 kB; add a gather or split the text"


def _prompt_bytes(prompt) -> int:
    if isinstance(prompt, f.Say):
        return len(prompt.text.source.encode("utf-8")) + _VERB_OVERHEAD + _SSML_OVERHEAD * len(walk(prompt.parts))
    if isinstance(prompt, f.Play):
        return len(prompt.url.source.encode("utf-8")) + _VERB_OVERHEAD
    return _VERB_OVERHEAD


def state_bytes(state: f.State) -> int:
    """About how many bytes one state's verbs add to a document (a gather's retry documents counted too)."""
    own = sum(_prompt_bytes(p) for p in state.prompts) + _VERB_OVERHEAD
    if isinstance(state.action, f.Gather):
        retry = max(sum(_prompt_bytes(p) for p in h.prompts) for h in (state.no_input, state.no_match))
        reprompt = sum(_prompt_bytes(p) for p in state.reprompt or state.prompts)
        own = max(own, retry + reprompt + _VERB_OVERHEAD)
    return own


def inline_successors(flow: f.Flow, state: f.State) -> list[f.State]:
    """States rendered in the same document after this one (it waits for nothing)."""
    names = [c.target for c in state.when] + [v.target for v in state.split] + ([state.next] if state.next else [])
    if isinstance(state.action, f.Run):  # a hook answers during the request: what it picks follows inline
        names += [r.target for r in state.routes] + ([state.on_error.name] if state.on_error else [])
    elif state.action is not None:
        return []
    return [flow.states[n] for n in dict.fromkeys(names) if n in flow.states]


def chain_bytes(flow: f.Flow, state: f.State, memo: dict[str, int]) -> int:
    """The biggest document from `state` on, up to the states that wait, within `flow` (a cycle, reported
    by the flow's own check, counts once)."""
    if state.name not in memo:
        memo[state.name] = 0  # on the way: a cycle back here adds nothing
        after = max((chain_bytes(flow, s, memo) for s in inline_successors(flow, state)), default=0)
        memo[state.name] = state_bytes(state) + after
    return memo[state.name]


def continuation(caller: f.Flow, calling: f.State, outcome: str) -> list[str]:
    """The states of `caller` a return of `outcome` to its calling state goes on to: the route, else next."""
    routed = [r.target for r in calling.routes if r.outcome == outcome] or [calling.next]
    return [t for t in routed if t in caller.states]


class _Documents:
    """The documents of `flows` that cross from one flow to another, estimated with the same sizes."""

    def __init__(self, flows: dict[str, f.Flow]) -> None:
        self.flows = flows
        self.memo: dict[tuple, int] = {}
        self.prefixes: dict[str, dict[str, int]] = {}
        self.chains: dict[str, dict[str, int]] = {}
        self.calls: dict[str, list[tuple[f.Flow, f.State]]] | None = None

    def chain(self, flow: f.Flow, name: str) -> int:
        """What the flow's own check counts for the chain from `name` on."""
        return chain_bytes(flow, flow.states[name], self.chains.setdefault(flow.id, {}))

    def callers(self, sub_id: str) -> list[tuple[f.Flow, f.State]]:
        """The call sites of subflow `sub_id`: each calling flow and state."""
        if self.calls is None:
            self.calls = {}
            for flow in self.flows.values():
                for s in flow.states.values():
                    if isinstance(s.action, Call):
                        self.calls.setdefault(s.action.flow, []).append((flow, s))
        return self.calls.get(sub_id, [])

    def in_every_call(self, flow: f.Flow, name: str) -> bool:
        """Whether state `name` of subflow `flow` is rendered in the document of each call of it (reached
        from its start without waiting): that document is measured, and reported, at the call sites."""
        if not flow.returns or not self.callers(flow.id) or flow.start not in flow.states:
            return False
        todo, seen = [flow.states[flow.start]], {flow.start}
        while todo:
            state = todo.pop()
            if state.name == name:
                return True
            for succ in inline_successors(flow, state):
                if succ.name not in seen:
                    seen.add(succ.name)
                    todo.append(succ)
        return False

    def prefix(self, flow: f.Flow, name: str) -> int:
        """The biggest chain of `flow` that leads to state `name` in one document, `name` included."""
        if flow.id not in self.prefixes:
            before: dict[str, list[str]] = {}
            for state in flow.states.values():
                for succ in inline_successors(flow, state):
                    before.setdefault(succ.name, []).append(state.name)
            memo: dict[str, int] = {}

            def up(current: str, passing: frozenset) -> int:
                if current in passing:  # a loop: reported by the flow's own check
                    return 0
                if current not in memo:
                    leading = (up(p, passing | {current}) for p in before.get(current, ()))
                    memo[current] = state_bytes(flow.states[current]) + max(leading, default=0)
                return memo[current]

            self.prefixes[flow.id] = {name: up(name, frozenset()) for name in flow.states}
        return self.prefixes[flow.id][name]

    def onward(self, flow_id: str, name: str, stack: tuple, passing: frozenset = frozenset()) -> int:
        """The biggest document from state `name` of `flow_id` on, up to the states that wait, into subflows
        and back out; `stack`: the calls the walk is inside (past them, a return may go to any caller)."""
        key = (flow_id, name, stack)
        if key in self.memo:
            return self.memo[key]
        flow = self.flows.get(flow_id)
        state = flow.states.get(name) if flow is not None else None
        if state is None or key in passing:  # a loop (reported elsewhere) counts once
            return 0
        action = state.action
        if isinstance(action, Call):
            sub = self.flows.get(action.flow)
            ok = sub is not None and sub.start in sub.states and len(stack) < MAX_DEPTH
            nexts = [(sub.id, sub.start, (*stack, (flow_id, name)))] if ok else []
        elif isinstance(action, Return):
            frames = [stack[-1]] if stack else [(c.id, s.name) for c, s in self.callers(flow_id)]
            nexts = []
            for cid, calling in frames:
                caller = self.flows[cid]
                nexts += [(cid, t, stack[:-1]) for t in continuation(caller, caller.states[calling], action.outcome)]
        else:
            nexts = [(flow_id, s.name, stack) for s in inline_successors(flow, state)]
        after = max((self.onward(*n, passing | {key}) for n in nexts), default=0)
        self.memo[key] = state_bytes(state) + after
        return self.memo[key]


def crossing_size_errors(flows: dict[str, f.Flow], flow: f.Flow) -> list[FlowError]:
    """The documents that cross into or out of `flow` over 64 kB, each reported once: where it enters a
    subflow (a call site) or where it leaves one (a return state). A chain over 64 kB within one flow is
    reported by that flow's own check, and a document a call of `flow` renders from its start at that
    call, not again here."""
    docs = _Documents(flows)
    errors: list[FlowError] = []
    for state in flow.states.values():
        action = state.action
        if isinstance(action, Call | Return) and docs.in_every_call(flow, state.name):
            continue
        if isinstance(action, Call):
            sub = flows.get(action.flow)
            if sub is None or not sub.returns or sub.start not in sub.states:
                continue
            before = docs.prefix(flow, state.name)
            if before > MAX_DOCUMENT_BYTES or docs.chain(sub, sub.start) > MAX_DOCUMENT_BYTES:
                continue
            total = before + docs.onward(sub.id, sub.start, ((flow.id, state.name),))
            if total > MAX_DOCUMENT_BYTES:
                errors.append(_error(action.pos, path_join(path_join("states", state.name), "subflow"),
                                     f"the states of flow '{flow.id}' up to here and of subflow '{sub.id}' from its"
                                     f" start, up to the next one that waits, make a TwiML document of about"
                                     f" {total} bytes, {_ADVICE}"))  # fmt: skip
        elif isinstance(action, Return) and flow.returns:
            before = docs.prefix(flow, state.name)
            if before > MAX_DOCUMENT_BYTES:
                continue
            ways = [(docs.onward(caller.id, t, ()), caller, calling) for caller, calling in docs.callers(flow.id)
                    for t in continuation(caller, calling, action.outcome)
                    if docs.chain(caller, t) <= MAX_DOCUMENT_BYTES]  # fmt: skip
            if not ways:
                continue
            after, caller, calling = max(ways, key=lambda way: way[0])
            if before + after > MAX_DOCUMENT_BYTES:
                errors.append(_error(action.pos, path_join(path_join("states", state.name), "return"),
                                     f"the states of subflow '{flow.id}' up to here and of flow '{caller.id}' after"
                                     f" its call in state '{calling.name}', up to the next one that waits, make a"
                                     f" TwiML document of about {before + after} bytes, {_ADVICE}"))  # fmt: skip
    return errors


def _error(pos, path: str, message: str) -> FlowError:
    return FlowError(pos.file, pos.line, pos.column, path, message)
