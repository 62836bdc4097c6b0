"""Pictures of a flow, drawn by transitions' own diagram support from the machine the engine runs.

The states and transitions are the engine's (`Engine(flow)`), given to a `GraphMachine` built once
with no model; its Mermaid backend writes text that code hosts render (no binary needed), its
Graphviz backend the graph that `python -m ivr graph` draws as SVG or PNG (ivr/cli/graph.py).

What the picture shows:
- an edge per pair of states, labelled with the outcomes that take it ("1, sales", "busy, failed");
  a `when:` edge with its condition ("if open('office')"), running out of retries with the count
  ("no_input x3");
- `repeat` and `back` as self-loops ("* (repeat)", "9 (back)"); the retries of a menu (a no-input
  or no-match below its max) are left out: every menu has them, and the "x3" edge says where they end;
- the start (`[*] -->`), the error state, the hang-ups (hangup, reject, redirect out, and the built-in
  ~goodbye and ~apology when something leads to them; `--> [*]`) and the menus, each in its colour.
"""

from __future__ import annotations

import json
import re

from transitions.extensions import diagrams_graphviz, diagrams_mermaid
from transitions.extensions.diagrams import GraphMachine

from ivr.core import flow as f
from ivr.core.engine import Engine
from ivr.core.flow import BUILT_IN
from ivr.errors import IvrError

__all__ = ["FORMATS", "NO_GRAPHVIZ", "graph_data", "graph_machine", "graph_source", "mermaid"]

FORMATS = ("mermaid", "svg", "png")
NO_GRAPHVIZ = (
    "{fmt} needs Graphviz: {missing}. Install Debian's graphviz package (apt-get install graphviz) "
    "and the graphviz Python package (pip install -r requirements.txt), or use --format mermaid, "
    "which needs neither"
)
KINDS = ("start", "error", "end", "menu", "state")
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
    "state": {},
}


class _FlowGraphMachine(GraphMachine):
    """A GraphMachine that knows its flow, so edges carry outcomes and nodes their kind."""

    style_attributes = {
        **GraphMachine.style_attributes,
        "node": {**GraphMachine.style_attributes["node"], **_STYLES},
    }

    def __init__(self, flow: f.Flow, order: dict, *, graph_engine: str, **kwargs) -> None:
        self.flow = flow
        self.order = order  # (source, trigger, dest) -> position in the engine's list
        super().__init__(graph_engine=graph_engine, **kwargs)

    def _init_graphviz_engine(self, graph_engine):
        if graph_engine == "mermaid":
            return _MermaidGraph
        # transitions falls back to Mermaid without the graphviz package; a picture asked for is not text
        if diagrams_graphviz.pgv is None:
            raise IvrError(NO_GRAPHVIZ.format(fmt=graph_engine, missing="the graphviz Python package is missing"))
        return _GraphvizGraph


def graph_machine(flow: f.Flow, graph_engine: str = "mermaid") -> GraphMachine:
    """A GraphMachine of the flow's states and transitions as the engine builds them (no model)."""
    definition = Engine(flow).machine_definition()  # what the engine's machine is built from
    transitions = definition["transitions"]
    order: dict = {}
    for i, t in enumerate(transitions):
        order.setdefault((t["source"], t["trigger"], t["dest"]), i)
    return _FlowGraphMachine(
        flow,
        order,
        graph_engine=graph_engine,
        model=None,
        states=[s["name"] if isinstance(s, dict) else s for s in definition["states"]],
        transitions=transitions,
        initial=definition["initial"],
        auto_transitions=False,
        send_event=True,
        title=flow.title or flow.id,
    )


def graph_source(flow: f.Flow, engine: str):
    """The flow's diagram from transitions' `engine` backend ("mermaid" or "graphviz"), not yet drawn."""
    machine = graph_machine(flow, engine)
    # A graph without a model: the machine's own graph class, given the machine (as get_graph does).
    return machine.graph_cls(machine).get_graph()


def mermaid(flow: f.Flow) -> str:
    """The flow as Mermaid `stateDiagram-v2` text."""
    return graph_source(flow, "mermaid").source


def graph_data(flow: f.Flow) -> dict:
    """Nodes ({id, label, kind}) and merged edges ({source, target, label}) for a page to draw."""
    machine = graph_machine(flow, "mermaid")
    markup = machine.get_markup_config()
    nodes, edges = _elements(machine, markup["states"], markup["transitions"])
    return {
        "nodes": [{"id": name, "label": name, "kind": kind} for name, kind in nodes],
        "edges": [{"source": s, "target": t, "label": label} for s, t, label, _internal in edges],
    }


# -- what is drawn -----------------------------------------------------------------------------


