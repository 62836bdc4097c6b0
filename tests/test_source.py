"""ivr.core.loader.source: YAML composed into positioned nodes and read under the flow language's
rules (YAML 1.2 scalars, keys as written, duplicates refused, every problem collected)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.core.flow import Pos
from ivr.core.loader.source import MAX_DEPTH, MAX_FILE_BYTES, Reader, compose, core_scalar, describe, key_paths
from ivr.errors import FlowError

ROOT = Path(__file__).resolve().parent.parent


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


# -- limits checked before composing ------------------------------------------------------------

BOMB_DEPTH = 30_000  # 60 kB of brackets: libyaml's composer recursed until the process died
GOOD = "start: a\nstates:\n  a: {say: Hello., hangup: true}\n"
# Run in a child process: should a limit regress, libyaml would kill the process, not the suite.
RELOAD = """
import sys
from pathlib import Path
from ivr import create_app
from ivr.web import registry
from ivr.web.services import services
registry.CHECK_EVERY = 0.0
flows = Path(sys.argv[1])
app = create_app({"IVR_ENV": "test", "IVR_STORE": "memory://", "IVR_FLOWS_DIR": str(flows), "IVR_HOT_RELOAD": "1"})
(flows / "line.yaml").write_text(sys.argv[2])
found = services(app).flows
found.refresh()
print("served:", found.engine("line").flow.states["a"].prompts[0].text.source)
print("problem:", found.problems[0].format())
"""


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_nesting_past_the_limit_is_an_error_where_it_is_crossed():
    text = "a:\n  b: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(FlowError) as raised:
        compose(text, "flows/deep.yaml")
    # a and b's mapping are two levels: the bracket that opens level 65 is the 63rd
    assert (raised.value.line, raised.value.column) == (2, 6 + MAX_DEPTH - 2)
    assert f"nest more than {MAX_DEPTH} deep" in raised.value.message


def test_nesting_at_the_limit_composes():
    assert compose("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yaml") is not None


def test_a_file_over_the_size_limit_is_an_error_at_the_byte_that_crosses_it():
    line = "# " + "x" * 1021 + "\n"  # 1 kB a line
    with pytest.raises(FlowError) as raised:
        compose(line * (MAX_FILE_BYTES // 1024) + "a: 1\n", "flows/big.yaml")
    assert (raised.value.line, raised.value.column) == (MAX_FILE_BYTES // 1024 + 1, 1)
    assert "over the limit" in raised.value.message


def test_a_bracket_bomb_is_a_load_error_for_check_start_up_and_hot_reload(tmp_path):
    bomb = "start: a\nstates: " + "[" * BOMB_DEPTH + "]" * BOMB_DEPTH + "\n"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "line.yaml").write_text(bomb)
    where = f"flows/line.yaml:2:{9 + MAX_DEPTH - 1}: error: mappings and lists nest more than {MAX_DEPTH} deep"

    checked = _run("-m", "ivr", "check", "flows/line.yaml", cwd=tmp_path)
    assert checked.returncode == 1, checked.stderr  # not -11: the process lived to report
    assert where in checked.stdout + checked.stderr

    started = _run("-c", "from ivr import load_flows; load_flows('flows')", cwd=tmp_path)
    assert "ivr.errors.FlowLoadError" in started.stderr and where in started.stderr

    (flows / "line.yaml").write_text(GOOD)
    reloaded = _run("-c", RELOAD, str(flows), bomb, cwd=tmp_path)
    assert reloaded.returncode == 0, reloaded.stderr
    served, problem = reloaded.stdout.splitlines()
    assert served == "served: Hello."  # the bad edit never replaced the good flow
    assert problem.startswith("problem: " + where)
