"""The importer's driver: a Studio Flow Definition in, the text of a flow file and its reports out.

Widgets are converted in the order a call meets them (breadth first from the trigger), so that a
widget that takes over the next one (a gather that absorbs the split reading its digits) does so
before anything else names that widget's state. Each widget type's converter is looked up in
`CONVERTERS`; a type without one becomes a marked `todo:` state that fails the way the widget
would (never its success path). The written text is loaded, with the flows already in the output
directory, before anything is returned: an importer that writes a flow `check` refuses is a bug.
"""

from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.core.loader import load_flow_text, read_directory
from ivr.core.recording_checks import pay_errors
from ivr.core.validate import validate_flows
from ivr.errors import FlowLoadError, StudioError
from ivr.studio.model import CONVERTERS, Context, Definition, Piece, Report, Widget, strings

__all__ = ["CONVERTER_MODULES", "Imported", "convert", "load_converters"]

START_EVENTS = ("incomingCall", "incomingRequest", "incomingParent")  # the trigger's, in the order a flow starts
# Where each widget type fails, for the marked state of a type no converter knows (first that leads somewhere).
FAILURE_EVENTS = ("fail", "failed", "failure", "error", "noMatch", "timeout")
END_TEXT = "Studio ends the execution here, and the call with it."


@dataclass
class Imported:
    """An imported flow: the YAML text, and what could not be carried over as Studio had it."""

    flow_id: str
    text: str
    reports: list[Report] = field(default_factory=list)


def convert(
    definition: Definition,
    flow_id: str,
    *,
    flows_dir: str | Path | None = None,
    subflows: dict[str, str] | None = None,
) -> Imported:
    """Convert a definition into the flow `flow_id`; `flows_dir` holds the flows it must load beside
    (subflows it runs), `subflows` maps Studio flow SIDs to flow ids. StudioError if the result does not load."""
    load_converters()

    ctx = Context(definition)
    ctx.extras["subflows"] = dict(subflows or {})
    ctx.extras["flow_id"] = flow_id
    ctx.extras["flows_dir"] = flows_dir
    order, anywhere = _order(definition), _order(definition, every_start=True)
    for widget in definition.widgets:
        if widget.name not in anywhere:  # an orphan: Studio never runs it either
            ctx.report(widget, "nothing in Studio leads to this widget; left out", note=True)
        elif widget.name not in order:
            ctx.report(widget, "only a branch of the trigger that is left out reaches this widget; left out")
    pieces: dict[str, Piece] = {}
    for widget in (definition.widget(name) for name in order):
        if widget.name in ctx.absorbed:
            continue
        converter = CONVERTERS.get(widget.type)
        try:
            pieces[widget.name] = converter(widget, ctx) if converter else unknown(widget, ctx)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a property of a shape we did not expect
            pieces[widget.name] = unknown(widget, ctx, why=f"cannot be read ({type(exc).__name__}: {exc})")
    states: dict[str, dict[str, Any]] = {}
    comments: dict[str, list[str]] = {}
    for name, piece in pieces.items():
        if name in ctx.absorbed:  # taken over by a widget converted after it
            continue
        states.update(piece.states)
        comments.update(piece.comments)
    if not ctx.extras.get("start"):
        raise StudioError(
            f"{definition.source}: the trigger leads nowhere for a call: connect its Incoming Call "
            "(or REST API) transition to a widget in Studio, then export again"
        )
    _prune(ctx, pieces, states, comments)
    _hoist_voice(ctx, states)
    owners = {state: name for name, piece in pieces.items() for state in piece.states}
    marked: set[str] = set()
    for _ in range(_ROUNDS):
        _closing_states(ctx, states, comments)
        text = _write(definition, ctx, states, comments)
        problems = _problems(text, flow_id, flows_dir)
        if not problems:
            return Imported(flow_id, text, ctx.reports)
        if not _mark_refused(ctx, problems, states, owners, marked):
            break
    listed = "\n".join(p.format() for p in problems)
    raise StudioError(f"{definition.source}: internal error: the imported flow does not load:\n{listed}\n{text}")


