"""What `check` knows about recording the whole call: where a recording may be running, consent, PCI mode.

`may_record(flow)` is a forward may-analysis over the flow's edges: at the call's entry nothing is
recorded (an outbound call placed with Record=true is not offered by ivr); `start` and `resume` turn a
recording on, a successful `pause` or `stop` turns it off (their error route keeps what was before);
a subflow call turns it on if the subflow (or, unknown, any subflow) may; states entered from outside
the flow's graph (redirects from other flows) are entered as `entered_running` says. A state is in the
result when some path from the call's entry reaches it with a recording that may be running.
"""

from __future__ import annotations

from collections.abc import Iterator

from ivr.core import flow as f
from ivr.core.call_recording import ControlRecording
from ivr.core.hints import path_join
from ivr.core.pay import Pay
from ivr.core.subflow import Call, Return
from ivr.errors import FlowError

__all__ = ["may_record", "pay_errors", "recording_warnings", "transcription_warnings"]

_UNANNOUNCED = ("a call can reach this recording {op} without hearing that it is recorded ({path}): mark the state "
                "whose prompt says so with announces_recording: true, before it or here")  # fmt: skip
_TWICE = ("a recording started earlier may still be running when a call comes here: Twilio would record it twice; "
          "stop it before, or start it where calls pass once")  # fmt: skip
_SAME_DOCUMENT = ("the {op} follows the start in the same document ({path}): Twilio has not started the recording "
                  "when the request is made, so it fails; let a state that waits (gather) come between")  # fmt: skip
_NOTHING_RUNS = ("no recording can be running when a call comes here (nothing starts one before): Twilio would "
                 "refuse the {op}, and every call would take the error route")  # fmt: skip
_PCI = "IVR_PCI_MODE is on: Twilio's PCI mode turns transcriptions off, so transcribe is not sent (no text will come)"


def _turns_on(state: f.State) -> bool:
    return state.call_recording is not None and state.call_recording.turns_on


def _edges(flow: f.Flow, state: f.State) -> Iterator[tuple[str, bool]]:
    """(successor, whether the edge is the state's error route) for each edge out of `state`, in this flow."""
    names = [r.target for r in state.routes if r.target not in f.SPECIAL_TARGETS]
    names += [c.target for c in state.when] + [v.target for v in state.split] + [state.next] * bool(state.next)
    names += [r.target for r in state.answered_by]
    action = state.action
    if isinstance(action, f.Gather):
        names += [h.on_max.name for h in (state.no_input, state.no_match) if h.on_max]
    elif isinstance(action, f.Redirect) and action.url is None and action.flow in (None, flow.id):
        names.append(action.state or flow.start)
    for name in dict.fromkeys(names):
        if name in flow.states:
            yield name, False
    if isinstance(action, f.Run):
        failed = state.on_error.name if state.on_error else flow.error_state
        if failed in flow.states:
            yield failed, True


def _out(state: f.State, running: bool, error_edge: bool, flows: dict | None) -> bool:
    """Whether a recording may run after `state`, entered with `running`, leaving by that edge."""
    rec = state.call_recording
    if rec is not None and not error_edge:
        if rec.turns_on:
            return True
        if isinstance(state.action, ControlRecording):  # a pause or stop that Twilio carried out
            return False
    if isinstance(state.action, Call):
        called = (flows or {}).get(state.action.flow)
        if called is None:
            return True  # unknown subflow: it may start one
        return running or any(_turns_on(s) for s in called.states.values())
    return running


def may_record(
    flow: f.Flow, flows: dict | None = None, *, entered_running: bool = False, start_running: bool = False
) -> frozenset[str]:
    """The states at whose entry a whole-call recording may be running (forward may-analysis over the flow's
    edges; `flows` resolves subflows, unknown ones are assumed to start a recording; states a redirect from
    another flow may enter are entered with `entered_running`)."""
    entries = {flow.start: start_running, **({flow.error_state: False} if flow.error_state in flow.states else {})}
    for other in (flows or {}).values():  # redirects from other flows into this one
        for state in other.states.values():
            action = state.action
            if other.id != flow.id and isinstance(action, f.Redirect) and action.flow == flow.id:
                entries[action.state or flow.start] = entries.get(action.state or flow.start, False) or entered_running
    value = {name: on for name, on in entries.items() if name in flow.states}  # reached states: may it run there?
    todo = list(value)
    while todo:  # a fixpoint over two values: a state is visited again only when it turns from False to True
        name = todo.pop()
        state = flow.states[name]
        for succ, error_edge in _edges(flow, state):
            out = _out(state, value[name], error_edge, flows)
            if succ not in value or (out and not value[succ]):
                value[succ] = value.get(succ, False) or out
                todo.append(succ)
    return frozenset(name for name, on in value.items() if on)


def _path_to(flow: f.Flow, target: str, *, through) -> list[str] | None:
    """A shortest path from the flow's start to `target` whose states before it all pass `through`; None if none."""
    previous: dict[str, str | None] = {flow.start: None}
    todo = [flow.start]
    while todo:
        name = todo.pop(0)
        if name == target:
            path = [name]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1]
        if not through(name):
            continue
        for succ, _ in _edges(flow, flow.states[name]):
            if succ not in previous:
                previous[succ] = name
                todo.append(succ)
    return None


