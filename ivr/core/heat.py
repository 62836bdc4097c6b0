"""A heat map of a flow: the drawing of ivr/core/graph.py, painted with a report's figures.

    heat_mermaid(flow, build_report(db, flow, window))      # Mermaid text
    heat_source(flow, report, "graphviz")                   # Graphviz source, for dot to draw

Each state's fill says how many of the flow's calls reached it (TRAFFIC: five steps from grey,
not reached, to orange, more than three calls in four); its border, red and thicker by DROP_OFF's
steps, how many of the calls that reached it hung up there. Its label carries the figures
("entered 7 · 7 calls (100%)", "hung up 1 (14%)"). Each edge's label gets the number of times it
was taken ("2, support · 12"); "?" where the journal cannot tell (a `when:` branch: the journal
keeps the outcome, not which condition held). Pure: the report is a dict, the output text.

What an edge's count is made of (the report's `routes` hold the outcome fired from each state):
- an outcome's route (a key, a dial status, a hook's outcome): routes[outcome];
- a split's variant: routes[variant];
- `next` of a state that waits for nothing: the times it was entered, less its errors; `next` of
  any other state: the outcomes in routes that no route of the state names (a hook's other outcomes);
- retries running out (`no_input x3`): the state's max_reached, when both kinds end on one edge;
- `no_recording` of a Record: its no_input and max_reached; `error`: its errors;
- the ways out of every menu: the sum over the menus.
"""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.graph import WAYS_OUT, graph_source
from ivr.core.machine import machine_definition, nothing_on_enter
from ivr.core.splits import SPLIT_EVENT

__all__ = ["DROP_OFF", "LEGEND", "TRAFFIC", "HeatLook", "heat_mermaid", "heat_source"]

# (lowest share of the flow's calls that reached the state, fill); the first is "not reached".
TRAFFIC = ((0.0, "#f2f2f2"), (0.0, "#fff5d6"), (0.25, "#fed98e"), (0.5, "#fdae61"), (0.75, "#f46d43"))
# (lowest share of the state's calls that hung up there, border colour, border width)
DROP_OFF = ((0.0, "#9e9e9e", 1), (0.0, "#d7301f", 2), (0.25, "#d7301f", 4), (0.5, "#b30000", 6))
LEGEND = [
    "Heat map: fill = share of the calls that reached the state",
    "grey: none · pale: up to 25% · light orange: 25-50% · orange: 50-75% · deep orange: over 75%",
    "red border = callers hung up there (thicker: over 25%, over 50% of those who reached it)",
    "edge · N = times taken · ? = the journal cannot tell",
]
_UNCOUNTED = {"color": "#aaaaaa", "fontcolor": "#888888"}  # Graphviz: an edge taken 0 times, or "?"


def heat_mermaid(flow: f.Flow, report: dict) -> str:
    """The flow as Mermaid `stateDiagram-v2` text, painted with `report` (ivr.analytics.report.build_report)."""
    return heat_source(flow, report, "mermaid").source


def heat_source(flow: f.Flow, report: dict, engine: str):
    """The heat map from transitions' `engine` backend ("mermaid" or "graphviz"), not yet drawn."""
    return graph_source(flow, engine, HeatLook(flow, report))


def _step(steps: tuple, share: float, reached: bool) -> int:
    """The step a share falls in: 0 when nothing reached, else the last step whose floor it passes."""
    if not reached:
        return 0
    return max(i for i, (floor, *_rest) in enumerate(steps) if i == 1 or (i > 1 and share > floor))