_ROUNDS = 6  # marking the states the loader refuses: each round marks at least one more, or gives up


def _mark_refused(ctx: Context, problems: list, states: dict, owners: dict[str, str], marked: set[str]) -> bool:
    """What the flow language refuses of a converted widget (a loop of states that wait for nothing, a
    prompt over Twilio's length, an unknown subflow) becomes a marked `todo:` state, reported, so the
    flow still loads. A state marked before and refused again (its failure path runs into the same
    loop) goes to the error state. False when a problem is not in any widget's state."""
    changed = False
    for problem in problems:
        parts = (problem.path or "").split(".")
        name = parts[1] if len(parts) > 1 and parts[0] == "states" else None
        if name not in owners or name not in states:
            continue
        widget = ctx.definition.widget(owners[name])
        target = ctx.error_state() if name in marked else ctx.failure(widget, *FAILURE_EVENTS)
        if name not in marked:
            ctx.report(widget, f"the flow language refuses what it became ({problem.message}); marked todo, "
                       f"going to {target!r}")  # fmt: skip
        states[name] = {"todo": f"Studio's {widget.type} widget {widget.name!r}: {problem.message}", "next": target}
        marked.add(name)
        changed = True
    return changed


# The modules whose converters register themselves (`@converts`). They are imported by name, when a
# conversion starts: they import the package (`from ivr.studio import liquid`), which imports this module.
CONVERTER_MODULES = (
    "ivr.studio.widgets",
    "ivr.studio.split",
    "ivr.studio.widgets_call",
    "ivr.studio.widgets_pay",
    "ivr.studio.widgets_http",
    "ivr.studio.widgets_more",
)


def load_converters() -> None:
    """Import every converter module, so that CONVERTERS knows their widget types."""
    for module in CONVERTER_MODULES:
        importlib.import_module(module)


def unknown(widget: Widget, ctx: Context, *, why: str | None = None) -> Piece:
    """A widget no converter knows (or could read: `why`): a marked state on its failure transition."""
    success = [ctx.state_of(t.next) for t in widget.transitions if t.next and t.event not in FAILURE_EVENTS]
    then = f"; when it works, go on to {success[0]}" if success else ""
    todo = f"Studio's {widget.type} widget {widget.name!r} is not carried over: write what it did{then}"
    what = why or f"no converter for Studio's {widget.type!r} widget"
    return ctx.todo(widget, what, *FAILURE_EVENTS, todo=todo)


def _order(definition: Definition, *, every_start: bool = False) -> list[str]:
    """Widget names breadth first from the trigger's start (calls, else REST API, else a subflow's
    parent): the order a call meets them. Widgets only texts or another start reach are not there."""
    seen = [definition.initial_state]
    queue = deque(seen)
    while queue:
        widget = definition.widget(queue.popleft())
        transitions = widget.transitions if widget else ()
        if widget is not None and widget.type == "trigger" and not every_start:
            start = next((e for e in START_EVENTS if widget.next(e)), None)
            transitions = tuple(t for t in transitions if t.event == start)
        for transition in transitions:
            if transition.next and transition.next not in seen and definition.widget(transition.next):
                seen.append(transition.next)
                queue.append(transition.next)
    return seen


def _prune(ctx: Context, pieces: dict[str, Piece], states: dict, comments: dict) -> None:
    """Leave out, reported, what no call can reach once converted: Studio's branch for a text that
    failed, say, which the flow never takes. Kept: what a marked (todo) widget would lead to once
    someone finishes it, and where a TwiML redirect's return comes back (ctx.extras["entries"])."""
    roots = [ctx.extras["start"], *ctx.extras.get("entries", ())]
    for name, piece in pieces.items():
        if any("todo" in state for state in piece.states.values()):
            roots.extend(ctx.state_of(t.next) for t in ctx.definition.widget(name).transitions if t.next)
    reached = _reach_states(roots, states)
    for name, piece in pieces.items():
        lost = [state for state in piece.states if state in states and state not in reached]
        if not lost or name in ctx.absorbed:
            continue
        for state in lost:
            del states[state]
            comments.pop(state, None)
        came = ", ".join(f"{w.name} ({event})" for w, event in ctx.sources(name)) or "nothing"
        ctx.report(
            ctx.definition.widget(name), f"no call reaches it once converted (Studio came here from {came}); left out"
        )