def _inline(state: f.State) -> bool:
    """Whether the call goes on from `state` in the same document (it waits for no one)."""
    return state.action is None or (isinstance(state.action, f.Run) and not isinstance(state.action, Call | Return))


def recording_warnings(flow: f.Flow, flows: dict | None = None) -> list[FlowError]:
    """check's warnings about recording the call: a start or resume no announcement comes before, a start while one
    may already run, and a pause or stop requested in the document that starts the recording."""
    out: list[FlowError] = []

    def add(pos: f.Pos, path: str, message: str) -> None:
        out.append(FlowError(pos.file, pos.line, pos.column, path, message, "warning"))

    running = may_record(flow, flows)
    for name, state in flow.states.items():
        rec = state.call_recording
        if rec is None:
            continue
        path = path_join(path_join("states", name), "call_recording")
        if rec.turns_on and not state.announces_recording:
            unannounced = _path_to(flow, name, through=lambda n: not flow.states[n].announces_recording)
            if unannounced is not None:
                add(rec.pos, path, _UNANNOUNCED.format(op=rec.op, path=" -> ".join(unannounced)))
        if rec.op == "start" and name in running:
            add(rec.pos, path, _TWICE)
        if isinstance(state.action, ControlRecording):
            for before in _inline_starts(flow, name):
                add(rec.pos, path, _SAME_DOCUMENT.format(op=rec.op, path=f"{before} -> ... -> {name}"))
            if rec.op in ("pause", "stop") and name not in running and not _called_recording(flow, flows):
                add(rec.pos, path, _NOTHING_RUNS.format(op=rec.op))
    return out


def _inline_starts(flow: f.Flow, name: str) -> list[str]:
    """The states that start the recording in the same document as `name` (through states that wait for no one)."""
    preds: dict[str, list[str]] = {n: [] for n in flow.states}
    for n, state in flow.states.items():
        for succ, _ in _edges(flow, state):
            preds[succ].append(n)
    seen, todo, found = {name}, [name], []
    while todo:
        for p in preds[todo.pop()]:
            state = flow.states[p]
            if p in seen or not _inline(state):
                continue
            seen.add(p)
            if state.call_recording is not None and state.call_recording.op == "start":
                found.append(p)
            else:
                todo.append(p)
    return sorted(found)


def transcription_warnings(flow: f.Flow) -> list[FlowError]:
    """Under IVR_PCI_MODE: every `record` that asks for a transcription, which Twilio will not make."""
    out = []
    for name, state in flow.states.items():
        if isinstance(state.action, f.Record) and state.action.transcribe:
            pos = state.action.pos
            path = path_join(path_join(path_join("states", name), "record"), "transcribe")
            out.append(FlowError(pos.file, pos.line, pos.column, path, _PCI, "warning"))
    return out


_PAY_RECORDED = ("a whole-call recording may be running when a call comes here ({path}) and this payment may not pause "
                 "it (pause_recording: false): the card digits would be recorded; pause it first (call_recording: "
                 "pause), or let the payment pause it")  # fmt: skip
_PAY_SAME_DOCUMENT = ("the recording starts in the same document as this payment ({path}): Twilio has not started it "
                      "when the payment asks for it to be paused, so no card could be taken; let a state that waits "
                      "(gather) come between")  # fmt: skip


def pay_errors(flow: f.Flow, flows: dict | None = None) -> list[FlowError]:
    """What `check` refuses of a payment under a whole-call recording (PCI DSS): a pay state that may not pause a
    recording that may be running there, and one reached in the document that starts the recording."""
    out: list[FlowError] = []
    running = None
    for name, state in flow.states.items():
        if not isinstance(state.action, Pay):
            continue
        path = path_join(path_join("states", name), "pay")
        if running is None:  # a subflow is entered recording when a flow may call it while recording
            running = may_record(flow, flows, start_running=_called_recording(flow, flows))
        if state.call_recording is not None and state.call_recording.turns_on:
            out.append(_error(state.action.pos, path, _PAY_SAME_DOCUMENT.format(path=name)))
        if name in running and not state.action.pause_recording:
            recorded = _path_to(flow, name, through=lambda n: True) or [name]
            out.append(_error(state.action.pos, path, _PAY_RECORDED.format(path=" -> ".join(recorded))))
        for before in _inline_starts(flow, name):
            out.append(_error(state.action.pos, path, _PAY_SAME_DOCUMENT.format(path=f"{before} -> ... -> {name}")))
    return out


def _called_recording(flow: f.Flow, flows: dict | None) -> bool:
    """Whether some flow may call `flow` (a subflow) while a whole-call recording may be running."""
    for other in (flows or {}).values():
        calls = [n for n, s in other.states.items() if isinstance(s.action, Call) and s.action.flow == flow.id]
        if calls and other.id != flow.id and set(calls) & may_record(other, flows):
            return True
    return False


def _error(pos: f.Pos, path: str, message: str) -> FlowError:
    return FlowError(pos.file, pos.line, pos.column, path, message, "error")
