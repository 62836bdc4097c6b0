"""Pictures of a flow, drawn by transitions' own diagram support from the machine the engine runs.

The states and transitions are the engine's (`machine_definition`), given to a `GraphMachine` built once
with no model; its Mermaid backend writes text that code hosts render (no binary needed), its
Graphviz backend the graph that `python -m ivr graph` draws as SVG or PNG (ivr/cli/graph.py).

What the picture shows:
- an edge per pair of states, labelled with the outcomes that take it ("1, sales", "busy, failed", an agent's
  ends); a `when:` edge with its condition ("if open('office')"), running out of retries with the count
  ("no_input x3"), a split's variants with their shares ("90%");
- `repeat` and `back` as self-loops ("* (repeat)", "9 (back)"); the retries of a menu (a no-input
  or no-match below its max) are left out: every menu has them, and the "x3" edge says where they end;
- the start (`[*] -->`), the error state, the hang-ups (hangup, reject, redirect out, and the built-in
  ~goodbye and ~apology when something leads to them; `--> [*]`), the menus and agents, each in its colour;
- the ways out of every menu (defaults.routes) once, from an "every menu" box, not from each menu;
- a state that more than SHARED_SOURCES states lead to (the goodbye every menu's retries end in) with
  the edge from the first of them, and a dashed copy of it beside each of the others.
The last two keep big flows readable and quick to lay out (see _share); graph_data keeps every edge. A `look`
(ivr/core/heat.py) may paint the states and label the edges otherwise: the same drawing, other figures.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from transitions.extensions import diagrams_graphviz, diagrams_mermaid
from transitions.extensions.diagrams import GraphMachine

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.flow import BUILT_IN
from ivr.core.layout import ranks_crossed
from ivr.core.machine import machine_definition, nothing_on_enter
from ivr.core.splits import SPLIT_EVENT, split_event
from ivr.errors import IvrError

__all__ = [
    "FORMATS",
    "MAX_RANKS_CROSSED",
    "NO_GRAPHVIZ",
    "TOO_BIG",
    "graph_data",
    "graph_machine",
    "graph_source",
    "mermaid",
]

FORMATS = ("mermaid", "svg", "png")
NO_GRAPHVIZ = (
    "{fmt} needs Graphviz: {missing}. Install Debian's graphviz package (apt-get install graphviz) "
    "and the graphviz Python package (pip install -r requirements.txt), or use --format mermaid, "
    "which needs neither"
)
# Graphviz is refused a drawing whose edges cross more ranks than this in all (ivr/core/layout.py):
# dot takes about 4 s at 2,500 and over 6 s at 3,000, whatever the flow's shape (benchmarks/graph_size.py).
MAX_RANKS_CROSSED = 2_500
TOO_BIG = (
    "flow '{flow}' is too big to draw with Graphviz: its {edges:,} edges cross {ranks:,} ranks in all, "
    "and dot takes more than a few seconds above {limit:,}. Use --format mermaid (the default) instead"
)
KINDS = ("start", "error", "end", "menu", "agent", "state", "ways_out")
WAYS_OUT = "~every menu"  # the box the ways out of every menu (defaults.routes) are drawn from, once
# More states than this leading to one target: it is drawn beside each (flows/main.yaml's goodbye has 8).
SHARED_SOURCES = 8
_CONDITION_CHARS = 28
_MERMAID_ID = re.compile(r"[A-Za-z0-9_]+\Z")
# Words Mermaid's state diagram reads as keywords at the start of a line.
_MERMAID_WORDS = {"state", "note", "class", "classdef", "direction", "hide", "scale", "style", "end"}
_MERMAID_ESCAPES = str.maketrans({":": "#58;", ";": "#59;", '"': "#quot;"})
_STYLES = {  # Graphviz attributes; Mermaid's classDef gets fill, stroke and stroke-width from them
    "start": {"fillcolor": "#dff3df", "color": "#2e7d32", "penwidth": "2"},
    "error": {"fillcolor": "#fde2df", "color": "#c62828", "penwidth": "2"},
    "end": {"fillcolor": "#eeeeee", "color": "#555555", "peripheries": "2"},
    "menu": {"fillcolor": "#e3f0fc", "color": "#1565c0"},
    "agent": {"fillcolor": "#f3e5f5", "color": "#6a1b9a"},
    "state": {},
    "ways_out": {"shape": "note", "fillcolor": "#fff8e1", "color": "#8d6e63"},
}
_COPY = {"style": "rounded,filled,dashed", "fontsize": "10"}  # Graphviz: a shared target drawn again


class _FlowGraphMachine(GraphMachine):
    """A GraphMachine that knows its flow, so edges carry outcomes and nodes their kind."""

    style_attributes = {
        **GraphMachine.style_attributes,
        "node": {**GraphMachine.style_attributes["node"], **_STYLES},
    }

    def __init__(self, flow: f.Flow, order: dict, *, graph_engine: str, look=None, **kwargs) -> None:
        self.flow = flow
        self.order = order  # (source, trigger, dest) -> position in the engine's list
        # None, or what paints the drawing: node(_Node) -> (lines, class, Graphviz attributes),
        # edge(source, target, label, internal) -> (label, Graphviz attributes), legend: [lines]
        self.look = look
        super().__init__(graph_engine=graph_engine, **kwargs)

    def _init_graphviz_engine(self, graph_engine):
        if graph_engine == "mermaid":
            return _MermaidGraph
        # transitions falls back to Mermaid without the graphviz package; a picture asked for is not text
        if diagrams_graphviz.pgv is None:
            raise IvrError(NO_GRAPHVIZ.format(fmt=graph_engine, missing="the graphviz Python package is missing"))
        return _GraphvizGraph


def graph_machine(flow: f.Flow, graph_engine: str = "mermaid", look=None) -> GraphMachine:
    """A GraphMachine of the flow's states and transitions as the engine builds them (no model)."""
    definition = machine_definition(flow, nothing_on_enter)  # what the engine's machine is built from, no engine built
    transitions = definition["transitions"]
    order: dict = {}
    for i, t in enumerate(transitions):
        order.setdefault((t["source"], t["trigger"], t["dest"]), i)
    return _FlowGraphMachine(
        flow,
        order,
        graph_engine=graph_engine,
        look=look,
        model=None,
        states=[s["name"] if isinstance(s, dict) else s for s in definition["states"]],
        transitions=transitions,
        initial=definition["initial"],
        auto_transitions=False,
        send_event=True,
        title=flow.title or flow.id,
    )


