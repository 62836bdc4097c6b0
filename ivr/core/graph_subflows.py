"""Subflows in a flow's picture: each state that runs a subflow drawn as a box that opens on the
subflow's own states (a Mermaid composite state; for Graphviz a cluster beside the calling state),
its start and its returns marked, and the subflows it calls opened in turn.

The flow and each subflow are drawn by `ivr.core.graph.mermaid`, from the machines the engine runs;
this module nests the subflows' drawings into the caller's, their ids prefixed with the calling
state's (a subflow's `ask` inside `check_pin` is `check_pin__ask`), so that states of the same name
in two flows stay apart.
"""

from __future__ import annotations

import re

from ivr.core import flow as f
from ivr.core.graph import graph_source, mermaid
from ivr.core.subflow import Call, Return

__all__ = ["SUBFLOW_STYLE", "calls_subflows", "graphviz_with_subflows", "mermaid_with_subflows"]

SUBFLOW_STYLE = "classDef kind_subflow fill:#f3e5f5,stroke:#6a1b9a,stroke-width:2px"
_STATE = re.compile(r'state "(?P<label>[^"]*)" as (?P<id>\S+)\Z')
_CLASS = re.compile(r"class (?P<id>\S+) (?P<cls>\S+)\Z")
_EDGE = re.compile(r"(?P<a>\S+) --> (?P<b>\S+?)(?P<rest>: .*)?\Z")


def calls_subflows(flow: f.Flow) -> bool:
    """Whether a state of the flow runs a subflow (its picture then opens them)."""
    return any(isinstance(s.action, Call) for s in flow.states.values())


def mermaid_with_subflows(flow: f.Flow, flows: dict[str, f.Flow]) -> str:
    """The flow's Mermaid text with each subflow it runs (found in `flows`) opened inside its calling state."""
    text = mermaid(flow)
    head, _, _ = text.partition("stateDiagram-v2\n")
    header, body = _split(text)
    classes = dict.fromkeys(line for line in header if line.startswith("classDef "))
    lines = _open(flow, flows, body, "", classes, {flow.id})
    classes[SUBFLOW_STYLE] = None
    direction = [line for line in header if line.startswith("direction ")]
    out = [*direction, *classes, "", *lines]
    return head + "stateDiagram-v2\n" + "".join(f"  {line}\n" if line else "\n" for line in out)


def _split(text: str) -> tuple[list[str], list[str]]:
    """A drawing's lines after `stateDiagram-v2`: (direction and classDefs, states and edges)."""
    lines = [line.strip() for line in text.partition("stateDiagram-v2\n")[2].splitlines()]
    header = [line for line in lines if line.startswith(("direction ", "classDef "))]
    body = [line for line in lines if line and not line.startswith(("direction ", "classDef "))]
    return header, body


def _open(flow: f.Flow, flows: dict, body: list[str], prefix: str, classes: dict, passing: set) -> list[str]:
    """`body` (a drawing's states and edges) with ids prefixed and each calling state opened on its subflow."""
    calls = {name: s.action.flow for name, s in flow.states.items() if isinstance(s.action, Call)}
    returns = [name for name, s in flow.states.items() if isinstance(s.action, Return)]
    out: list[str] = []
    for line in body:
        state = _STATE.match(line)
        if state is not None and state["id"] in calls and calls[state["id"]] in flows:
            out += _box(flows[calls[state["id"]]], flows, prefix + state["id"], classes, passing)
            continue
        out.append(_prefixed(line, prefix))
    if prefix:  # inside a box: a return leaves it, back to the calling state's routes
        out += [f"{prefix}__{name} --> [*]" for name in returns if f'state "{name}" as {name}' in body]
    return out


def _box(sub: f.Flow, flows: dict, box: str, classes: dict, passing: set) -> list[str]:
    """A calling state drawn as a box holding the subflow's states (a circle of calls is not opened again)."""
    if sub.id in passing:
        return [f'state "{box.rsplit("__", 1)[-1]} (runs {sub.id})" as {box}', f"class {box} kind_subflow"]
    header, body = _split(mermaid(sub))
    classes.update(dict.fromkeys(line for line in header if line.startswith("classDef ")))
    inner = _open(sub, flows, body, box, classes, passing | {sub.id})
    return [f"state {box} {{", *(f"  {line}" for line in inner), "}", f"class {box} kind_subflow",
            f"note right of {box}: runs subflow {sub.id}"]  # fmt: skip


def _prefixed(line: str, prefix: str) -> str:
    if not prefix:
        return line

    def named(name: str) -> str:
        return name if name == "[*]" else f"{prefix}__{name}"

    if (m := _STATE.match(line)) is not None:
        return f'state "{m["label"]}" as {named(m["id"])}'
    if (m := _CLASS.match(line)) is not None:
        return f"class {named(m['id'])} {m['cls']}"
    if (m := _EDGE.match(line)) is not None:
        return f"{named(m['a'])} --> {named(m['b'])}{m['rest'] or ''}"
    return line


_DOT = re.compile(r'\t(?P<a>"(?:[^"\\]|\\.)*"|[^\s"]+)(?: -> (?P<b>"(?:[^"\\]|\\.)*"|[^\s"]+))?(?P<rest>.*)\Z')


def graphviz_with_subflows(flow: f.Flow, flows: dict[str, f.Flow]):
    """The flow's Graphviz graph with each subflow it runs drawn in a cluster beside the calling state:
    dashed edges into the subflow's start and back from each of its returns."""
    graph = graph_source(flow, "graphviz")
    _clusters(graph, flow, flows, "", {flow.id})
    return graph


def _clusters(graph, flow: f.Flow, flows: dict, prefix: str, passing: set) -> None:
    for name, state in flow.states.items():
        sub = flows.get(state.action.flow) if isinstance(state.action, Call) else None
        if sub is None or sub.id in passing:
            continue
        box = f"{prefix}{name}/"
        lines = [_renamed(line, box) for line in graph_source(sub, "graphviz").body]
        lines = [line for line in lines if line is not None]
        caller = _dot_id(f"{prefix}{name}" if prefix else name)
        cluster = [f'\tsubgraph "cluster_{box}" {{', f'\t\tlabel="{name}: subflow {sub.id}" style="rounded,dashed"',
                   '\t\tcolor="#6a1b9a"', *(f"\t{line}" for line in lines), "\t}",
                   f"\t{caller} -> {_dot_id(box + '[*]')} [style=dashed color=\"#6a1b9a\" label=runs]"]  # fmt: skip
        cluster += [f"\t{_dot_id(box + r)} -> {caller} [style=dashed color=\"#6a1b9a\" label=\"returns {o}\"]"
                    for r, o in _returns(sub)]  # fmt: skip
        graph.body.extend(line + "\n" for line in cluster)
        _clusters(graph, sub, flows, box, passing | {sub.id})


def _returns(flow: f.Flow) -> list[tuple[str, str]]:
    return [(name, s.action.outcome) for name, s in flow.states.items() if isinstance(s.action, Return)]


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _renamed(line: str, box: str) -> str | None:
    """A line of a subflow's DOT body with its node ids inside `box`; None for the graph's own attributes."""
    m = _DOT.match(line.rstrip("\n"))
    if m is None or m["a"] in ("graph", "node", "edge"):
        return None

    def named(token: str) -> str:
        bare = token[1:-1].replace('\\"', '"').replace("\\\\", "\\") if token.startswith('"') else token
        return _dot_id(box + bare)

    return named(m["a"]) + (f" -> {named(m['b'])}" if m["b"] else "") + m["rest"]
