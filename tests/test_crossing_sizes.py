"""A call renders the calling state and the subflow's start in one document, a return the return state
and the caller's continuation: the 64 kB limit is checked across flows too, by the loader and `check`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import FLOWS, TEST_FLOWS

from ivr.cli import cli
from ivr.core.loader import load_flow, load_flows
from ivr.core.validate import validate_flows
from ivr.errors import FlowLoadError

CROSSING = TEST_FLOWS / "crossing"
ENTERING = (
    "flows/crossing/caller.yaml:26:14: error: states.verify.subflow: the states of flow 'caller' up to here and of"
    " subflow 'sizes' from its start, up to the next one that waits, make a TwiML document of about 71845 bytes,"
    " over Twilio's 64 kB; add a gather or split the text"
)
RETURNING = (
    "flows/crossing/sizes.yaml:48:13: error: states.done.return: the states of subflow 'sizes' up to here and of"
    " flow 'caller' after its call in state 'verify', up to the next one that waits, make a TwiML document of"
    " about 71198 bytes, over Twilio's 64 kB; add a gather or split the text"
)


def test_each_flow_alone_is_under_64_kb():
    for name in ("caller", "sizes"):
        assert load_flow(CROSSING / f"{name}.yaml").id == name


def test_the_loader_reports_the_call_and_the_return_where_they_are_written(monkeypatch):
    monkeypatch.chdir(TEST_FLOWS.parent)
    with pytest.raises(FlowLoadError) as info:
        load_flows(CROSSING)
    assert [e.format() for e in info.value.errors] == [ENTERING, RETURNING]


def test_check_reports_them_too(monkeypatch):
    monkeypatch.chdir(TEST_FLOWS.parent)
    monkeypatch.setenv("IVR_FLOWS_DIR", "flows/crossing")
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [ENTERING, RETURNING]


def test_the_checks_across_flows_alone_report_them_as_the_app_does():
    flows = {name: load_flow(CROSSING / f"{name}.yaml") for name in ("caller", "sizes")}
    found = validate_flows(flows, across_only=True)
    assert [(e.path, e.line) for e in found] == [("states.verify.subflow", 26), ("states.done.return", 48)]


def write(directory, **files):
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


def says(count: int) -> str:
    return "".join(f"      - say: {'x' * 2000}\n" for _ in range(count))


def test_a_chain_over_64_kb_in_one_flow_is_reported_there_only(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    sub = f"returns: [done]\nstart: big\nstates:\n  big:\n    prompts:\n{says(31)}    return: done\n"
    caller = "start: a\nstates:\n  a:\n    say: Hi.\n    subflow: sub\n    next: b\n  b: {hangup: true}\n"
    write(flows_dir, sub=sub, caller=caller)
    with pytest.raises(FlowLoadError) as info:
        load_flows(flows_dir)
    [error] = info.value.errors
    assert (error.file, error.path) == ("sub.yaml", "states.big")
    assert "the states from here up to the next one that waits" in error.message


def test_a_nested_call_and_its_return_are_followed_and_reported_at_the_outermost_call(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    inner = f"returns: [done]\nstart: a\nstates:\n  a:\n    prompts:\n{says(12)}    return: done\n"
    outer = "returns: [done]\nstart: a\nstates:\n  a:\n    subflow: inner\n    next: b\n  b: {return: done}\n"
    caller = (
        f"start: a\nstates:\n  a:\n    prompts:\n{says(12)}    subflow: outer\n    next: b\n"
        f"  b:\n    prompts:\n{says(12)}    hangup: true\n"
    )
    write(flows_dir, inner=inner, outer=outer, caller=caller)
    with pytest.raises(FlowLoadError) as info:
        load_flows(flows_dir)
    # Into outer, into inner, back out of both and on in the caller: one document of about 77 kB, reported
    # once, where it starts crossing (outer's call and inner's return are inside it).
    [error] = info.value.errors
    assert (error.file, error.line, error.column, error.path) == ("caller.yaml", 17, 14, "states.a.subflow")
    assert "about 7" in error.message


def test_a_return_is_followed_through_the_returns_of_the_subflows_that_called_it(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    inner = (
        "returns: [done]\nstart: a\nstates:\n  a:\n    gather: true\n    next: b\n"
        f"  b:\n    prompts:\n{says(20)}    return: done\n"
    )
    outer = "returns: [done]\nstart: a\nstates:\n  a:\n    subflow: inner\n    next: b\n  b: {return: done}\n"
    caller = (
        f"start: a\nstates:\n  a:\n    subflow: outer\n    next: b\n  b:\n    prompts:\n{says(12)}    hangup: true\n"
    )
    write(flows_dir, inner=inner, outer=outer, caller=caller)
    with pytest.raises(FlowLoadError) as info:
        load_flows(flows_dir)
    # inner's return (about 43 kB), outer's return, the caller's next (about 26 kB): one document.
    [error] = info.value.errors
    assert (error.file, error.line, error.column, error.path) == ("inner.yaml", 29, 13, "states.b.return")
    assert "of flow 'outer' after its call in state 'a'" in error.message


def test_the_shipped_flows_cross_under_64_kb():
    flows = load_flows(FLOWS)
    assert validate_flows(flows, across_only=True) == []
