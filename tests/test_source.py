"""ivr.core.loader.source: YAML composed into positioned nodes and read under the flow language's
rules (YAML 1.2 scalars, keys as written, duplicates refused, every problem collected)."""

from __future__ import annotations

import pytest

from ivr.core.flow import Pos
from ivr.core.loader.source import Reader, compose, core_scalar, describe, key_paths
from ivr.errors import FlowError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("01", 1),
        ("1.5", 1.5),
        ("'01'", "01"),
        ("+15551230000", 15551230000),
    ],
)
def test_scalars_follow_yaml_1_2_core(text, value):
    assert core_scalar(compose(f"k: {text}", "f.yaml").value[0][1]) == value


def test_syntax_errors_name_the_file_line_and_column():
    with pytest.raises(FlowError) as raised:
        compose("a: 1\nb: c: d\n", "flows/x.yaml")
    assert (raised.value.file, raised.value.line, raised.value.column) == ("flows/x.yaml", 2, 5)
    assert raised.value.message.startswith("YAML syntax:")
    assert raised.value.message.endswith("text with ': ' in it must be quoted")


def test_an_empty_document_composes_to_nothing():
    assert compose("", "f.yaml") is None


def test_a_duplicate_key_is_an_error_at_the_second_one():
    reader = Reader("f.yaml")
    items = reader.mapping(compose("a: 1\nb: 2\na: 3\n", "f.yaml"), "")
    assert set(items) == {"a", "b"}
    [error] = reader.errors
    assert (error.line, error.column) == (3, 1)
    assert (error.path, error.message) == ("a", "duplicate key (first defined at line 1)")


def test_keys_are_read_as_written():
    reader = Reader("f.yaml")
    items = reader.mapping(compose('"1": a\n01: b\n"*": c\n', "f.yaml"), "routes")
    assert list(items) == ["1", "01", "*"]
    assert reader.errors == []


def test_a_non_string_key_is_an_error_with_its_line():
    reader = Reader("f.yaml")
    reader.mapping(compose("a: 1\n[1, 2]: b\n", "f.yaml"), "routes")
    [error] = reader.errors
    assert error.line == 2


def test_mappings_of_a_list_report_the_items_that_are_not_mappings():
    reader = Reader("f.yaml")
    found = [
        (path, sorted(entry)) for _, path, entry in reader.mappings(compose("- a: 1\n- 2\n- b: 3\n", "f.yaml"), "l")
    ]
    assert found == [("l[0]", ["a"]), ("l[2]", ["b"])]
    [error] = reader.errors
    assert (error.line, error.path) == (2, "l[1]")


def test_key_paths_name_every_value_by_its_position():
    paths = key_paths('states:\n  menu:\n    routes: {"1": sales}\n    say: [Hi]\n', "f.yaml")
    assert paths[(3, 5)] == "states.menu"
    assert paths[(3, 13)] == "states.menu.routes"
    assert paths[(3, 19)] == 'states.menu.routes."1"'
    assert paths[(4, 10)] == "states.menu.say"
    assert paths[(4, 11)] == "states.menu.say[0]"


def test_describe_names_a_node_for_messages():
    root = compose("a: {b: 1}\nc: [1]\nd:\ne: x\n", "f.yaml")
    assert [describe(v) for _, v in root.value] == ["a mapping", "a list", "nothing", "'x'"]


def test_a_reader_places_problems_at_a_node_or_a_position():
    reader = Reader("f.yaml")
    root = compose("a: 1\n", "f.yaml")
    reader.error(root.value[0][1], "a", "bad")
    reader.error(Pos("f.yaml", 9, 2), "z", "worse", "warning")
    assert [e.format() for e in reader.errors] == ["f.yaml:1:4: error: a: bad", "f.yaml:9:2: warning: z: worse"]
