"""Heat maps: the desk flow's calls, driven with the built-in phone as tests/test_report.py drives them,
drawn with the report's figures (ivr/core/heat.py), from the command line too (`graph --heat`)."""

from __future__ import annotations

import re
import shutil
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from test_report import DESK, seven_calls
from transitions.extensions import diagrams_graphviz

from ivr.analytics.report import Window, build_report
from ivr.cli import cli
from ivr.core.heat import DROP_OFF, TRAFFIC, heat_mermaid
from ivr.core.loader import load_flow, load_flow_text
from ivr.web.drawing import heat_svg
from ivr.web.services import services

HAS_DOT = shutil.which("dot") is not None and diagrams_graphviz.pgv is not None
NO_DOT_REASON = "Graphviz is not installed (Debian's graphviz package and the graphviz Python package)"
EDGE = re.compile(r"^\s*(\w+) --> (\w+): (.*) · (\d+|\?)$")
CLASS = re.compile(r"^\s*class (\w+) (\w+)$")


@pytest.fixture
def drawn(desk):
    """The desk's seven calls: the flow, its report, and its heat map as Mermaid."""
    seven_calls(desk)
    db = desk.finish()
    flow = services(desk.app).flows.engine("desk").flow
    report = build_report(db, flow, Window(source="phone"))
    return flow, report, heat_mermaid(flow, report)


def edges(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, target) -> (label, count) of each counted edge."""
    found = {}
    for line in text.splitlines():
        if m := EDGE.match(line):
            found[(m[1], m[2])] = (m[3], m[4])
    return found


def classes(text: str) -> dict[str, str]:
    return {m[1]: m[2] for line in text.splitlines() if (m := CLASS.match(line))}


def test_edges_carry_the_times_each_way_was_taken(drawn):
    _flow, _report, text = drawn
    assert edges(text) == {
        ("menu", "hours"): ("1", "1"),
        ("menu", "person"): ("2", "2"),
        ("menu", "message"): ("3", "1"),
        ("menu", "lookup"): ("4", "1"),
        ("menu", "bye"): ("no_input x2, no_match x2", "1"),  # the caller who stayed silent
        ("hours", "bye"): ("next", "2"),
        ("person", "bye"): ("completed", "1"),
        ("person", "message"): ("busy, canceled, failed, no-answer", "1"),
        ("message", "bye"): ("no_recording", "1"),
        ("message", "thanks"): ("recorded", "1"),
        ("thanks", "bye"): ("next", "1"),
        ("lookup", "hours"): ("found", "1"),
        ("lookup", "sorry"): ("error", "0"),
        ("lookup", "menu"): ("next", "0"),
    }


def test_edge_counts_are_the_reports_routes(drawn):
    """Each outcome in a state's routes is on one edge from it, whose count is its edge's outcomes' sum."""
    _flow, report, text = drawn
    drawn_edges = edges(text)
    for name, figures in report["states"].items():
        for outcome in figures["routes"]:
            [(label, count)] = [e for (s, _t), e in drawn_edges.items() if s == name and outcome in e[0].split(", ")]
            assert int(count) == sum(figures["routes"].get(o, 0) for o in label.split(", ")), (name, outcome)


def test_the_calls_into_each_state_add_up_to_its_entries(drawn):
    flow, report, text = drawn
    into: dict[str, int] = {flow.start: report["calls"]}
    for (_source, target), (_label, count) in edges(text).items():
        into[target] = into.get(target, 0) + int(count)
    assert {name: figures["entered"] for name, figures in report["states"].items()} == {
        name: into.get(name, 0) for name in report["states"]
    }


def test_states_are_painted_by_traffic_and_drop_off(drawn):
    _flow, report, text = drawn
    painted = classes(text)
    busiest = max(report["states"], key=lambda name: report["states"][name]["calls"])
    assert busiest == "menu"
    assert painted["menu"] == "heat_4_drop_1"  # every call, and one in seven hung up there
    assert painted["bye"] == "heat_4"  # six calls of seven, nobody hung up on a goodbye
    assert painted["person"] == painted["hours"] == "heat_2"  # two of seven
    assert painted["thanks"] == painted["lookup"] == "heat_1"  # one of seven
    assert painted["sorry"] == "heat_0"
    _floor, red, width = DROP_OFF[1]
    assert f"classDef heat_4_drop_1 fill:{TRAFFIC[4][1]},stroke:{red},stroke-width:{width}px" in text
    assert f"classDef heat_0 fill:{TRAFFIC[0][1]}," in text
    assert 'state "menu<br/>entered 7 · 7 calls (100%)<br/>hung up 1 (14%)" as menu' in text
    assert 'state "sorry<br/>not reached" as sorry' in text
    assert "note left of menu" in text  # the legend
    assert heat_mermaid(*drawn[:2]) == text  # the same text every time


