"""What a step of the engine returns: the answer to a webhook, or a hook to run before it can be
finished; and a new call's empty session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ivr.core.effects import HookCall, HookResult

__all__ = ["SESSION_VERSION", "Pending", "Step", "new_session", "past_max"]

SESSION_VERSION = 1


def new_session(flow_id: str) -> dict:
    """An empty session for a call that enters `flow_id`."""
    return {"v": SESSION_VERSION, "flow": flow_id, "vars": {}, "counts": {}, "visits": {}}


@dataclass(frozen=True, slots=True)
class Pending:
    """A hook the walk stopped at, and the continuation that goes on with its result. An `http:` state's
    request stops it the same way: `hook` is then an `ivr.core.http_step.HttpCall`."""

    hook: HookCall
    resume: Callable[[HookResult], Step]
    # The state's filler (ivr.core.filler.Filler), None without one; and, given the wait URL, the document
    # answered while its work goes on (what the walk rendered so far, the filler, a Redirect to that URL)
    # with the states it walked.
    filler: object | None = None
    waiting: Callable[[str], tuple[str, tuple[str, ...]]] | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What a webhook answers: the TwiML, the state the call is left in, the session and effects.

    While `pending` is set the document is not finished: the adapter runs `pending.hook` and calls
    `pending.resume(result)`, which returns the next step (perhaps pending again).
    """

    twiml: str
    flow: str
    state: str
    session: dict
    effects: tuple = ()
    outcome: str | None = None
    pending: Pending | None = None
    walked: tuple[str, ...] = ()  # every state the document renders, in order: the input-less ones too
    # The flow of each walked state when the document crosses into or out of a subflow; () when all are `flow`'s.
    walked_flows: tuple[str, ...] = ()
    # The (state, variant) chain of a document without templates: its flow version renders the same bytes
    # from it again (a retried webhook's answer is kept as this, not as the TwiML). None when templated.
    document: tuple[tuple[str, str], ...] | None = None
    splits: tuple[tuple[str, str], ...] = ()  # (split state, variant) of each split the document walked, in order
    # A no_input or no_match past the state's allowance: the call went to on_max (reports count it apart).
    reached_max: bool = False
    language: str | None = None  # the language the document speaks, for a flow that offers several (`document`)


def past_max(step: Step) -> Step:
    """The step, and every step its hooks lead to, marked as having gone past a state's retries."""
    if step.pending is None:
        return replace(step, reached_max=True)
    pending = step.pending
    return replace(step, reached_max=True, pending=replace(pending, resume=lambda got: past_max(pending.resume(got))))
