"""Hooks, collected input and the ways out of every menu, on tests/flows/business/line.yaml."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import phone_on

from ivr.errors import FlowLoadError

LINE = Path(__file__).resolve().parent / "flows" / "business"
MAIN = "For your account press 1. For support press 2."


@pytest.fixture
def line(make_app, hooks):
    """A phone on the test line; lookup_caller finds nobody and balance finds 42 unless a test says."""
    hooks.returns("lookup_caller", outcome="not_found")
    hooks.returns("balance", outcome="found", vars={"balance": 42})
    return phone_on(make_app({"IVR_FLOWS_DIR": str(LINE), "IVR_HOOK_TIMEOUT": "0.2"}))


def test_a_hook_that_finds_the_caller_sets_variables_and_routes(line, hooks):
    hooks.returns("lookup_caller", outcome="found", vars={"name": "Ada"})
    call = line.dial("line", from_="+15551230000")
    assert call.heard == ["Welcome back, Ada.", MAIN]
    [context] = hooks.calls["lookup_caller"]
    assert context.call["From"] == "+15551230000"
    assert (context.flow, context.state) == ("line", "identify")


@pytest.mark.parametrize(
    "name",
    ["A\ud800da", "\udfffA\ud83d\ude00da", "A\x00d\x1ba\x08", "\ufffeAd\uffffa"],
    ids=["lone-surrogate", "surrogates", "control-characters", "non-characters"],
)
def test_characters_xml_forbids_in_a_hook_value_are_dropped_and_the_document_stays_valid(line, hooks, name):
    """A lone surrogate rendered as &#55296;, which Twilio refuses; the phone checks each document with the schema."""
    hooks.returns("lookup_caller", outcome="found", vars={"name": name})
    call = line.dial("line", from_="+15551230000")
    assert call.heard == ["Welcome back, Ada.", MAIN]


def test_an_outcome_not_routed_takes_next(line):
    assert line.dial("line").heard == ["Welcome.", MAIN]


def test_a_hook_that_raises_takes_on_error_and_the_caller_hears_no_error(line, hooks, caplog):
    hooks.raises("lookup_caller", RuntimeError("database down"))
    call = line.dial("line", call_sid="CA" + "e" * 32)
    assert call.heard == ["Welcome.", MAIN]
    [record] = [r for r in caplog.records if r.name == "ivr.hooks"]
    assert "CallSid=CA" + "e" * 32 in record.getMessage()
    assert "database down" in record.exc_text


def test_a_hook_past_its_budget_takes_on_error_within_the_budget(line, hooks):
    hooks.slow("lookup_caller", 2.0, outcome="found")
    started = time.perf_counter()
    call = line.dial("line")
    assert time.perf_counter() - started < 1.0  # budget 0.2 s: the caller is not kept waiting for 2 s
    assert call.heard == ["Welcome.", MAIN]


def test_a_failed_hook_without_on_error_goes_to_the_error_state(line, hooks):
    hooks.raises("balance", ValueError("bad"))
    call = line.dial("line")
    call.press("1")
    call.press("123456")
    call.press("1")
    assert call.heard == ["Sorry, something went wrong."]


def test_collected_input_is_kept_read_back_and_given_to_the_next_hook(line, hooks):
    call = line.dial("line")
    call.press("1")
    assert call.heard == ["Enter your six digit account number."]
    assert 'numDigits="6"' in call.documents[-1]  # the gather asks for exactly six digits
    call.press("123456")
    assert call.heard == ["You entered 1 2 3 4 5 6. Press 1 if that is right, 2 to enter it again."]
    call.press("1")
    assert call.heard == ["Your balance is 42 dollars."]
    assert hooks.calls["balance"][0].vars["account"] == "123456"


def test_invalid_collected_input_goes_through_no_match_with_its_max(line):
    call = line.dial("line")
    call.press("1")
    call.press("12345#")
    assert call.heard == ["That is not six digits.", "Enter your six digit account number."]
    call.press("1234567")  # the gather takes 6: 123456 is valid
    assert call.heard[0].startswith("You entered 1 2 3 4 5 6.")


def test_collected_input_fails_three_times_then_goodbye(line):
    call = line.dial("line")
    call.press("1")
    for _ in range(3):
        call.press("12#")
    assert call.heard == ["Sorry, we could not get your answer. Please call again later. Goodbye."]


def test_zero_reaches_the_operator_from_a_nested_menu(line):
    call = line.dial("line")
    call.press("2")
    call.press("1")
    call.press("0")
    assert call.heard == ["Connecting you to an operator."]


def test_star_repeats_the_menu_without_using_a_retry(line):
    call = line.dial("line")
    call.press("2")
    call.wait()
    call.wait()
    call.press("*")
    assert call.heard == ["Support. For billing press 1."]
    call.wait()  # the third silence ends the menu: * did not reset nor use up the count
    assert call.heard[0].startswith("Sorry, we could not get your answer.")