class HeatLook:
    """The look graph.py's backends ask for: each node's lines, class and attributes; each edge's label."""

    def __init__(self, flow: f.Flow, report: dict) -> None:
        self.flow = flow
        self.calls = report.get("calls", 0)
        self.states = report.get("states", {})
        self.legend = LEGEND
        self.counts = _edge_counts(flow, self.states)
        counted = [n for n in self.counts.values() if n]
        self.busiest = max(counted, default=0)

    def figures(self, name: str) -> dict:
        return self.states.get(name) or {}

    def node(self, node) -> tuple[list[str], str, dict]:
        if node.kind == "ways_out":
            return [node.label], "ways_out", {"shape": "note", "fillcolor": "#fff8e1", "color": "#8d6e63"}
        name = node.label if node.copy else node.name  # a copy is labelled with its state's name
        figures = self.figures(name)
        reached, hung_up = figures.get("calls", 0), figures.get("hung_up_here", 0)
        traffic = _step(TRAFFIC, reached / self.calls if self.calls else 0.0, reached > 0)
        drop = _step(DROP_OFF, hung_up / reached if reached else 0.0, hung_up > 0)
        lines = [name]
        if reached:
            share = f" ({reached / self.calls:.0%})" if self.calls else ""
            lines.append(f"entered {figures.get('entered', 0)} · {reached} call{'' if reached == 1 else 's'}{share}")
        else:
            lines.append("not reached")
        if hung_up:
            lines.append(f"hung up {hung_up} ({hung_up / reached:.0%})")
        _floor, border, width = DROP_OFF[drop]
        attrs = {"fillcolor": TRAFFIC[traffic][1], "color": border, "penwidth": str(width)}
        return lines, f"heat_{traffic}" + (f"_drop_{drop}" if drop else ""), attrs

    def edge(self, source: str, target: str, label: str, internal: bool) -> tuple[str, dict]:
        if target[1:].count("~"):  # a copy of a shared target (graph.py's _share): "bye~2"
            target = target.rpartition("~")[0]
        count = self.counts.get((source, target))
        if count is None:
            return f"{label} · ?", dict(_UNCOUNTED)
        if not count:
            return f"{label} · 0", dict(_UNCOUNTED)
        width = 1 + 4 * count / self.busiest
        return f"{label} · {count}", {"penwidth": f"{width:.1f}"}


def _edge_counts(flow: f.Flow, states: dict) -> dict[tuple[str, str], int | None]:
    """(source, target) -> how many times the edge was taken; None when the journal cannot tell."""
    by_state: dict[str, list[dict]] = {}
    for t in machine_definition(flow, nothing_on_enter)["transitions"]:
        by_state.setdefault(t["source"], []).append(t)
    counts: dict[tuple[str, str], int | None] = {}
    inherited: dict[str, list[str]] = {}  # a way out of every menu -> the menus that take it
    for source, transitions in by_state.items():
        state = flow.states.get(source)
        figures = states.get(source) or {}
        ways_out = {r.outcome for r in state.routes if r.inherited} if state else set()
        for t in transitions:
            dest, trigger = t.get("dest"), t["trigger"]
            if dest is None and trigger in f.RETRY_EVENTS:
                continue  # a retry below its max: not drawn
            if trigger in ways_out:
                inherited.setdefault(trigger, []).append(source)
                continue
            key = (source, dest or source)
            n = _taken(state, figures, t, transitions)
            counts[key] = None if n is None or (key in counts and counts[key] is None) else counts.get(key, 0) + n
    for route in flow.defaults.routes:
        if route.outcome in inherited:
            target = WAYS_OUT if route.target in f.SPECIAL_TARGETS else route.target
            menus = inherited[route.outcome]
            n = sum((states.get(m) or {}).get("routes", {}).get(route.outcome, 0) for m in menus)
            counts[(WAYS_OUT, target)] = counts.get((WAYS_OUT, target), 0) + n
    return counts


def _taken(state: f.State | None, figures: dict, t: dict, transitions: list[dict]) -> int | None:
    """How many times the transition `t` of `state` fired, by the report's figures; None: unknown."""
    trigger, routes = t["trigger"], figures.get("routes", {})
    if state is None or t.get("conditions"):
        return None
    if trigger in f.RETRY_EVENTS:  # the retries ran out: max_reached counts both kinds, on the first
        ends = [x for x in transitions if x["trigger"] in f.RETRY_EVENTS and x.get("dest")]
        if len({x["dest"] for x in ends}) > 1:
            return None
        return figures.get("max_reached", 0) if t is ends[0] else 0
    if trigger.startswith(f"{SPLIT_EVENT}:"):
        return routes.get(trigger.partition(":")[2], 0)
    if trigger == "no_recording" and isinstance(state.action, f.Record):
        return figures.get("no_input", 0) + figures.get("max_reached", 0)
    if trigger == "error":  # a failed hook writes an error row too: the errors alone count every way there
        return figures.get("errors", 0)
    if trigger == "next":
        if any(x["trigger"] == "next" and x.get("conditions") for x in transitions):
            return None
        named = {x["trigger"] for x in transitions}
        if named <= {"next", "error"} and state.action is None and not state.split:
            return max(0, figures.get("entered", 0) - figures.get("errors", 0))
        return sum(n for outcome, n in routes.items() if outcome not in named)
    return routes.get(trigger, 0)
