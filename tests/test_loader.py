"""Reading flow files: each mistake named at file:line:col with its key path, YAML read by the 1.2 rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from bad_flows import BAD, assert_mistake, assert_one_error, errors_of
from conftest import check_twiml

from ivr.core.engine import Engine, new_session
from ivr.core.loader import flow_files, load_flow, load_flow_text, load_flows
from ivr.errors import FlowLoadError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "flows"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def load(text: str):
    return load_flow_text(text, "t.yaml", "t")


# file, line, column, key path, message (a substring)
MISTAKES = [
    ("unknown_key.yaml", 4, 5, "states.welcome.sya", "unknown key (did you mean 'say'?)"),
    ("number_is_text.yaml", 5, 23, "states.menu.gather.timeout", "expected a whole number, got 'five'"),
    ("text_is_mapping.yaml", 5, 11, "states.welcome.next", "expected text, got a mapping"),
    ("hangup_yes.yaml", 5, 13, "states.bye.hangup", "expected true or false, got 'yes'"),
    ("missing_start.yaml", 1, 1, "start", "missing key: name the state a call starts in"),
    ("two_actions.yaml", 6, 5, "states.welcome.hangup", "a state does one thing; it already has 'gather'"),
    ("template_private.yaml", 4, 10, "states.welcome.say", "is not allowed in templates (names starting with '_'"),
    ("template_syntax.yaml", 4, 10, "states.welcome.say", "template syntax: unexpected end of template"),
    ("bad_timezone.yaml", 2, 13, "defaults.timezone", "unknown time zone 'America/New_Yrok' (use an IANA name"),
    ("bad_state_name.yaml", 5, 3, 'states."main menu"', "state names may use only letters, digits, '_' and '-'"),
    ("yaml_syntax.yaml", 4, 19, "", "YAML syntax: mapping values are not allowed"),
    ("empty.yaml", 1, 1, "", "the flow file is empty"),
    ("duplicate_key.yaml", 6, 3, "states.welcome", "duplicate key (first defined at line 3)"),
    ("non_scalar_key.yaml", 6, 9, "states.menu.routes", "keys must be plain text, got a list"),
    ("yaml_dedented_key.yaml", 8, 3, "", "YAML indentation: line 8 is indented 2 spaces, the lines around it 4"),
    ("yaml_tab_before_key.yaml", 4, 1, "", "a tab is not indentation in YAML: use spaces"),
    ("yaml_tab_after_text.yaml", 5, 3, "", "a tab is not indentation in YAML: use spaces"),
]


@pytest.mark.parametrize(("name", "line", "column", "path", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_reported_at_its_position(name, line, column, path, message):
    assert_mistake(name, line, column, path, message)


@pytest.mark.parametrize("name", [m[0] for m in MISTAKES])
def test_one_mistake_gives_one_error(name):
    assert_one_error(name)


def test_error_formats_as_file_line_column_path_message():
    [error] = errors_of("unknown_key.yaml")
    assert error.format() == f"{error.file}:4:5: error: states.welcome.sya: unknown key (did you mean 'say'?)"
    assert error.file.endswith("unknown_key.yaml")


def test_load_error_message_lists_every_problem_and_counts_them():
    with pytest.raises(FlowLoadError) as info:
        load_flow(BAD / "three_mistakes.yaml")
    lines = str(info.value).splitlines()
    assert lines[-1] == "3 errors in flow files"
    assert [line.split(": error: ")[1] for line in lines[:-1]] == [
        "states.menu.gather.num_digit: unknown key (did you mean 'num_digits'?)",
        "states.menu.routes.\"1\": unknown state 'biling' (did you mean 'billing'?)",
        "states.billing.hangup: expected true or false, got 'nope'",
    ]


def test_all_problems_of_a_file_are_reported_at_once_sorted_by_line():
    """Reading finds lines 5 and 9, the graph check line 6; the report is in file order."""
    errors = errors_of("three_mistakes.yaml")
    assert [(e.line, e.column, e.path) for e in errors] == [
        (5, 26, "states.menu.gather.num_digit"),
        (6, 19, 'states.menu.routes."1"'),
        (9, 13, "states.billing.hangup"),
    ]


def test_text_with_a_colon_is_still_told_to_be_quoted():
    """The indentation hint is for a key on the next line; `say: For sales: press 1.` is a colon in the text."""
    [error] = errors_of("yaml_syntax.yaml")
    assert "text with ': ' in it must be quoted" in error.message
    assert "indent" not in error.message


def test_a_dedented_state_key_names_its_indentation_and_every_other_problem_is_still_reported():
    errors = errors_of("dedented_hangup.yaml")
    assert [(e.line, e.column, e.path) for e in errors] == [
        (7, 5, "states.bye"),
        (8, 3, "states.hangup"),
        (11, 11, "states.later.next"),
    ]
    assert "waits for nothing and has no next" in errors[0].message
    assert errors[1].message == (
        "'hangup' is a key of a state, not a state: line 8 is indented 2 spaces, as state names are; "
        "indent it as the keys of 'bye' above it (4 spaces)"
    )


def test_unclosed_quote_is_reported_where_the_quote_opens():
    [error] = errors_of("yaml_unclosed_quote.yaml")
    assert "quoted scalar" in error.message
    assert error.line == 4 or "line 4" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ call['__class__'] }}",
        "{{ vars._secret }}",
    ],
)
def test_templates_reaching_for_private_names_are_refused_at_load(text):
    with pytest.raises(FlowLoadError) as info:
        load(f'start: a\nstates:\n  a:\n    say: "Hi {text}"\n    hangup: true\n')
    [error] = info.value.errors
    assert (error.line, error.column, error.path) == (4, 10, "states.a.say")
    assert "is not allowed in templates" in error.message


PRIVATE_CONDITION = """\
start: a
states:
  a:
    when:
      - {if: "().__class__", next: b}
    next: b
  b:
    hangup: true
