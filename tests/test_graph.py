"""Pictures of a flow: Mermaid text, Graphviz SVG and graph data, all from the engine's transitions."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from conftest import FLOWS, TEST_FLOWS
from transitions.extensions import diagrams_graphviz

from ivr.cli.graph import graph as graph_command
from ivr.core import flow as f
from ivr.core.engine import Engine
from ivr.core.graph import graph_data, mermaid
from ivr.core.loader import load_flow, load_flow_text

GRAPH = TEST_FLOWS / "graph"
HAS_DOT = shutil.which("dot") is not None and diagrams_graphviz.pgv is not None
NO_DOT_REASON = "Graphviz is not installed (Debian's graphviz package and the graphviz Python package)"


@pytest.fixture(scope="module")
def small():
    return load_flow(GRAPH / "small.yaml")


@pytest.fixture(scope="module")
def main_data():
    return graph_data(load_flow(FLOWS / "main.yaml"))


def draw(*args: str):
    return CliRunner().invoke(graph_command, [*args, "--flows", str(FLOWS)])


# -- Mermaid -------------------------------------------------------------------------------------


def test_mermaid_of_a_small_flow_is_the_golden_text(small):
    assert mermaid(small) == (GRAPH / "small.mmd").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "line",
    [
        "menu --> help_desk: 1, help",  # a key and a phrase to one state: one edge
        "lookup --> menu: found, next",
        "[*] --> greet",
        "class greet kind_start",
        "class oops kind_error",
        "class help_desk kind_end",  # a redirect out of the flow
        "class bye kind_end",
        "class menu kind_menu",
        "bye --> [*]",
        "help_desk --> [*]",
        'state "~goodbye" as builtin_goodbye',  # reached when the menu's retries run out
        "builtin_goodbye --> [*]",
        "menu --> builtin_goodbye: no_input x2, no_match x3",
        "menu --> menu: * (repeat)",
        "news --> news: 9 (back)",
        "s_note --> help_desk: if {'morning'#58; now.hour < 12}[…",  # shortened; ':' escaped
        'state "help-desk" as help_desk',  # Mermaid ids take no '-', and 'note' is a keyword
    ],
)
def test_mermaid_marks_and_labels(small, line):
    assert line in [text.strip() for text in mermaid(small).splitlines()]


def test_mermaid_leaves_out_the_retries_below_their_max(small):
    text = mermaid(small)
    assert "menu --> menu: no_input" not in text
    assert "no_input (" not in text


def test_the_builtin_apology_appears_when_a_failed_hook_leads_there():
    flow = load_flow_text(
        "start: ask\nstates:\n  ask:\n    run: lookup\n    next: done\n  done:\n    hangup: true\n", "x.yaml", "x"
    )
    data = graph_data(flow)
    assert {"source": "ask", "target": "~apology", "label": "error"} in data["edges"]
    assert {"id": "~apology", "label": "~apology", "kind": "end"} in data["nodes"]
    assert "~goodbye" not in [n["id"] for n in data["nodes"]]  # nothing leads there


# -- graph data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "label"),
    [
        ("welcome", "office_hours", "next"),
        ("office_hours", "menu", "if now.weekday() < 5 and 9 <=…"),
        ("office_hours", "after_hours_menu", "next"),
        ("menu", "sales", "1, sales"),
        ("menu", "support_menu", "2, support"),
        ("menu", "voicemail", "3"),
        ("menu", "hours", "4"),
        ("menu", "goodbye", "no_input x3, no_match x3"),
        ("support_menu", "menu", "9"),
        ("support_menu", "billing", "1, billing"),
        ("sales", "goodbye", "completed"),
        ("sales", "voicemail", "busy, canceled, failed, no-answer"),  # a plain dial never reports answered
        ("tech", "goodbye", "bridged"),
        ("voicemail", "goodbye", "no_recording"),
        ("voicemail", "thanks_for_message", "recorded"),
    ],
)
def test_graph_data_of_main_has_the_edges(main_data, source, target, label):
    assert {"source": source, "target": target, "label": label} in main_data["edges"]


def test_graph_data_of_main_marks_the_kinds(main_data):
    kinds = {n["id"]: n["kind"] for n in main_data["nodes"]}
    assert kinds["welcome"] == "start"
    assert kinds["apology"] == "error"
    assert kinds["goodbye"] == kinds["hours"] == "end"  # a hang-up, a redirect to another flow
    assert kinds["menu"] == kinds["support_menu"] == kinds["after_hours_menu"] == "menu"
    assert kinds["sales"] == kinds["office_hours"] == "state"
    assert "~goodbye" not in kinds and "~apology" not in kinds  # every menu names on_max; no hooks


def test_graph_data_edges_are_the_engines_transitions(main_data):
    """Every transition the engine builds, but a retry below its max, is on one edge, and no other edge."""
    flow = load_flow(FLOWS / "main.yaml")
    engine_pairs = {
        (t["source"], t["dest"] or t["source"])
        for t in Engine(flow).machine_definition()["transitions"]
        if not (t["dest"] is None and t["trigger"] in f.RETRY_EVENTS)
    }
    edges = [(e["source"], e["target"]) for e in main_data["edges"]]
    assert len(edges) == len(set(edges))
    assert set(edges) == engine_pairs


# -- Graphviz ------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT_REASON)
def test_svg_of_main_through_graphviz(tmp_path):
    out = tmp_path / "main.svg"
    result = draw("main", "--output", str(out))  # the format follows the suffix
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "<title>menu&#45;&gt;sales</title>" in svg
    assert ">1, sales</text>" in svg
    assert ">Acme main line</text>" in svg


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT_REASON)
def test_png_of_main_through_graphviz(tmp_path):
    out = tmp_path / "main.png"
    assert draw("main", "--format", "png", "-o", str(out)).exit_code == 0
    assert out.read_bytes().startswith(b"\x89PNG")


# -- the command ---------------------------------------------------------------------------------


def test_command_prints_mermaid_by_default():
    result = draw("main")
    assert result.exit_code == 0, result.output
    assert result.stdout == mermaid(load_flow(FLOWS / "main.yaml"))


def test_command_takes_a_flow_file(tmp_path):
    out = tmp_path / "small.mmd"
    result = CliRunner().invoke(graph_command, [str(GRAPH / "small.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == (GRAPH / "small.mmd").read_text(encoding="utf-8")


def test_command_names_an_unknown_flow_and_the_known_ones():
    result = draw("mian")
    assert result.exit_code == 2
    assert "no flow 'mian' in " in result.output
    assert (
        "(did you mean 'main'?) (flows: accounts, assistant, billing, hours, main, orders, payments, pin, reminder)"
        in result.output
    )


def test_command_svg_without_graphviz_names_debians_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere
    result = draw("main", "--format", "svg")
    assert result.exit_code == 1
    assert "svg needs Graphviz: its dot program is not on PATH" in result.output
    assert "apt-get install graphviz" in result.output
    assert "--format mermaid" in result.output


def test_command_svg_without_the_graphviz_package(monkeypatch):
    monkeypatch.setattr(diagrams_graphviz, "pgv", None)
    result = draw("main", "--format", "svg")
    assert result.exit_code == 1
    assert "the graphviz Python package is missing" in result.output
    assert "apt-get install graphviz" in result.output


def test_command_png_needs_a_file():
    result = draw("main", "--format", "png")
    assert result.exit_code == 2
    assert "png is binary: name a file with --output" in result.output


def test_command_reports_a_broken_flow_with_its_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: nowhere\nstates:\n  a:\n    hangup: true\n", encoding="utf-8")
    result = CliRunner().invoke(graph_command, [str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml:1:8: error: start: unknown state 'nowhere'" in result.output
