"""Big flows stay quick to draw and readable: the ways out of every menu are drawn once, a state many
states lead to is drawn beside each of them, so the picture's edges stay short whatever the flow's depth;
and Graphviz is refused what it could not draw in seconds, with the way to draw it as Mermaid."""

from __future__ import annotations

import os
import re
from collections import deque

import pytest
from click.testing import CliRunner
from conftest import TEST_FLOWS
from transitions.extensions import diagrams_graphviz

from ivr.cli.graph import graph as graph_command
from ivr.core.graph import MAX_RANKS_CROSSED, SHARED_SOURCES, graph_data, graph_source, mermaid
from ivr.core.layout import ranks_crossed
from ivr.core.loader import load_flow, load_flow_text
from ivr.testing import generated_flow, generated_survey
from ivr.web import drawing

NEEDS_GRAPHVIZ_PACKAGE = pytest.mark.skipif(diagrams_graphviz.pgv is None, reason="the graphviz package is missing")
_DOT_EDGE = re.compile(r'\t("[^"]*"|\S+) -> ("[^"]*"|\S+)')


@pytest.fixture(scope="module")
def ways_out():
    return load_flow(TEST_FLOWS / "graph" / "ways_out.yaml")


def survey(states: int):
    return load_flow_text(generated_survey(states), "survey.yaml", "survey")


def dot_edges(flow) -> list[tuple[str, str]]:
    """The (source, target) of every edge Graphviz is given for the flow."""
    return _DOT_EDGE.findall(graph_source(flow, "graphviz").source)


def mermaid_lines(flow) -> list[str]:
    return [line.strip() for line in mermaid(flow).splitlines()]


# -- the ways out of every menu ------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'state "every menu" as builtin_every_menu',
        "class builtin_every_menu kind_ways_out",
        "builtin_every_menu --> operator: 0",
        "builtin_every_menu --> builtin_every_menu: * (repeat), 9 (back)",
        "support --> support_desk: 0",  # a menu's own route for the same key is its own edge
    ],
)
def test_the_ways_out_of_every_menu_are_drawn_once(ways_out, line):
    assert line in mermaid_lines(ways_out)


def test_no_menu_draws_the_ways_out_itself(ways_out):
    lines = mermaid_lines(ways_out)
    assert not [line for line in lines if line.startswith(("main_menu --> operator", "billing --> operator"))]
    assert not [line for line in lines if "(repeat)" in line and not line.startswith("builtin_every_menu")]


def test_graph_data_keeps_every_menus_ways_out(ways_out):
    """The browser phone marks the edges a call takes: its data has the edge from each menu."""
    edges = graph_data(ways_out)["edges"]
    assert {"source": "billing", "target": "operator", "label": "0"} in edges
    assert {"source": "main_menu", "target": "main_menu", "label": "* (repeat), 9 (back)"} in edges
    assert "~every menu" not in [n["id"] for n in graph_data(ways_out)["nodes"]]


# -- a state many states lead to -----------------------------------------------------------------


def test_a_state_many_states_lead_to_is_drawn_beside_each():
    flow = survey(30)  # every question's retries end in goodbye
    lines = mermaid_lines(flow)
    assert "main_menu --> goodbye: no_input x3, no_match x3" in lines  # the first keeps the edge
    assert "q1 --> goodbye_2: no_input x2, no_match x3" in lines
    assert 'state "goodbye" as goodbye_2' in lines
    assert "class goodbye_2 copy_end" in lines
    assert "goodbye --> [*]" in lines
    assert "goodbye_2 --> [*]" not in lines  # the copy names it; the state itself ends the call


def test_a_state_few_states_lead_to_keeps_its_edges():
    flow = survey(SHARED_SOURCES + 2)  # goodbye follows all but itself and apology: SHARED_SOURCES states
    assert not [line for line in mermaid_lines(flow) if "goodbye_2" in line]


@NEEDS_GRAPHVIZ_PACKAGE
@pytest.mark.parametrize("make", [survey, lambda n: load_flow_text(generated_flow(n), "gen.yaml", "gen")])
def test_the_graph_of_100_states_has_short_edges(make):
    """What dot's layout costs grows with the ranks each edge crosses: edges from every state of a deep
    flow to one goodbye made it quadratic (minutes at 100 states). Measured here as the breadth-first
    depths the edges join, and as how many edges one node receives."""
    flow = make(100)
    edges = dot_edges(flow)
    assert len(edges) <= 5 * len(flow.states)
    into: dict[str, set[str]] = {}
    for source, target in edges:
        if source != target:
            into.setdefault(target, set()).add(source)
    assert max(len(sources) for sources in into.values()) <= SHARED_SOURCES
    depth = _depths(edges, '"[*]"')
    spans = sum(abs(depth[target] - depth[source]) for source, target in edges if target in depth and source in depth)
    assert spans <= 10 * len(flow.states)