def graph_source(flow: f.Flow, engine: str, look=None):
    """The flow's diagram from transitions' `engine` backend ("mermaid" or "graphviz"), not yet drawn."""
    machine = graph_machine(flow, engine, look)
    # A graph without a model: the machine's own graph class, given the machine (as get_graph does).
    return machine.graph_cls(machine).get_graph()


def mermaid(flow: f.Flow) -> str:
    """The flow as Mermaid `stateDiagram-v2` text."""
    return graph_source(flow, "mermaid").source


def graph_data(flow: f.Flow) -> dict:
    """Nodes ({id, label, kind}) and merged edges ({source, target, label}) for a page to draw."""
    machine = graph_machine(flow, "mermaid")
    markup = machine.get_markup_config()
    nodes, edges = _elements(machine, markup["states"], markup["transitions"], drawing=False)
    return {
        "nodes": [{"id": node.name, "label": node.label, "kind": node.kind} for node in nodes],
        "edges": [{"source": s, "target": t, "label": label} for s, t, label, _internal in edges],
    }


# -- what is drawn -----------------------------------------------------------------------------


class _Node(NamedTuple):
    name: str  # the node's id in the drawing
    label: str
    kind: str
    copy: bool = False  # a shared target drawn again beside one of the states that lead to it


def _elements(machine: _FlowGraphMachine, states: list[dict], transitions: list[dict], *, drawing: bool = True):
    """From transitions' markup: [_Node] and [(source, target, label, internal)] in flow order.

    A drawing (not graph_data) draws the ways out of every menu once, from a WAYS_OUT box, and a
    target more than SHARED_SOURCES states lead to beside each of them: see _share.
    """
    flow = machine.flow
    inherited = _inherited(flow) if drawing else {}
    merged: dict[tuple[str, str], list] = {}
    for t in transitions:
        source, dest = t["source"], t.get("dest")
        if (source, t["trigger"], dest) in inherited:
            continue
        label = _label(flow, t)
        if label is None:
            continue
        rank = machine.order.get((source, t["trigger"], dest), len(machine.order))
        merged.setdefault((source, dest or source), []).append((rank, label, dest is None))
    taken = {route.outcome for route in inherited.values()}
    for rank, route in enumerate(r for r in flow.defaults.routes if r.outcome in taken):
        special = route.target in f.SPECIAL_TARGETS
        label = f"{route.outcome} ({route.target})" if special else route.outcome
        merged.setdefault((WAYS_OUT, WAYS_OUT if special else route.target), []).append((rank, label, special))
    names = [s["name"] for s in states]
    index = {name: i for i, name in enumerate([*names, WAYS_OUT])}
    reached = {target for _source, target in merged}
    nodes = [_Node(n, f"{n} (filler)" if getattr(flow.states.get(n), "filler", None) else n, _kind(flow, n))
             for n in names if n not in BUILT_IN or n in reached]  # fmt: skip
    if inherited:
        nodes.append(_Node(WAYS_OUT, "every menu", "ways_out"))
    edges = []
    for (source, target), labels in merged.items():
        labels.sort()
        text = ", ".join(dict.fromkeys(label for _rank, label, _internal in labels))
        edges.append((index[source], labels[0][0], source, target, text, all(x for _r, _l, x in labels)))
    edges.sort(key=lambda e: e[:2])
    edges = [e[2:] for e in edges]
    return _share(nodes, edges) if drawing else (nodes, edges)


