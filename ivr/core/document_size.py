"""How big a TwiML document grows, for the loader and `check` alike (through `ivr.core.validate`).

One home for the estimate of a state's verbs and of the chain of states rendered with it in one flow
(a state that waits for nothing is rendered with the states after it). Twilio refuses a body over 64 kB.
"""

from __future__ import annotations

from ivr.core import flow as f

__all__ = ["MAX_DOCUMENT_BYTES", "chain_bytes", "inline_successors", "state_bytes"]

MAX_DOCUMENT_BYTES = 64_000  # Twilio refuses a TwiML body over 64 kB (error 11750)
_VERB_OVERHEAD = 120  # bytes of markup a verb adds around its text, generously


def _prompt_bytes(prompt) -> int:
    if isinstance(prompt, f.Say):
        return len(prompt.text.source.encode("utf-8")) + _VERB_OVERHEAD
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