@NEEDS_GRAPHVIZ_PACKAGE
def test_the_graph_asks_graphviz_for_nothing_slow():
    source = graph_source(survey(100), "graphviz").source
    for slow in ("splines=ortho", "concentrate", "subgraph cluster"):
        assert slow not in source


def _depths(edges: list[tuple[str, str]], start: str) -> dict[str, int]:
    out, queue = {start: 0}, deque([start])
    following: dict[str, list[str]] = {}
    for source, target in edges:
        following.setdefault(source, []).append(target)
    while queue:
        node = queue.popleft()
        for target in following.get(node, ()):
            if target not in out:
                out[target] = out[node] + 1
                queue.append(target)
    return out


# -- what Graphviz is refused --------------------------------------------------------------------


def draw_file(tmp_path, text: str, *args: str):
    path = tmp_path / "big.yaml"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(graph_command, [str(path), *args])


def fake_dot(directory, script: str) -> None:
    """A `dot` on PATH that runs `script` (sh) instead of Graphviz."""
    dot = directory / "dot"
    dot.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    dot.chmod(0o755)


@pytest.mark.parametrize(
    ("edges", "crossed"),
    [
        ([("a", "b"), ("b", "c")], 2),
        ([("a", "b"), ("b", "c"), ("a", "c")], 4),  # c is ranked after b: a -> c crosses two ranks
        ([("a", "b"), ("b", "c"), ("c", "a")], 4),  # the cycle is broken by turning c -> a round
        ([("a", "a"), ("a", "b")], 1),  # a self-loop crosses none
        ([], 0),
    ],
)
def test_ranks_crossed_ranks_as_dot_does(edges, crossed):
    assert ranks_crossed(edges) == crossed


@NEEDS_GRAPHVIZ_PACKAGE
def test_a_flow_dot_would_take_long_over_is_refused_before_it_runs(tmp_path, monkeypatch):
    """The generated flow's every state leads to the next three: 300 states took dot 17 s."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot: the refusal comes first
    result = draw_file(tmp_path, generated_flow(300), "--format", "svg")
    assert result.exit_code == 1
    assert "flow 'big' is too big to draw with Graphviz: its 1,200 edges cross 3,873 ranks in all" in result.output
    assert f"and dot takes more than a few seconds above {MAX_RANKS_CROSSED:,}." in result.output
    assert "Use --format mermaid (the default)" in result.output


def test_a_flow_too_big_for_graphviz_is_drawn_as_mermaid(tmp_path):
    result = draw_file(tmp_path, generated_flow(300))
    assert result.exit_code == 0, result.output
    assert "s299 --> s0: 1" in result.stdout


@NEEDS_GRAPHVIZ_PACKAGE
def test_dot_running_too_long_is_stopped_and_names_mermaid(tmp_path, monkeypatch):
    fake_dot(tmp_path, f"echo $$ > {tmp_path}/pid\nexec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(drawing, "DOT_SECONDS", 0.5)
    result = draw_file(tmp_path, (TEST_FLOWS / "graph" / "small.yaml").read_text(encoding="utf-8"), "--format", "svg")
    assert result.exit_code == 1
    assert "Graphviz did not draw flow 'big' as svg within 0.5 s and was stopped" in result.output
    assert "Use --format mermaid (the default)" in result.output
    with pytest.raises(ProcessLookupError):  # killed, and waited for
        os.kill(int((tmp_path / "pid").read_text()), 0)


@NEEDS_GRAPHVIZ_PACKAGE
def test_dot_failing_is_reported_with_what_it_said(tmp_path, monkeypatch):
    fake_dot(tmp_path, "echo 'Error: <stdin>: syntax error in line 3' >&2\nexit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    result = draw_file(tmp_path, (TEST_FLOWS / "graph" / "small.yaml").read_text(encoding="utf-8"), "--format", "svg")
    assert result.exit_code == 1
    assert "Graphviz could not draw flow 'big' as svg: Error: <stdin>: syntax error in line 3" in result.output