def _inherited(flow: f.Flow) -> dict[tuple, f.Route]:
    """(state, outcome, target or None) of each way out a menu takes from defaults.routes -> the route."""
    out = {}
    for state in flow.states.values():
        for route in state.routes:
            if route.inherited:
                dest = None if route.target in f.SPECIAL_TARGETS else route.target
                out[(state.name, route.outcome, dest)] = route
    return out


def _share(nodes: list[_Node], edges: list[tuple]) -> tuple[list[_Node], list[tuple]]:
    """A target more than SHARED_SOURCES states lead to keeps the edge from the first of them; the
    others lead to a copy of it beside them. Graphviz lays a long edge out as a chain of hidden
    nodes, one per rank it crosses: edges from every state of a deep flow to one goodbye cost dot
    minutes, and cross everything else on the way."""
    sources: dict[str, set[str]] = {}
    for source, target, _label, _internal in edges:
        if source != target:
            sources.setdefault(target, set()).add(source)
    shared = {target for target, s in sources.items() if len(s) > SHARED_SOURCES}
    if not shared:
        return nodes, edges
    kinds = {node.name: node.kind for node in nodes}
    seen: dict[str, int] = {}
    copies, out = [], []
    for source, target, label, internal in edges:
        if target in shared and source != target:
            n = seen[target] = seen.get(target, 0) + 1
            if n > 1:
                copy = f"{target}~{n}"  # no state's name has a '~' after its first character
                copies.append(_Node(copy, target, kinds[target], copy=True))
                target = copy
        out.append((source, target, label, internal))
    return nodes + copies, out


def _label(flow: f.Flow, t: dict) -> str | None:
    """An edge's label: the outcome, its condition, its count; None for a retry (left out)."""
    trigger = t["trigger"]
    state = flow.states.get(t["source"])
    if "dest" not in t:  # internal: a retry, or a route to `repeat` or `back`
        if trigger in f.RETRY_EVENTS or state is None:
            return None
        target = next((r.target for r in state.routes if r.outcome == trigger), trigger)
        return f"{trigger} ({target})"
    conditions = t.get("conditions")
    if conditions:
        text = " and ".join(c.removeprefix("when_") for c in conditions)
        text = " ".join(text.split())
        if len(text) > _CONDITION_CHARS:
            text = text[: _CONDITION_CHARS - 1].rstrip() + "…"
        return f"if {text}"
    if trigger in f.RETRY_EVENTS and state is not None:
        return f"{trigger} x{getattr(state, trigger).max}"
    if state is not None and state.split and trigger.startswith(f"{SPLIT_EVENT}:"):
        return next(f"{v.share}%" for v in state.split if split_event(v.target) == trigger)
    return trigger


def _kind(flow: f.Flow, name: str) -> str:
    if name in (flow.start, flow.error_state):
        return "start" if name == flow.start else "error"
    if _ends(flow, name):
        return "end"
    action = flow.states[name].action  # a menu, an agent's conversation (its edges: its ends), or any other
    return "menu" if isinstance(action, f.Gather) else "agent" if isinstance(action, Agent) else "state"


def _ends(flow: f.Flow, name: str) -> bool:
    """Whether the call leaves the flow here: a hang-up, a reject, a redirect, a built-in ending."""
    return name in BUILT_IN or flow.states[name].ends


# -- the backends: transitions' Mermaid and Graphviz graphs, drawing the elements above -----------