def test_a_flow_nobody_called_is_cold_and_its_edges_zero():
    flow = load_flow(DESK / "desk.yaml")
    text = heat_mermaid(flow, {"calls": 0, "states": {}})
    assert set(classes(text).values()) == {"heat_0"}
    assert {count for _label, count in edges(text).values()} == {"0"}


def test_a_condition_or_a_variant():
    flow = load_flow_text(
        "start: pick\nstates:\n"
        "  pick:\n    split: {a: 60, b: 40}\n"
        "  a:\n    when:\n      - if: now.hour < 12\n        next: b\n    next: bye\n"
        "  b:\n    next: bye\n"
        "  bye:\n    hangup: true\n",
        "x.yaml",
        "x",
    )
    states = {
        "pick": {"entered": 10, "calls": 10, "routes": {"a": 6, "b": 4}},
        "a": {"entered": 6, "calls": 6, "hung_up_here": 6},
        "b": {"entered": 5, "calls": 5},
    }
    text = heat_mermaid(flow, {"calls": 10, "states": states})
    found = edges(text)
    assert found[("pick", "a")] == ("60%", "6") and found[("pick", "b")] == ("40%", "4")
    assert found[("a", "b")][1] == found[("a", "bye")][1] == "?"  # the journal does not say which branch
    assert found[("b", "bye")] == ("next", "5")
    assert classes(text)["a"] == "heat_3_drop_3"  # 60% of the calls; all of them hung up there


# -- the command ---------------------------------------------------------------------------------


def graph_cli(desk, monkeypatch, *args: str):
    monkeypatch.setenv("IVR_EVENTS", desk.app.config["IVR_EVENTS"])
    return CliRunner().invoke(cli, ["graph", "desk", "--flows", str(DESK), *args])


def test_command_draws_the_heat_map(drawn, desk, monkeypatch):
    _flow, _report, text = drawn
    result = graph_cli(desk, monkeypatch, "--heat", "--source", "phone")
    assert result.exit_code == 0, result.output
    assert result.stdout == text
    later = graph_cli(desk, monkeypatch, "--heat", "--source", "phone", "--since", "2030-01-01")
    assert later.exit_code == 0, later.output
    assert set(classes(later.stdout).values()) == {"heat_0"}  # no call in that window
    twilio = graph_cli(desk, monkeypatch, "--heat")  # Twilio's calls by default: none
    assert 'state "menu<br/>not reached" as menu' in twilio.stdout


def test_command_without_heat_is_unchanged_and_refuses_a_window(drawn, desk, monkeypatch):
    plain = graph_cli(desk, monkeypatch)
    assert plain.exit_code == 0, plain.output
    assert "menu --> person: 2\n" in plain.stdout and "·" not in plain.stdout
    refused = graph_cli(desk, monkeypatch, "--source", "phone")
    assert refused.exit_code == 2
    assert "--source chooses the calls of a heat map: add --heat" in refused.output


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT_REASON)
def test_command_draws_the_heat_map_as_svg(drawn, desk, monkeypatch):
    flow, report, _text = drawn
    result = graph_cli(desk, monkeypatch, "--heat", "--source", "phone", "--format", "svg")
    assert result.exit_code == 0, result.output
    svg = ElementTree.fromstring(result.stdout)
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "2 · 2" in texts and "hung up 1 (14%)" in texts and "entered 6 · 6 calls (86%)" in texts
    assert result.stdout.encode() == heat_svg(flow, report)
    red = [p for p in svg.iter("{http://www.w3.org/2000/svg}path") if p.get("stroke") == DROP_OFF[1][1]]
    assert red  # the menu's border
