"""The importer's YAML: what people write (plain where it reads back the same, flow-style short maps,
comments above states), and a driver that refuses to hand back a flow that does not load."""

from __future__ import annotations

import pytest
import yaml

from ivr.studio import convert, read_definition
from ivr.studio.writer import dump_flow, scalar


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Hello there.", "Hello there."),
        ("1", '"1"'),
        ("yes", '"yes"'),
        ("null", '"null"'),
        ("Press 1: sales", '"Press 1: sales"'),
        ("{{ call.From }}", '"{{ call.From }}"'),
        ('say "hi"', 'say "hi"'),
        ('"hi" she said', "'\"hi\" she said'"),
        (" padded", '" padded"'),
        ("a # not a comment", '"a # not a comment"'),
        ("two\nlines", '"two\\nlines"'),
        (3, "3"),
        (True, "true"),
    ],
)
def test_scalars_are_quoted_only_where_yaml_would_misread_them(value, written):
    assert scalar(value) == written
    assert yaml.safe_load(f"key: {written}")["key"] == value


def test_a_flow_reads_as_written_by_hand_and_loads_back():
    states = {
        "menu": {
            "say": "Press 1.",
            "gather": {"num_digits": 1},
            "routes": {"1": "sales", "a, b": "sales"},
            "when": [{"if": "input.speech", "next": "sales"}],
            "next": "sales",
        },
        "sales": {"hangup": True},
    }
    text = dump_flow({"title": "T", "start": "menu"}, states, {"menu": ["why this is so"]}, ["top"])
    assert text == (
        "# top\n"
        "title: T\n"
        "start: menu\n"
        "states:\n"
        "  # why this is so\n"
        "  menu:\n"
        "    say: Press 1.\n"
        "    gather: {num_digits: 1}\n"
        '    routes: {"1": sales, "a, b": sales}\n'
        "    when:\n"
        "      - if: input.speech\n"
        "        next: sales\n"
        "    next: sales\n"
        "\n"
        "  sales:\n"
        "    hangup: true\n"
    )
    assert yaml.safe_load(text)["states"] == states


def test_a_widget_whose_properties_cannot_be_read_is_marked_todo_not_a_crash():
    definition = read_definition(
        {"states": [
            {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "vars"}]},
            {"name": "vars", "type": "set-variables", "transitions": [], "properties": {"variables": ["not a pair"]}},
        ]},
        "flow.json",
    )  # fmt: skip
    imported = convert(definition, "odd")
    assert "todo:" in imported.text
    assert imported.reports[0].format().startswith('flow.json: states[1] "vars" (set-variables): cannot be read (')