def test_nine_goes_back_one_menu_at_a_time(line):
    call = line.dial("line")
    call.press("2")
    call.press("1")
    assert call.heard == ["Billing. Press 5 for invoices."]
    call.press("9")
    assert call.heard == ["Support. For billing press 1."]
    call.press("9")
    assert call.heard == [MAIN]
    call.press("9")  # nothing before the first menu: it plays again
    assert call.heard == [MAIN]


def test_a_menu_routing_a_way_out_key_itself_keeps_its_own_route(make_app, hooks, tmp_path):
    (tmp_path / "own.yaml").write_text(
        'defaults: {routes: {"0": operator}}\nstart: menu\nstates:\n'
        '  menu: {say: Menu., gather: {}, routes: {"0": mine}}\n'
        "  mine: {say: Mine., hangup: true}\n  operator: {say: Operator., hangup: true}\n"
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(tmp_path)})).dial("own")
    call.press("0")
    assert call.heard == ["Mine."]


def test_an_unknown_hook_stops_the_app_from_starting(make_app, tmp_path):
    (tmp_path / "h.yaml").write_text("start: a\nstates:\n  a: {run: lokup, next: b}\n  b: {hangup: true}\n")
    with pytest.raises(FlowLoadError) as info:
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})
    [error] = info.value.errors
    assert (error.line, error.column, error.path) == (3, 12, "states.a.run")
    assert error.message.startswith("unknown hook 'lokup'")


def test_hooks_py_beside_the_flows_is_imported_without_setting_ivr_hooks(make_app, tmp_path):
    (tmp_path / "hooks.py").write_text(
        "from ivr import hook\n\n@hook\ndef greet_by_file(ctx):\n    return {'vars': {'who': 'file'}}\n"
    )
    (tmp_path / "g.yaml").write_text(
        "start: a\nstates:\n  a: {run: greet_by_file, next: b}\n  b: {say: 'Hi {{ who }}.', hangup: true}\n"
    )
    assert phone_on(make_app({"IVR_FLOWS_DIR": str(tmp_path)})).dial("g").heard == ["Hi file."]


def test_a_recorded_call_replays_with_the_hook_results_it_recorded(make_app, hooks, tmp_path):
    from ivr.phone.replay import replay
    from ivr.web import replay_target

    hooks.returns("lookup_caller", outcome="found", vars={"name": "Ada"})
    hooks.returns("balance", outcome="found", vars={"balance": 7})
    app = make_app({"IVR_FLOWS_DIR": str(LINE), "IVR_RECORD_DIR": str(tmp_path / "rec")})
    call = phone_on(app).dial("line")
    call.press("1")
    call.press("654321")
    call.press("1")
    assert call.heard == ["Your balance is 7 dollars."]
    hooks.returns("balance", outcome="found", vars={"balance": 1000})  # live hooks now answer otherwise
    result = replay(tmp_path / "rec" / f"{call.sid}.jsonl", replay_target, flows_dir=LINE)
    assert result.ok, result.report()


SCHEDULED = """
defaults: {timezone: Europe/London}
start: check
states:
  check:
    when:
      - if: "open('%s')"
        next: opened
    next: shut
  opened: {say: Open., hangup: true}
  shut: {say: Closed., hangup: true}
"""


def test_a_shared_schedules_file_serves_every_flow(make_app, tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "s.yaml").write_text(SCHEDULED % "support")
    (tmp_path / "schedules.yaml").write_text(
        'schedules:\n  support:\n    timezone: Asia/Tokyo\n    hours: {daily: "09:00-17:00"}\n'
    )
    config = {"IVR_FLOWS_DIR": str(tmp_path / "flows"), "IVR_SCHEDULES": str(tmp_path / "schedules.yaml")}
    from datetime import UTC, datetime

    morning_in_tokyo = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo, 01:00 in London
    assert phone_on(make_app(config, now=morning_in_tokyo)).dial("s").heard == ["Open."]
    evening_in_tokyo = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # 19:00 in Tokyo
    assert phone_on(make_app(config, now=evening_in_tokyo)).dial("s").heard == ["Closed."]


def test_an_unknown_schedule_stops_the_app_at_its_condition(make_app, tmp_path):
    (tmp_path / "s.yaml").write_text(SCHEDULED % "suport" + "schedules:\n  support: {timezone: UTC, hours: {}}\n")
    with pytest.raises(FlowLoadError) as info:
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})
    [error] = info.value.errors
    assert (error.line, error.path) == (7, "states.check.when[0].if")
    assert error.message == "unknown schedule 'suport' (did you mean 'support'?)"


def test_the_phone_lists_the_hooks_a_call_ran_as_its_effects(line, hooks):
    hooks.returns("lookup_caller", outcome="found", vars={"name": "Ada"})
    call = line.dial("line")
    [effect] = call.effects
    assert (effect["kind"], effect["name"], effect["outcome"], effect["vars"], effect["error"]) == (
        "hook",
        "lookup_caller",
        "found",
        {"name": "Ada"},
        None,
    )