"""


def test_condition_reaching_for_private_names_is_refused_at_load():
    with pytest.raises(FlowLoadError) as info:
        load(PRIVATE_CONDITION)
    [error] = info.value.errors
    assert (error.line, error.column, error.path) == (5, 14, "states.a.when[0].if")
    assert error.message.startswith("'__class__' is not allowed in templates")


def test_attr_filter_reaching_for_private_names_is_refused_at_load():
    [error] = errors_of("template_attr_filter.yaml")
    assert (error.line, error.column, error.path) == (4, 10, "states.welcome.say")
    assert "'__class__' is not allowed in templates" in error.message


# -- YAML 1.2 and keys as written ----------------------------------------------------------------

TRAPS = """\
start: menu
states:
  menu:
    say: no
    gather: {input: [dtmf, speech]}
    routes: {on: bye, no: bye, yes: bye, 01: bye, 1: bye, "*": bye}
  bye:
    say: off
    hangup: true
"""


def test_route_keys_are_the_strings_written():
    flow = load(TRAPS)
    assert [r.outcome for r in flow.states["menu"].routes] == ["on", "no", "yes", "01", "1", "*"]


def test_say_no_is_the_text_no():
    flow = load(TRAPS)
    assert flow.states["menu"].prompts[0].text.source == "no"
    assert flow.states["bye"].prompts[0].text.source == "off"


def test_a_key_written_twice_as_1_and_quoted_1_is_a_duplicate():
    text = 'start: m\nstates:\n  m:\n    gather: {}\n    routes: {"1": b, 1: b}\n  b:\n    hangup: true\n'
    with pytest.raises(FlowLoadError) as info:
        load(text)
    [error] = info.value.errors
    assert (error.line, error.column, error.path) == (5, 22, 'states.m.routes."1"')
    assert error.message == "duplicate key (first defined at line 5)"


def test_hangup_true_is_a_boolean():
    flow = load("start: bye\nstates:\n  bye:\n    hangup: true\n")
    assert type(flow.states["bye"].action).__name__ == "Hangup"


# -- num_digits ----------------------------------------------------------------------------------

MENU = """\
start: menu
states:
  menu:
    say: Choose.
    gather: {timeout: 5}
    routes: {"1": bye, "2": bye, %s: bye}
  bye:
    hangup: true
"""


def test_num_digits_left_out_stays_none_in_the_model():
    flow = load(MENU % '"3"')
    assert flow.states["menu"].action.num_digits is None


def test_one_key_routes_render_num_digits_1():
    flow = load(MENU % '"3"')
    twiml = Engine(flow).start(new_session(flow.id), {}, NOW).twiml
    check_twiml(twiml.encode())
    assert 'numDigits="1"' in twiml


def test_a_two_key_route_renders_no_num_digits():
    flow = load(MENU % '"12"')
    twiml = Engine(flow).start(new_session(flow.id), {}, NOW).twiml
    check_twiml(twiml.encode())
    assert "<Gather " in twiml
    assert "numDigits" not in twiml


# -- the shipped flows ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", flow_files(SHIPPED), ids=lambda p: p.name)
def test_shipped_flow_loads(path):
    flow = load_flow(path)
    assert flow.id == path.stem
    assert flow.start in flow.states


def test_shipped_flows_load_together():
    flows = load_flows(SHIPPED)
    assert set(flows) == {p.stem for p in flow_files(SHIPPED)}
    assert {"main", "hours"} <= set(flows)