def _elements(machine: _FlowGraphMachine, states: list[dict], transitions: list[dict]):
    """From transitions' markup: [(name, kind)] and [(source, target, label, internal)] in flow order."""
    flow = machine.flow
    merged: dict[tuple[str, str], list] = {}
    for t in transitions:
        label = _label(flow, t)
        if label is None:
            continue
        source, dest = t["source"], t.get("dest")
        rank = machine.order.get((source, t["trigger"], dest), len(machine.order))
        merged.setdefault((source, dest or source), []).append((rank, label, dest is None))
    names = [s["name"] for s in states]
    index = {name: i for i, name in enumerate(names)}
    reached = {target for _source, target in merged}
    nodes = [(n, _kind(flow, n)) for n in names if n not in BUILT_IN or n in reached]
    edges = []
    for (source, target), labels in merged.items():
        labels.sort()
        text = ", ".join(dict.fromkeys(label for _rank, label, _internal in labels))
        edges.append((index[source], labels[0][0], source, target, text, all(x for _r, _l, x in labels)))
    edges.sort(key=lambda e: e[:2])
    return nodes, [e[2:] for e in edges]


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
    return trigger


def _kind(flow: f.Flow, name: str) -> str:
    if name == flow.start:
        return "start"
    if name == flow.error_state:
        return "error"
    if _ends(flow, name):
        return "end"
    if isinstance(flow.states[name].action, f.Gather):
        return "menu"
    return "state"


def _ends(flow: f.Flow, name: str) -> bool:
    """Whether the call leaves the flow here: a hang-up, a reject, a redirect, a built-in ending."""
    return name in BUILT_IN or flow.states[name].ends


# -- the backends: transitions' Mermaid and Graphviz graphs, drawing the elements above -----------


class _MermaidGraph(diagrams_mermaid.Graph):
    """transitions' Mermaid backend (title, stateDiagram-v2, classes, edges), drawing a flow."""

    def get_graph(self, title=None, roi_state=None):
        machine = self.machine
        nodes, edges = _elements(machine, *self._get_elements())
        ids = _mermaid_ids([name for name, _kind in nodes])
        lines = ["---", f"title: {_yaml_string(title or machine.title)}", "---", "stateDiagram-v2"]
        body = [f"direction {machine.machine_attributes['rankdir']}"]
        present = {kind for _name, kind in nodes}
        body += [
            f"classDef kind_{k} {_mermaid_style(machine.style_attributes['node'][k])}"
            for k in KINDS
            if _STYLES[k] and k in present
        ]
        body.append("")
        for name, kind in nodes:
            body.append(f'state "{_mermaid_text(name)}" as {ids[name]}')
            if _STYLES[kind]:
                body.append(f"class {ids[name]} kind_{kind}")
        body.append("")
        body.append(f"[*] --> {ids[machine.flow.start]}")
        body += [f"{ids[source]} --> {ids[target]}: {_mermaid_text(label)}" for source, target, label, _i in edges]
        body += [f"{ids[name]} --> [*]" for name, _kind in nodes if _ends(machine.flow, name)]
        lines += [f"  {line}" if line else "" for line in body]
        return diagrams_mermaid.DigraphMock("\n".join(lines) + "\n")


class _GraphvizGraph(diagrams_graphviz.Graph):
    """transitions' Graphviz backend, with the flow's kinds of node and merged edges."""

    def _add_nodes(self, states, container):
        machine = self.machine
        nodes, _edges = _elements(machine, states, machine.get_markup_config()["transitions"])
        container.node("[*]", label="", shape="circle", style="filled", fillcolor="black", width="0.2")
        for name, kind in nodes:
            container.node(name, label=name, **machine.style_attributes["node"][kind])

    def _add_edges(self, transitions, container):
        machine = self.machine
        _nodes, edges = _elements(machine, machine.get_markup_config()["states"], transitions)
        container.edge("[*]", machine.flow.start)
        for source, target, label, internal in edges:
            container.edge(source, target, label=label, **({"style": "dashed"} if internal else {}))


def _mermaid_ids(names: list[str]) -> dict[str, str]:
    """State names as Mermaid ids: as they are, unless Mermaid would misread them ('-', '~', keywords)."""
    ids: dict[str, str] = {}
    taken = {n for n in names if _MERMAID_ID.match(n) and n.lower() not in _MERMAID_WORDS}
    for name in names:
        if name in taken:
            ids[name] = name
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", name.replace("~", "builtin_"))
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


def _mermaid_style(attrs: dict) -> str:
    css = {"fill": attrs.get("fillcolor"), "stroke": attrs.get("color")}
    if "penwidth" in attrs:
        css["stroke-width"] = f"{attrs['penwidth']}px"
    return ",".join(f"{k}:{v}" for k, v in css.items() if v)


def _yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