def _reach_states(roots: list[str], states: dict) -> set[str]:
    """The states reachable from `roots`: any text in a state naming another state counts as a way there."""
    seen: set[str] = set()
    stack = [r for r in roots if r in states or r in (Context.END, Context.ERROR)]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(n for n in strings(states.get(name, {})) if n in states and n not in seen)
    return seen


def _hoist_voice(ctx: Context, states: dict) -> None:
    """One voice and language for every say becomes the flow's `defaults`, as a person would write it."""
    says = [s["say"] for s in states.values() if "say" in s]
    pairs = {(s.get("voice"), s.get("language")) if isinstance(s, dict) else (None, None) for s in says}
    if len(pairs) != 1 or pairs == {(None, None)}:
        return
    voice, language = pairs.pop()
    ctx.defaults.update({k: v for k, v in (("voice", voice), ("language", language)) if v})
    for state in states.values():
        say = state.get("say")
        if isinstance(say, dict):
            rest = {k: v for k, v in say.items() if k not in ("voice", "language")}
            state["say"] = rest["text"] if list(rest) == ["text"] else rest


def _closing_states(ctx: Context, states: dict, comments: dict) -> None:
    """END (Studio ends the execution: the call ends) and ERROR, when something leads there."""
    subflow = bool(ctx.extras.get("returns"))
    if Context.END in ctx.needed:
        states[Context.END] = {"return": _completed(ctx)} if subflow else {"hangup": True}
        comments[Context.END] = ["Where Studio's transitions lead nowhere: " + END_TEXT]
    if Context.ERROR in ctx.needed:
        says = ctx.extras.get("error_say", "Sorry, something went wrong. Please call again later. Goodbye.")
        states[Context.ERROR] = {"say": says, "return": "failed"} if subflow else {"say": says, "hangup": True}
        comments[Context.ERROR] = ["Where a widget without a failure transition fails (Studio would end the call)."]


def _completed(ctx: Context) -> str | dict[str, Any]:
    """A subflow's completed return: Studio gives the parent every variable the subflow set
    (`{{widgets.RUN.NAME}}`), so the return carries each one under its Studio name."""
    names = {key: name for key, name in ctx.extras.get("variables", {}).items() if key == name}
    if not names:
        return "completed"
    return {"outcome": "completed", "values": {key: "{{ " + name + " }}" for key, name in sorted(names.items())}}


def _write(definition: Definition, ctx: Context, states: dict, comments: dict) -> str:
    from ivr.studio.writer import dump_flow

    header: dict[str, Any] = {}
    title = ctx.extras.get("title") or definition.description
    if title:
        header["title"] = title
    for key in ("description", "inputs", "returns"):
        if ctx.extras.get(key):
            header[key] = ctx.extras[key]
    if ctx.defaults:
        header["defaults"] = ctx.defaults
    header["start"] = ctx.extras["start"]
    if Context.ERROR in ctx.needed:
        header["error_state"] = Context.ERROR
    top = [
        f"Imported from Twilio Studio ({definition.source}) by python -m ivr import-studio.",
        *ctx.extras.get("notes", ()),
    ]
    return dump_flow(header, states, comments, top)


def _problems(text: str, flow_id: str, flows_dir: str | Path | None) -> list:
    """The load errors of the written flow, alone and with the flows of its directory (the subflows it runs)."""
    file = f"{flow_id}.yaml"
    try:
        flow = load_flow_text(text, file, flow_id, validate=False)
    except FlowLoadError as exc:
        return exc.errors
    flows = {}
    if flows_dir is not None and Path(flows_dir).is_dir():
        flows = {r.flow.id: r.flow for r in read_directory(flows_dir) if r.flow is not None and not r.problems}
    flows[flow_id] = flow
    refused = [*validate_flows(flows), *pay_errors(flow, flows)]  # check refuses a payment a recording may hear
    return [e for e in refused if e.severity == "error" and e.file == file]