class _MermaidGraph(diagrams_mermaid.Graph):
    """transitions' Mermaid backend (title, stateDiagram-v2, classes, edges), drawing a flow."""

    def get_graph(self, title=None, roi_state=None):
        machine = self.machine
        nodes, edges = _elements(machine, *self._get_elements())
        ids = _mermaid_ids([node.name for node in nodes])
        lines = ["---", f"title: {_yaml_string(title or machine.title)}", "---", "stateDiagram-v2"]
        body = [f"direction {machine.machine_attributes['rankdir']}"]
        body += self._states(nodes, ids) if machine.look is None else self._painted(nodes, ids)
        body.append("")
        body.append(f"[*] --> {ids[machine.flow.start]}")
        paint = machine.look.edge if machine.look else lambda s, t, label, internal: (label, {})
        for source, target, label, internal in edges:
            body.append(f"{ids[source]} --> {ids[target]}: {_mermaid_text(paint(source, target, label, internal)[0])}")
        body += [
            f"{ids[n.name]} --> [*]"
            for n in nodes
            if not n.copy and n.kind != "ways_out" and _ends(machine.flow, n.name)
        ]
        if machine.look:  # the legend, beside the start
            body += [f"note left of {ids[machine.flow.start]}", *machine.look.legend, "end note"]
        lines += [f"  {line}" if line else "" for line in body]
        return diagrams_mermaid.DigraphMock("\n".join(lines) + "\n")

    def _states(self, nodes: list[_Node], ids: dict[str, str]) -> list[str]:
        """classDef lines for the kinds present, then each state with its kind's class."""
        styles = self.machine.style_attributes["node"]
        present = {(node.kind, node.copy) for node in nodes}
        out = [f"classDef kind_{k} {_mermaid_style(styles[k])}" for k in KINDS if _STYLES[k] and (k, False) in present]
        out += [f"classDef copy_{k} {_mermaid_style(styles[k], copy=True)}" for k in KINDS if (k, True) in present]
        out.append("")
        for node in nodes:
            out.append(f'state "{_mermaid_text(node.label)}" as {ids[node.name]}')
            if node.copy:
                out.append(f"class {ids[node.name]} copy_{node.kind}")
            elif _STYLES[node.kind]:
                out.append(f"class {ids[node.name]} kind_{node.kind}")
        return out

    def _painted(self, nodes: list[_Node], ids: dict[str, str]) -> list[str]:
        """The look's classes (sorted by name), then each state with its lines and class."""
        painted = [self.machine.look.node(node) for node in nodes]
        classes = {cls: attrs for _lines, cls, attrs in painted}
        out = [f"classDef {cls} {_mermaid_style(classes[cls])}" for cls in sorted(classes)]
        out.append("")
        for node, (lines, cls, _attrs) in zip(nodes, painted, strict=True):
            out.append(f'state "{"<br/>".join(map(_mermaid_text, lines))}" as {ids[node.name]}')
            out.append(f"class {ids[node.name]} {cls}")
        return out


class _GraphvizGraph(diagrams_graphviz.Graph):
    """transitions' Graphviz backend, with the flow's kinds of node and merged edges."""

    def _add_nodes(self, states, container):
        machine = self.machine
        nodes, _edges = _elements(machine, states, machine.get_markup_config()["transitions"])
        container.node("[*]", label="", shape="circle", style="filled", fillcolor="black", width="0.2")
        for node in nodes:
            style = machine.style_attributes["node"][node.kind]
            label = node.label
            if machine.look:
                lines, _cls, style = machine.look.node(node)
                label = "\\n".join(lines)
            container.node(node.name, label=label, **({**style, **_COPY} if node.copy else style))
        if machine.look:
            container.node("~legend", label="\\l".join(machine.look.legend) + "\\l", shape="note", style="")

    def _add_edges(self, transitions, container):
        machine = self.machine
        _nodes, edges = _elements(machine, machine.get_markup_config()["states"], transitions)
        ranks = ranks_crossed([("[*]", machine.flow.start), *((s, t) for s, t, _label, _internal in edges)])
        if ranks > MAX_RANKS_CROSSED:  # before dot runs: it would take more than a few seconds
            raise IvrError(TOO_BIG.format(flow=machine.flow.id, edges=len(edges), ranks=ranks, limit=MAX_RANKS_CROSSED))
        container.edge("[*]", machine.flow.start)
        for source, target, label, internal in edges:
            attrs = {"style": "dashed"} if internal else {}
            if machine.look:
                label, painted = machine.look.edge(source, target, label, internal)
                attrs = {**attrs, **painted}
            container.edge(source, target, label=label, **attrs)


def _mermaid_ids(names: list[str]) -> dict[str, str]:
    """State names as Mermaid ids: as they are, unless Mermaid would misread them ('-', '~', keywords)."""
    ids: dict[str, str] = {}
    taken = {n for n in names if _MERMAID_ID.match(n) and n.lower() not in _MERMAID_WORDS}
    for name in names:
        if name in taken:
            ids[name] = name
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", re.sub(r"\A~", "builtin_", name))
        if base.lower() in _MERMAID_WORDS:
            base = f"s_{base}"
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        ids[name] = candidate
    return ids


def _mermaid_text(text: str) -> str:
    # Mermaid ends a label at ':' or ';' and a state's name at '"': its entity codes stand in.
    return text.translate(_MERMAID_ESCAPES)


def _mermaid_style(attrs: dict, *, copy: bool = False) -> str:
    css = {"fill": attrs.get("fillcolor"), "stroke": attrs.get("color")}
    if "penwidth" in attrs:
        css["stroke-width"] = f"{attrs['penwidth']}px"
    if copy:
        css["stroke-dasharray"] = "4 3"
    return ",".join(f"{k}:{v}" for k, v in css.items() if v)


def _yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
