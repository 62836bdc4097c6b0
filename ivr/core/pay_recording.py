"""A payment never runs under a whole-call recording: the recording is paused before <Pay> and resumed after.

A whole-call recording (`call_recording: start`, ivr.core.call_recording) captures the card digits a
caller presses unless it is paused before <Pay> (PCI DSS). When the walk reaches a `pay:` state while
the session says a recording is running, it stops there, as at an `http:` step: the adapter asks
Twilio to pause the call's current recording (PauseBehavior skip) during the request, and only once
Twilio agreed is the document with <Pay> built. If Twilio refused, or the state says
`pause_recording: false` (the flow meant to pause it itself, and `check` refuses that flow), no card
data is asked for: the call takes the pay state's error route (its `internal-error` route, else
`next`). After the payment, the recording it paused is resumed before the document that follows;
a resume that fails is the journal's to show, and the call goes on.
"""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.call_recording import REST_STATUS, RecordingCall, recording_running
from ivr.core.effects import HookResult
from ivr.core.pay import HUNG_UP, SKIPPED_EVENT, Pay
from ivr.core.step import Pending, Step

__all__ = ["PAUSED_FOR", "after_pay", "before_pay"]

PAUSED_FOR = "paused_for_pay"  # the session's note of the pay state that paused the recording (to resume it)


def _call(engine, call, state: str, op: str) -> RecordingCall:
    return RecordingCall(
        name=f"call_recording:{op}",
        flow=engine.flow.id,
        state=state,
        op=op,
        status=REST_STATUS[op],
        pause_behavior="skip" if op == "pause" else None,  # the recording keeps no gap where the card was
        context={"call_sid": call.params.get("CallSid", ""), "key": f"{call.visit_key()}:{op}"},
    )


def before_pay(engine, call, state: f.State, variant: str, outcome, segments: list, rendered: list, redact: bool):
    """The walk reached `state`, a pay state, with its segment noted: None when no recording runs (go on);
    else the step that pauses it first (or, when the state may not, takes its error route)."""
    if not isinstance(state.action, Pay) or not recording_running(call.session):
        return None
    segments.pop()  # <Pay> is not in the document until the recording is paused
    rendered.pop()

    def refused() -> Step:
        engine._fire(call, SKIPPED_EVENT if SKIPPED_EVENT in engine.events else f.NEXT_EVENT)
        return engine._walk(call, "enter", outcome, segments, rendered, redact)

    if not state.action.pause_recording or call.started:  # may not pause, or cannot: Twilio has not started it yet
        return refused()

    def paused(result: HookResult) -> Step:
        if result.error is not None:
            return refused()
        call.session["call_recording"] = "paused"
        call.session[PAUSED_FOR] = call.key()
        call.changed()
        return engine._walk(call, variant, outcome, segments, rendered, redact)

    pending = Pending(_call(engine, call, state.name, "pause"), paused)
    return Step("", engine.flow.id, state.name, call.session, tuple(call.effects), outcome, pending,
                splits=tuple(call.splits))  # fmt: skip


def after_pay(engine, call, state: f.State, paid: str, go_on):
    """The payment's result came (`paid`: the pay state's key, flow/state): resume the recording this pay state
    paused, then `go_on()` (the walk)."""
    if not isinstance(state.action, Pay) or call.session.get(PAUSED_FOR) != paid:
        return go_on()
    call.session.pop(PAUSED_FOR, None)
    if call.params.get("Result") == HUNG_UP or call.params.get("CallStatus") == "completed":
        return go_on()  # the call is over: its recording ended with it, there is nothing to resume
    going = engine.flow.states.get(call.state)
    if going is not None and isinstance(going.action, Pay):  # another payment at once (a retry): stay paused
        call.session[PAUSED_FOR] = call.key()
        return go_on()

    def resumed(result: HookResult) -> Step:
        if result.error is None:
            call.session["call_recording"] = "on"
        call.changed()
        return go_on()

    pending = Pending(_call(engine, call, state.name, "resume"), resumed)
    return Step("", engine.flow.id, state.name, call.session, tuple(call.effects), None, pending,
                splits=tuple(call.splits))  # fmt: skip
